#!/usr/bin/env bash
# Orphan delete against links inserted concurrently by another session (needs two sessions, so
# it cannot be a pg_regress test):
#  1. a link inserted before our delete locks the rows and committed while we wait: the
#     annotation, an orphan when scanned, is skipped, not deleted;
#  2. a link inserted while our delete is uncommitted: the insert waits for us, then fails on
#     its foreign key; no dangling link;
#  3. the procedure commits per batch: other sessions see the first batches gone while it waits.
# 1 and 2 run with fast => false (PostgreSQL's foreign-key triggers fire too) and fast => true
# (they do not: our re-check and the inserter's own foreign-key check are all there is).
source "$(dirname "$0")/../lib/tap.sh"

t=$(scratch)
db=orphans_conc
fixture_db "$db" --version OMERO5.4__0
q "$db" -c "CREATE EXTENSION omero_upgrade"
n=$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")
is "$n" "56" "the fixture has 56 orphans"

# A session driven line by line through a fifo: open_session NAME; send NAME SQL; close_session NAME.
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
# Waits until a backend running a query like $1 is blocked on a lock.
wait_blocked() {
  for _ in $(seq 100); do
    [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock'
                         AND query LIKE '%$1%'")" -ge 1 ] && return 0
    sleep 0.1
  done
  return 1
}
wait_for() {  # wait_for FILE REGEX
  for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
link_sql() {  # a link from image 1 to annotation $1, as alice
  echo "INSERT INTO imageannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
        SELECT max(id) + 1, -120, 0, 1, $1, 1, 3, 2, 1 FROM imageannotationlink;"
}

# 1. Session B inserts a link to orphan 1 and keeps its transaction open (its foreign-key check
#    holds a KEY SHARE lock on annotation 1). Our delete scans (1 is an orphan: the link is not
#    committed), then waits for that lock; B commits; the re-check sees the link.
linked_after_scan() {  # FAST RUN_ID ANNOTATION
  local fast=$1 run=$2 ann=$3 a
  open_session b
  send b "BEGIN;"
  send b "$(link_sql "$ann")"
  send b "\\echo inserted"
  wait_for "$t/b.out" inserted
  q "$db" -c "SET client_min_messages = warning; SELECT scanned || ' ' || deleted || ' ' || skipped
               FROM omero_orphans_delete(false, fast => $fast)" >"$t/a.out" 2>&1 &
  a=$!
  wait_blocked omero_orphans_delete
  ok $? "fast=$fast: our delete waits for the session that is linking annotation $ann"
  send b "COMMIT;"
  close_session b
  wait "$a"
  is "$(cat "$t/a.out")" "$n $((n - 1)) 1" "fast=$fast: scanned $n, deleted $((n - 1)), skipped 1 (linked after the scan)"
  is "$(q "$db" -c "SELECT count(*) FROM annotation WHERE id = $ann")" "1" "fast=$fast: annotation $ann is still there"
  is "$(q "$db" -c "SELECT count(*) FROM imageannotationlink WHERE child = $ann")" "1" "fast=$fast: with its new link"
  is "$(q "$db" -c "SELECT count(*) FROM omero_upgrade.orphan_archive WHERE run_id = $run AND annotation_id = $ann")" "0" \
    "fast=$fast: and it is not in the archive"
  is "$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")" "0" "fast=$fast: no orphan left"
  is "$(q "$db" -c "SELECT skipped FROM omero_upgrade.orphan_run WHERE id = $run")" "1" "fast=$fast: the run records the skipped row"
  is "$(q "$db" -c "SELECT omero_orphans_restore($run)" 2>/dev/null)" "$((n - 1))" "fast=$fast: restore puts back the $((n - 1))"
  n=$((n - 1))
}

# 2. Our delete runs in an open transaction (session A); session B links orphan 2 meanwhile: its
#    foreign-key check waits for us, and fails once we commit.
linked_during_delete() {  # FAST RUN_ID ANNOTATION
  local fast=$1 run=$2 ann=$3 b rc
  open_session a
  send a "SET client_min_messages = warning; BEGIN;"
  send a "SELECT 'deleted ' || deleted FROM omero_orphans_delete(false, fast => $fast);"
  wait_for "$t/a.out" "^deleted "
  psql -X -q -A -t -d "$db" -c "$(link_sql "$ann")" >"$t/b2.out" 2>&1 &
  b=$!
  wait_blocked "INSERT INTO imageannotationlink"
  ok $? "fast=$fast: the link insert waits for our uncommitted delete"
  send a "COMMIT;"
  close_session a
  wait "$b"
  rc=$?
  is "$(grep -c "^deleted $n\$" "$t/a.out")" "1" "fast=$fast: our delete removed the $n orphans"
  ok $((rc == 0)) "fast=$fast: the late link insert failed"
  like "$(cat "$t/b2.out")" 'violates foreign key constraint "fk_imageannotationlink_child"' "fast=$fast: … on its foreign key to annotation"
  is "$(q "$db" -c "SELECT count(*) FROM imageannotationlink l WHERE NOT EXISTS (SELECT 1 FROM annotation a WHERE a.id = l.child)")" \
    "0" "fast=$fast: no dangling link"
  is "$(q "$db" -c "SELECT omero_orphans_restore($run)" 2>/dev/null)" "$n" "fast=$fast: restore puts back the $n"
}

linked_after_scan false 1 1
linked_during_delete false 2 2
# fast => true: no foreign-key trigger of ours fires; the re-check and the inserter's own check suffice.
linked_after_scan true 3 3
linked_during_delete true 4 5

# 3. The procedure, one annotation per batch, committing each: session B holds a link to the
#    orphan with the highest id, so the procedure waits there with the others already committed.
last=$(q "$db" -c "SELECT max(id) FROM omero_orphans_scan()")
open_session b
send b "BEGIN;"
send b "$(link_sql "$last")"
send b "\\echo inserted"
wait_for "$t/b.out" inserted
psql -X -q -A -t -d "$db" -c "SET client_min_messages = warning" -c "CALL omero_orphans_delete_batches(false, 1)" >"$t/p.out" 2>&1 &
p=$!
wait_blocked omero_orphans_delete_batches
ok $? "the procedure waits at the orphan being linked"
is "$(q "$db" -c "SELECT count(*) FROM omero_upgrade.orphan_archive WHERE run_id = 5")" "$((n - 1))" \
  "the $((n - 1)) batches before it are already committed (seen from another session)"
is "$(q "$db" -c "SELECT status FROM omero_upgrade.orphan_run WHERE id = 5")" "running" "the run is marked running meanwhile"
send b "COMMIT;"
close_session b
wait "$p"
ok $? "the procedure ends without error: $(cat "$t/p.out")"
is "$(q "$db" -c "SELECT status || ' ' || deleted || ' ' || skipped FROM omero_upgrade.orphan_run WHERE id = 5")" "deleted $((n - 1)) 1" \
  "run 5: $((n - 1)) deleted, 1 skipped"
is "$(q "$db" -c "SELECT count(*) FROM annotation WHERE id = $last")" "1" "the linked annotation is kept"

done_testing
