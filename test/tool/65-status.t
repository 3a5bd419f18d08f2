#!/usr/bin/env bash
# The tool tells the truth (issue 14): status (the installation model, human and --json, with
# --new-server), precheck/check before the binaries swap (no false all-clear without a newer
# target; --new-server gives it), never "already at" on an unfinished dbpatch row, server start
# refusing a database newer than its tree's scripts, and a rollback after a failure where nothing
# changed undoing nothing.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" st_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
zip=$r/OMERO.server-5.6.3.zip

# --- status ------------------------------------------------------------------------------------
out=$(ou status 2>&1); rc=$?
is "$rc" 0 "status of a running 5.3 installation: exit 0"
like "$out" "symlink → OMERO.server-5.3.5" "… names where OMERO.server points"
like "$out" "scripts up to OMERO5.3__1" "… the tree's newest scripts"
like "$out" "database   st_a: OMERO5.3__1 \(finished\)" "… the database and its dbpatch"
like "$out" "server     running" "… that the server runs"
j=$(ou --json status 2>/dev/null)
is "$(jq -r '.result.installation | [.kind, .tree_newest, .database.version, .server.state, .agree] | map(tostring) | join(" ")' <<<"$j")" \
  "symlink OMERO5.3__1 OMERO5.3__1 running true" "--json: the model"
j=$(ou --json status --new-server "$zip" 2>/dev/null)
is "$(jq -r '[.result.upgrade.target, (.result.upgrade.pending_hops | map(.from + ">" + .to) | join(",")), (.result.upgrade.steps | index("db-upgrade") != null)] | map(tostring) | join(" ")' <<<"$j")" \
  "OMERO5.4__0 OMERO5.3__1>OMERO5.4__0 true" "--new-server: the pending hop and the steps of run"

# --- precheck and check before the swap --------------------------------------------------------
out=$(ou precheck 2>&1); rc=$?
is "$rc" 1 "precheck with no newer target known (the current server's own scripts): exit 1"
like "$out" "no newer target is known" "… says so"
unlike "$out" "ALREADY AT|READY FOR UPGRADE" "… and gives no all-clear"
out=$(ou precheck --new-server "$zip" 2>&1); rc=$?
is "$rc" 0 "precheck --new-server ZIP: exit 0"
like "$out" "READY FOR UPGRADE TO VERSION OMERO5.4__0" "… ready for the new release's version"
q st_a -c "DROP EXTENSION omero_upgrade"
out=$(ou precheck --new-server "$zip" 2>&1); rc=$?
is "$rc" 0 "precheck --new-server ZIP without the extension: the zip's -precheck.sql (exit 0)"
like "$out" "OMERO5.4__0/OMERO5.3__1-precheck.sql" "… run from the new release"
out=$(ou check --backup-dir "$t" 2>&1); rc=$?
is "$rc" 1 "check with no newer target known: exit 1"
like "$out" "FAILED +target +no newer target is known" "… its target row says why"
j=$(ou --json check --new-server "$zip" --backup-dir "$t" 2>/dev/null)
is "$(jq -r '.result.target + " " + (.result.checks[] | select(.name == "target") | .status)' <<<"$j")" "OMERO5.4__0 ok" \
  "check --new-server: the new release's version is the target"

# --- an unfinished dbpatch row at the target: never "already at" --------------------------------
createdb -T run_template -O omero st_half
q st_half -c "UPDATE dbpatch SET finished = NULL WHERE id = (SELECT max(id) FROM dbpatch)"
h=$t/h; make_sample_server "$h" 5.3.5 st_half omero "$t/hdata"
out=$("$TOOL" --server-dir "$h" precheck --target OMERO5.3__1 2>&1); rc=$?
is "$rc" 1 "precheck (extension) on an unfinished row at the target: exit 1"
like "$out" "half-upgraded \(unfinished\)" "… half-upgraded (unfinished)"
unlike "$out" "YOUR DATABASE IS ALREADY AT" "… never already at"
is "$(q st_half -c "SELECT status FROM omero_precheck_report('OMERO5.3__1') WHERE check_name = 'version'")" "failed" \
  "omero_precheck_report: the version check fails"
