#!/usr/bin/env bash
# The two paths of the default orphan delete (fast => false):
#  - optimistic (every reference into annotation is a plain NO ACTION/RESTRICT foreign key, as on
#    OMERO): one DELETE per batch, PostgreSQL's own foreign-key checks as the re-check; a link that
#    raced the scan makes them fail and the batch is redone the careful way;
#  - careful (some reference cascades or is deferrable): rows locked first, then every reference
#    re-checked in a new statement.
# Both must delete exactly the set of the official rule (one DELETE with NOT IN), archive every
# row, and never delete a row linked meanwhile; a cascading reference committed while our delete
# waits must not be cascaded away.
source "$(dirname "$0")/../lib/tap.sh"

t=$(scratch)
db=orphans_paths
fixture_db "$db" --version OMERO5.4__0
q "$db" -c "CREATE EXTENSION omero_upgrade"
n=$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")

# The official rule, written as the bench writes it, over the link tables the catalog names.
links=$(q "$db" -c "SELECT string_agg(format('AND id NOT IN (SELECT %I FROM %I)', a.attname, c.conrelid::regclass::text), ' ' ORDER BY 1)
                      FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                     WHERE c.contype = 'f' AND c.confrelid = 'annotation'::regclass")
where="discriminator IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/', '/basic/term/', '/basic/time/',
       '/basic/text/comment/') AND (ns IS NULL OR ns = '' OR ns LIKE 'openmicroscopy.org/%') $links"
left="SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM annotation"
for c in official ours; do
  q postgres -c "DROP DATABASE IF EXISTS ${db}_$c" -c "CREATE DATABASE ${db}_$c TEMPLATE $db"
done
q "${db}_official" -c "DELETE FROM annotation WHERE $where"
out=$(q "${db}_ours" -c "SET client_min_messages = warning; SELECT deleted || ' ' || skipped FROM omero_orphans_delete(false, 7)")
is "$out" "$n 0" "optimistic path: $n deleted in batches of 7, none skipped"
is "$(q "${db}_ours" -c "$left")" "$(q "${db}_official" -c "$left")" "… exactly the rows the official DELETE removes"
is "$(q "${db}_ours" -c "SELECT count(*) FROM omero_upgrade.orphan_archive")" "$n" "… each one archived"
is "$(q "${db}_ours" -c "SELECT omero_orphans_restore(1)")" "$n" "… and restored"
is "$(q "${db}_ours" -c "SELECT count(*) FROM omero_orphans_scan()")" "$n" "… orphans again"
for c in official ours; do q postgres -c "DROP DATABASE ${db}_$c"; done

# Sessions driven through a fifo (as in 30-orphans-concurrent.t).
declare -A fd_of pid_of
open_session() {
  local name=$1 fifo=$t/$1.in
  rm -f "$fifo"; mkfifo "$fifo"
  psql -X -q -A -t -d "$db" <"$fifo" >"$t/$name.out" 2>&1 &
  pid_of[$name]=$!
  exec {fd}>"$fifo"
  fd_of[$name]=$fd
}
send() { echo "$2" >&"${fd_of[$1]}"; }
close_session() { local fd=${fd_of[$1]}; exec {fd}>&-; wait "${pid_of[$1]}"; }
wait_blocked() {
  for _ in $(seq 100); do
    [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock'
                         AND query LIKE '%$1%'")" -ge 1 ] && return 0
    sleep 0.1
  done
  return 1
}
wait_for() { for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# A reference inserted by session B (transaction open while our delete scans and then waits for
# B's KEY SHARE lock), committed while we wait. $1: the INSERT, $2: what to name it, $3: the id.
raced() {
  local sql=$1 what=$2 ann=$3 a
  open_session b
  send b "BEGIN;"
  send b "$sql"
  send b "\\echo inserted"
  wait_for "$t/b.out" inserted
  q "$db" -c "SET client_min_messages = warning; SELECT scanned || ' ' || deleted || ' ' || skipped
               FROM omero_orphans_delete(false, 10)" >"$t/a.out" 2>&1 &
  a=$!
  wait_blocked omero_orphans_delete
  ok $? "$what: our delete waits for the session referencing annotation $ann"
  send b "COMMIT;"
  close_session b
  wait "$a"
  is "$(cat "$t/a.out")" "$n $((n - 1)) 1" "$what: scanned $n, deleted $((n - 1)), skipped 1"
  is "$(q "$db" -c "SELECT count(*) FROM annotation WHERE id = $ann")" "1" "$what: annotation $ann is still there"
  is "$(q "$db" -c "SELECT count(*) FROM omero_upgrade.orphan_archive WHERE annotation_id = $ann AND run_id = (SELECT max(id) FROM omero_upgrade.orphan_run)")" "0" "$what: not archived"
}

# Optimistic path, a link racing the scan: the batch's foreign-key check fails, it is redone.
ann=$(q "$db" -c "SELECT min(id) FROM omero_orphans_scan()")
raced "INSERT INTO imageannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
       SELECT max(id) + 1, -120, 0, 1, $ann, 1, 3, 2, 1 FROM imageannotationlink;" "racing link" "$ann"
is "$(q "$db" -c "SELECT count(*) FROM imageannotationlink WHERE child = $ann")" "1" "racing link: the link is there"
is "$(q "$db" -c "SELECT omero_orphans_restore(1)")" "$((n - 1))" "racing link: restore"
n=$((n - 1))

# A site's table referencing annotation ON DELETE CASCADE: the careful path. A row of it committed
# while we wait must keep its annotation (a DELETE re-checking in its own statement would have
# deleted the annotation and cascaded the row away).
q "$db" -c "CREATE TABLE site_note (id int8 PRIMARY KEY, annotation_id int8 REFERENCES annotation (id) ON DELETE CASCADE)"
ann=$(q "$db" -c "SELECT min(id) FROM omero_orphans_scan()")
raced "INSERT INTO site_note VALUES (1, $ann);" "cascading reference" "$ann"
is "$(q "$db" -c "SELECT count(*) FROM site_note")" "1" "cascading reference: the site's row is not cascaded away"
is "$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")" "0" "no orphan left"
done_testing
