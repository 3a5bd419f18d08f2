#!/usr/bin/env bash
# omero-upgrade precheck: the extension's report when installed; otherwise the server
# distribution's precheck script through psql, whose only failure signal is an exception.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db pc_ok
fixture_db pc_latin1 --encoding LATIN1
fixture_db pc_52 --version OMERO5.2__0
fixture_db pc_54 --version OMERO5.4__0
fixture_db pc_sv5 --version OMERO5.3__0 --sv5-trace
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=pc_ok omero.db.user=postgres
pc() { "$TOOL" --server-dir "$srv" "$@" 2>&1; }

# Without the extension: the sample precheck scripts (our own, in the official style).
out=$(pc precheck)
is "$?" 0 "ready: exit 0"
like "$out" "running .*sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql" "runs the script for current → target"
like "$out" "YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0" "… and prints the verdict"
is "$("$TOOL" --json --server-dir "$srv" precheck | jq -r '.result.method + " " + .result.current + " " + (.result.ready|tostring)')" \
  "script OMERO5.3__1 true" "--json: method, current version, ready"
out=$(pc --db-name pc_latin1 precheck)
is "$?" 1 "a LATIN1 database: exit 1"
like "$out" "error: OMERO database character encoding must be UTF8, not LATIN1" "… the script's exception is the problem shown"
like "$out" "NOT READY FOR UPGRADE TO VERSION OMERO5.4__0: 1 problem" "… and the verdict says not ready"
out=$(pc --db-name pc_52 precheck)
is "$?" 2 "no script for a two-hop path: exit 2 (cannot run)"
like "$out" "no precheck script sql/psql/OMERO5.4__0/OMERO5.2__0-precheck.sql.*
hint: .*CREATE EXTENSION omero_upgrade" "… suggesting the extension"
out=$(pc --db-name pc_52 precheck --target OMERO5.3__1)
is "$?" 0 "--target OMERO5.3__1 for a 5.2 database: its script, ready"
out=$(pc --db-name pc_54 precheck 2>&1)
is "$?" 1 "a database already at the server directory's own newest version, no target named: exit 1 (issue 14)"
like "$out" "no newer target is known" "… no newer target is known, never an all-clear"
out=$(pc --db-name pc_54 precheck --target OMERO5.4__0)
like "$out" "ALREADY AT VERSION OMERO5.4__0" "a database already at the target named by --target"

# A script whose version check fails (the 5.3__0 script in the 5.3__1 place).
wrong=$t/wrong
make_sample_server "$wrong"
sample_config "$wrong" omero.db.name=pc_ok omero.db.user=postgres
cp "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__0-precheck.sql" "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql"
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 1 "an exception in the script: exit 1"
like "$out" "error: wrong OMERO database version for this upgrade script" "… its message is shown"

# Nothing a script does can be committed.
before=$(q pc_ok -c "SELECT count(*) FROM dbpatch")
cat > "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql" <<'SQL'
BEGIN;
SELECT 'YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0';
ROLLBACK;
INSERT INTO dbpatch (id, currentversion, currentpatch, previousversion, previouspatch)
    VALUES (ome_nextval('seq_dbpatch'), 'LEAK', 0, 'LEAK', 0);
CREATE TABLE precheck_leak (x int);
SQL
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 0 "statements after the script's ROLLBACK run…"
is "$(q pc_ok -c "SELECT count(*) FROM dbpatch"),$(q pc_ok -c "SELECT to_regclass('precheck_leak') IS NULL")" "$before,t" \
  "… but are never committed (psql AUTOCOMMIT off)"
printf 'BEGIN;\nDELETE FROM dbpatch;\nCOMMIT;\n' > "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql"
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 2 "a precheck script with COMMIT is refused"
like "$out" "contains a COMMIT: a precheck must change nothing" "… saying why"
is "$(q pc_ok -c "SELECT count(*) FROM dbpatch")" "$before" "… and nothing was deleted"
printf 'BEGIN;\nDELETE FROM dbpatch;\nEND;\n' > "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql"
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 2 "a top-level END (a COMMIT) is refused too"
is "$(q pc_ok -c "SELECT count(*) FROM dbpatch")" "$before" "… and nothing was deleted"
# A plpgsql body's END; is not a COMMIT (nor is one in a comment or string).
cat > "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql" <<'SQL'
BEGIN;
-- a comment saying COMMIT; is harmless
CREATE FUNCTION pg_temp.sample_check() RETURNS void AS $$
BEGIN
    IF (SELECT count(*) FROM dbpatch) < 1 THEN
        RAISE EXCEPTION 'no dbpatch row; COMMIT; is not allowed';
    END IF;
END;$$ LANGUAGE plpgsql;
SELECT pg_temp.sample_check();
SELECT E'\n\nYOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0\n' AS Status;
ROLLBACK;
SQL
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 0 "a precheck whose plpgsql function ends 'END;\$\$ LANGUAGE plpgsql;' runs: $out"
like "$out" "READY FOR UPGRADE TO VERSION OMERO5.4__0" "… and prints the verdict"
sed -i 's/^ROLLBACK;$/COMMIT;/' "$wrong/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql"
out=$("$TOOL" --server-dir "$wrong" precheck 2>&1)
is "$?" 2 "… the same script with a real COMMIT; is still refused"
like "$out" "contains a COMMIT" "… saying why"

# With the extension: every check of the report.
q pc_ok -c "CREATE EXTENSION omero_upgrade"
j=$("$TOOL" --json --server-dir "$srv" precheck)
is "$(echo "$j" | jq -r '.result.method + " " + .result.target + " " + (.exit_code|tostring)')" "extension OMERO5.4__0 0" \
  "the extension is used when installed"
like "$(echo "$j" | jq -r '[.result.checks[].name] | join(",")')" "omero_database,version,dbpatch_finished,postgresql_version,encoding" \
  "… its checks are in the result"
q pc_sv5 -c "CREATE EXTENSION omero_upgrade"
out=$(pc --db-name pc_sv5 precheck)
is "$?" 1 "an SV5 trace: exit 1"
like "$out" "error: sv5_filename_trace: " "… the problem is shown"
like "$out" "NOT READY FOR UPGRADE TO VERSION OMERO5.4__0" "… and the verdict"
out=$(pc --db-name pc_sv5 precheck --target OMERO9.9__9)
is "$?" 2 "an unknown target: exit 2"
out=$(pc --db-name postgres precheck)
is "$?" 1 "not an OMERO database: exit 1"

done_testing