like "$(q st_half -c "SELECT omero_precheck('OMERO5.3__1')" 2>&1)" "HALF-UPGRADED \(UNFINISHED\)" "omero_precheck() says half-upgraded"
q st_half -c "DROP EXTENSION omero_upgrade"
out=$("$TOOL" --server-dir "$h" precheck --target OMERO5.3__1 2>&1); rc=$?
is "$rc" 1 "precheck without the extension on an unfinished row at the target: exit 1"
like "$out" "half-upgraded \(unfinished\)" "… half-upgraded (unfinished)"
out=$("$TOOL" --server-dir "$h" status 2>&1); rc=$?
is "$rc" 1 "status of a half-upgraded database: exit 1"
like "$out" "half-upgraded" "… says so"

# --- server start refuses a database newer than its tree's scripts -------------------------------
createdb -T run_template -O omero st65_new
n=$t/n; make_sample_server "$n" 5.3.5 st65_new omero "$t/ndata"
q st65_new -c "INSERT INTO dbpatch (id, currentversion, currentpatch, previousversion, previouspatch, finished, message)
             SELECT max(id) + 1, 'OMERO5.4', 0, 'OMERO5.3', 1, now(), 'Database updated.' FROM dbpatch"
out=$("$TOOL" --server-dir "$n" server start 2>&1); rc=$?
is "$rc" 1 "server start of a 5.3 tree on a 5.4 database: exit 1"
like "$out" "newer than this server's scripts" "… says the database is newer"
ok "$([ ! -e "$n/var/stub/running" ]; echo $?)" "… and starts nothing"
out=$("$TOOL" --server-dir "$n" status 2>&1); rc=$?
is "$rc" 1 "status: exit 1"
like "$out" "is newer than the server tree's scripts" "… names the mismatch"

# --- a failure where nothing changed: rollback undoes nothing ------------------------------------
touch "$r/OMERO.server/var/stub/stop-fails"
out=$(ou run --new-server "$zip" --stop-timeout 3 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "the stop fails: the run stops (exit $rc)"
j=$(ou --json status 2>/dev/null)
is "$(jq -r '[.result.rollback.switched, .result.rollback.db_changed, .result.rollback.possible] | map(tostring) | join(" ")' <<<"$j")" \
  "false false false" "status: nothing changed, nothing to roll back"
like "$(jq -r '.result.rollback.advice | join(";")' <<<"$j")" "^continue: .*nothing has changed yet" "… the advice is to continue"
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
like "$out" "nothing to roll back" "… nothing to roll back"
is "$(psql -X -A -t -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'st_a_before%'" postgres)" 0 "… no restore made"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… the symlink untouched"

# --- run on an already-upgraded installation: nothing to do -------------------------------------
b=$t/b
scenario "$b" st_b
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
ob run --new-server "$b/OMERO.server-5.6.3.zip" >"$t/b.out" 2>&1; is "$?" 0 "a run upgrades st_b"
id=$(jq -r .run_id "$b/.omero-upgrade-run.json")
stops=$(grep -c 'admin stop' "$b/OMERO.server-5.6.3/var/stub/calls" 2>/dev/null)
out=$(ob run --new-server "$b/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 0 "run again on the upgraded installation: exit 0"
like "$out" "nothing to do: the installation is already upgraded" "… nothing to do"
is "$(jq -r .run_id "$b/.omero-upgrade-run.json") $(ls -a "$b" | grep -c '^\.omero-upgrade-run\.json\.[0-9]')" "$id 0" \
  "… no new run record (the completed one stays, none renamed)"
is "$(grep -c 'admin stop' "$b/OMERO.server-5.6.3/var/stub/calls" 2>/dev/null)" "$stops" "… and no server stop"
out=$(ob run --new-server "$b/OMERO.server-5.6.3.zip" --dry-run 2>&1); rc=$?
is "$rc" 0 "run --dry-run agrees: exit 0"
like "$out" "nothing to do" "… nothing to do"

done_testing
