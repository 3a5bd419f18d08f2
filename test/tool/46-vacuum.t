#!/usr/bin/env bash
# db vacuum [--full] on a fixture database: every table, largest first, the free-space check of
# FULL (checked through a superuser connection to the local server; "cannot check" for the OMERO
# user, who cannot see data_directory), refusal while other sessions are connected; progress inside
# one large table (a second connection reads PostgreSQL's progress views), and the vacuum going on
# without it when that connection cannot be made.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_vac LOGIN" postgres
fixture_db vac_db --version OMERO5.4__0 --owner omero_vac
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 vac_db omero_vac
ou() { "$TOOL" --server-dir "$srv" "$@"; }
nl=$'\n'
ntables=$(q vac_db -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE relkind IN ('r','m') AND nspname NOT IN ('pg_catalog','information_schema') AND nspname !~ '^pg_(toast|temp)'")

out=$(ou db vacuum --dry-run 2>&1); rc=$?
is "$rc" 0 "db vacuum --dry-run"
is "$(grep -c '^would run: VACUUM (ANALYZE) ' <<<"$out")" "$ntables" "… lists every table ($ntables)"
first=$(head -1 <<<"$out")
like "$first" "$ntables table\(s\) in vac_db" "… with a summary"

j=$(ou --json db vacuum)
is "$(jq -r '.exit_code' <<<"$j")" 0 "db vacuum (plain)"
is "$(jq -r '.result.done | length' <<<"$j")" "$ntables" "… vacuumed every table"
is "$(jq -r '[.result.done[].size_before] | . == (sort | reverse)' <<<"$j")" "true" "… largest first"
is "$(q_stats vac_db 0 -c "SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NULL AND schemaname = 'public'")" 0 \
  "… and PostgreSQL saw each one vacuumed"

# Bloat the annotation table, then VACUUM FULL gives the space back.
q vac_db -c "UPDATE annotation SET ns = ns" -c "UPDATE annotation SET ns = ns" >/dev/null
before=$(q vac_db -c "SELECT pg_relation_size('annotation')")
node=$(q vac_db -c "SELECT relfilenode FROM pg_class WHERE relname = 'annotation'")

out=$(ou db vacuum --full 2>&1); rc=$?
is "$rc" 1 "--full as the OMERO user: the free space cannot be checked: exit 1"
like "$out" "cannot check the free space VACUUM FULL needs: the data directory is not visible to this user" "… saying why"
like "$out" "then give --force" "… and what to do"
is "$(q vac_db -c "SELECT relfilenode FROM pg_class WHERE relname = 'annotation'")" "$node" "… nothing rewritten"

out=$(ou --db-user postgres db vacuum --full 2>&1); rc=$?
is "$rc" 0 "--full through a connection that sees the local data directory: $(tail -1 <<<"$out")"
like "$out" "free space in the server's data directory: " "… the free space was checked"
like "$out" "table 1 of $ntables: VACUUM \(FULL, ANALYZE\) " "… progress per table"
isnt_node=$(q vac_db -c "SELECT relfilenode FROM pg_class WHERE relname = 'annotation'")
[ "$isnt_node" != "$node" ]; ok $? "annotation was rewritten (new relfilenode)"
after=$(q vac_db -c "SELECT pg_relation_size('annotation')")
[ "$after" -lt "$before" ]; ok $? "… and is smaller: $before → $after bytes"

out=$(ou db vacuum --full --force 2>&1); rc=$?
is "$rc" 0 "--full --force as the OMERO user goes on without the check"
like "$out" "warning: cannot check the free space" "… with a warning"

PGAPPNAME=busy psql -X -q -d vac_db -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'busy'")" = 1 ] && break; sleep 0.1; done
out=$(ou --db-user postgres db vacuum --full 2>&1); rc=$?
is "$rc" 1 "--full refused while another session is connected"
like "$out" "other sessions use the database vac_db: 1 session\(s\): pid [0-9]+ postgres@busy" "… naming it"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'busy'" >/dev/null
wait "$sleeper" 2>/dev/null

