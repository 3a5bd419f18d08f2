#!/usr/bin/env bash
# db vacuum [--full] on a fixture database: every table, largest first, the free-space check of
# FULL (checked through a superuser connection to the local server; "cannot check" for the OMERO
# user, who cannot see data_directory), refusal while other sessions are connected.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_vac LOGIN" postgres
fixture_db vac_db --version OMERO5.4__0 --owner omero_vac
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 vac_db omero_vac
ou() { "$TOOL" --server-dir "$srv" "$@"; }
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
is "$(q vac_db -c "SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NULL AND schemaname = 'public'")" 0 \
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

q postgres -c "DROP DATABASE vac_db" -c "DROP ROLE omero_vac"
done_testing
