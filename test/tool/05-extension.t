#!/usr/bin/env bash
# The extension in a real OMERO-shaped database: installed by a database owner who is not a
# superuser, DROP EXTENSION leaves the schema exactly as before (pg_dump -s compared), the
# running-server warning with a second session, and OMERO upgrade scripts still run with it.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_owner LOGIN" postgres
fixture_db ext_omero --version OMERO5.3__1 --owner omero_owner
as_owner() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -v ON_ERROR_STOP=1 -U omero_owner -d ext_omero "$@"; }

is "$(q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'omero_owner'")" "f" "the database owner is not a superuser"
schema_dump() { pg_dump -s ext_omero | grep -vE '^\\(un)?restrict '; }  # the restrict key is random
schema_dump > "$t/before.sql"

out=$(as_owner -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "the database owner (not a superuser) can CREATE EXTENSION: $out"
is "$(as_owner -c "SELECT omero_precheck()")" "YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0" \
  "omero_precheck() works right after it, with the default search_path"
is "$(as_owner -c "SELECT omero_db_version()")" "OMERO5.3__1" "omero_db_version() for the owner"
is "$(as_owner -c "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE p.oid IN (SELECT objid FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'omero_upgrade'))
                     AND p.prosecdef")" "0" "no SECURITY DEFINER function"
is "$(as_owner -c "SELECT has_schema_privilege('omero_owner', 'omero_upgrade', 'USAGE')")" "t" \
  "the OMERO owner may use the extension's state schema"

# A second session on the database, as a running OMERO server would hold: a warning, not a failure.
PGAPPNAME=OMERO.blitz psql -X -q -d ext_omero -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do
  [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz'")" = 1 ] && break
  sleep 0.1
done
like "$(as_owner -c "SELECT status || ': ' || detail FROM omero_precheck_report() WHERE check_name = 'other_sessions'")" \
  "^warning: 1 other session\(s\) connected \(postgres@OMERO.blitz\)" "another session is reported as a warning"
is "$(as_owner -c "SELECT omero_precheck()" 2>&1 | tail -1)" "YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0" \
  "… and the precheck still passes"
kill "$sleeper" 2>/dev/null; wait "$sleeper" 2>/dev/null
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz'" >/dev/null

# DROP EXTENSION leaves the schema as it was.
as_owner -c "DROP EXTENSION omero_upgrade"
schema_dump > "$t/after.sql"
diff -u "$t/before.sql" "$t/after.sql" > "$t/drop.diff"
ok $? "DROP EXTENSION leaves the schema exactly as before (pg_dump -s)"
[ -s "$t/drop.diff" ] && diag "$(head -40 "$t/drop.diff")"
is "$(q ext_omero -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'omero_upgrade'")" "0" "no state schema left"

# OMERO's upgrade scripts run with the extension installed, as the OMERO user.
as_owner -c "CREATE EXTENSION omero_upgrade"
make_sample_sql "$t/server"
out=$(psql -X -q -v ON_ERROR_STOP=1 -U omero_owner -d ext_omero -f "$t/server/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql" 2>&1)
like "$out" "YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0" "the sample precheck script passes"
out=$(psql -X -q -v ON_ERROR_STOP=1 -U omero_owner -d ext_omero -f "$t/server/sql/psql/OMERO5.4__0/OMERO5.3__1.sql" 2>&1)
ok $? "an upgrade script (ALTER TABLE on shape and annotation) runs with the extension installed"
like "$out" "YOU HAVE SUCCESSFULLY UPGRADED YOUR DATABASE TO VERSION OMERO5.4__0" "… and says so"
is "$(as_owner -c "SELECT omero_db_version()")" "OMERO5.4__0" "the database is now at OMERO5.4__0"
is "$(as_owner -c "SELECT omero_precheck()")" "YOUR DATABASE IS ALREADY AT VERSION OMERO5.4__0" "precheck: already at target"
# The same script again is refused by its own version check and changes nothing.
psql -X -q -v ON_ERROR_STOP=1 -U omero_owner -d ext_omero -f "$t/server/sql/psql/OMERO5.4__0/OMERO5.3__1.sql" >/dev/null 2>&1
ok $((! $?)) "running the upgrade script twice fails (wrong version) …"
is "$(as_owner -c "SELECT count(*) FROM dbpatch")" "6" "… and adds no dbpatch row"

# Installed by a superuser: the OMERO user (owner of dbpatch) can still use the state and dump it.
fixture_db ext_omero2 --version OMERO5.3__1 --owner omero_owner
q ext_omero2 -c "CREATE EXTENSION omero_upgrade"
as_owner2() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -v ON_ERROR_STOP=1 -U omero_owner -d ext_omero2 "$@"; }
out=$(as_owner2 -c "SELECT converted FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1}')" 2>&1)
like "$out" "^[1-9][0-9]*$" "the OMERO user converts colours with the extension a superuser installed"
out=$(as_owner2 -c "SELECT deleted > 0 FROM omero_orphans_delete(dry_run => false)" 2>&1)
is "$out" "t" "… and deletes orphans into the archive"
pg_dump -U omero_owner -Fc -f "$t/owner.dump" ext_omero2 2>"$t/owner.err"
ok $? "… and can pg_dump the database, extension state included: $(head -c 300 "$t/owner.err")"
is "$(pg_restore -l "$t/owner.dump" | grep -c 'TABLE DATA omero_upgrade')" "6" "the dump holds the state tables' rows (orphan_run, orphan_archive, color_runs, color_journal, site_sql, history)"

q postgres -c "DROP DATABASE ext_omero" -c "DROP DATABASE ext_omero2" -c "DROP ROLE omero_owner"
done_testing