# ---- progress inside a table: VACUUM FULL of 4 million rows takes seconds for real -----------------
# (an index sorted with little memory, ANALYZE with a large sample), then a smaller table.
q postgres -c "CREATE DATABASE vac_big"
q vac_big -c "CREATE TABLE big (id int, v int)" \
  -c "INSERT INTO big SELECT g, (g::bigint * 7919) % 1000003 FROM generate_series(1, 4000000) g" \
  -c "CREATE INDEX ON big (v)" -c "ALTER TABLE big ALTER v SET STATISTICS 10000" \
  -c "CREATE TABLE mid AS SELECT g AS id FROM generate_series(1, 1000000) g" \
  -c "ALTER DATABASE vac_big SET maintenance_work_mem = '1MB'"
ou --db-user postgres --db-name vac_big db vacuum --full >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "--full of a 4-million-row table: $(tail -1 "$t/out")"
unlike "$(cat "$t/err")" $'\r' "… not a terminal: plain progress lines"
hms='[0-9]+:[0-9]{2}:[0-9]{2}'
bytes='[0-9.]+ (B|KiB|MiB|GiB)'
phase='(seq scanning heap, [0-9]+/[0-9]+ blocks|sorting tuples|writing new heap|swapping relation files|rebuilding index [0-9]+ of [0-9]+|performing final cleanup|analyzing: [a-z ]+(, [0-9]+/[0-9]+ sample blocks)?)'
pat="^db vacuum: $bytes/$bytes \([0-9]+%\), $bytes/s, elapsed $hms, ETA ~$hms; table 1 of 2: VACUUM \(FULL, ANALYZE\) public\.big \($bytes\): $phase\$"
inside=$(grep -nE "$pat" "$t/err" | head -1)
like "$inside" "." "a line while public.big is vacuumed, naming its phase: ${inside#*:}"
next=$(grep -nE "; table 2 of 2: " "$t/err" | head -1)
n_in=${inside%%:*} n_next=${next%%:*}
(( ${n_in:-2} < ${n_next:-1} )); ok $? "… before the next table begins"
line=${inside#*:}
secs() { local IFS=:; set -- ${1:-0:00:00}; echo $((10#$1 * 3600 + 10#$2 * 60 + 10#$3)); }
tobytes() { awk -v n="$1" -v u="$2" 'BEGIN { m = u == "GiB" ? 2^30 : u == "MiB" ? 2^20 : u == "KiB" ? 1024 : 1; printf "%.0f\n", n * m }'; }
read -r dn du tn tu < <(sed -E 's|^db vacuum: ([0-9.]+) ([A-Za-z]+)/([0-9.]+) ([A-Za-z]+) .*|\1 \2 \3 \4|' <<<"$line")
d=$(tobytes "${dn:-0}" "$du"); tot=$(tobytes "${tn:-0}" "$tu")
(( d > 0 && d < tot )); ok $? "… its bytes done move inside the table: 0 < $dn $du < $tn $tu"
el=$(secs "$(sed -E 's/.*elapsed ([0-9:]+),.*/\1/' <<<"$line")")
(( el >= 2 )); ok $? "… after the first 2 s (elapsed $el s)"
eta=$(secs "$(sed -E 's/.*ETA ~([0-9:]+);.*/\1/' <<<"$line")")
(( eta >= 0 && eta < 3600 )); ok $? "… with an ETA that parses (~$eta s)"
like "$(cat "$t/err")" "(^|$nl)db vacuum: $bytes/$bytes \(100%\), $bytes/s, elapsed $hms, ETA 0:00:00($|$nl)" "… and ends at 100%"

# A second connection is refused (the role's connection limit): no progress inside tables, said
# once, and the vacuum runs all the same.
q postgres -c "ALTER ROLE omero_vac CONNECTION LIMIT 1"
out=$(ou -v db vacuum 2>&1); rc=$?
is "$rc" 0 "plain vacuum when the monitoring connection cannot be made"
is "$(grep -c 'progress inside each table not shown (no second connection: .*too many connections' <<<"$out")" 1 \
  "… said once as a detail line"
like "$out" "VACUUM \(ANALYZE\) of $ntables table\(s\) done" "… and every table vacuumed"

q postgres -c "DROP DATABASE vac_big"
q postgres -c "DROP DATABASE vac_db" -c "DROP ROLE omero_vac"
done_testing
