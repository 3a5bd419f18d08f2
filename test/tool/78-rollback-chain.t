#!/usr/bin/env bash
# Rollback across runs (issue 14: "a rollback always gets back the state before the last run that
# changed something"). Run 1 upgrades (5.3.0 → 5.3.5, OMERO5.3__0 → OMERO5.3__1); run 2 (to
# 5.6.3) fails before it changes anything: its server stop fails after its backup (a), or it stops
# right after its check, with no backup (b). Run 1's record is kept beside the state file and run
# 2's names it; `rollback` passes over run 2 (nothing of it to undo) and rolls back run 1: the old
# tree, run 1's backup restored into a new database, the server on it. Run 2's record says so, a
# second rollback undoes nothing more, `status` said beforehand which run a rollback would undo,
# and a new run after it works and keeps the chain. Run 2's report offers no restore. (c): two
# runs that both changed something, a rollback after a rollback undoes the run before.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
blitz_on() { q "$1" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname = '$1'"; }

# ROOT/OMERO.server -> OMERO.server-5.3.0 (scripts up to OMERO5.3__0) on DB at OMERO5.3__0, running;
# ROOT/OMERO.server-5.3.5.zip (up to OMERO5.3__1) and ROOT/OMERO.server-5.6.3.zip (up to OMERO5.4__0).
chain_scenario() {
  local root=$1 db=$2 v
  mkdir -p "$root/data/ManagedRepository"
  fixture_db "$db" --version OMERO5.3__0 --owner omero
  q "$db" -c "CREATE EXTENSION omero_upgrade"  # precheck of the hop OMERO5.3__0 → OMERO5.3__1 (no -precheck.sql)
  make_sample_server "$root/OMERO.server-5.3.0" 5.3.0 "$db" omero "$root/data"
  rm -r "$root/OMERO.server-5.3.0/sql/psql/OMERO5.3__1"
  ln -s OMERO.server-5.3.0 "$root/OMERO.server"
  for v in 5.3.5 5.6.3; do
    make_sample_server "$root/build/OMERO.server-$v" "$v"
    rm "$root/build/OMERO.server-$v/etc/grid/config.xml"
    make_server_zip "$root/build/OMERO.server-$v" "$root/OMERO.server-$v.zip"
  done
  rm -r "$root/build"
  "$TOOL" --server-dir "$root/OMERO.server" server start >/dev/null 2>&1
}

# --- (a) run 2 fails at its server stop, after its backup -------------------------------------
r=$t/a
chain_scenario "$r" rc_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
state=$r/.omero-upgrade-run.json
q rc_a -c "INSERT INTO configuration (name, value) VALUES ('before.run1', 'kept')"
before=$(db_fingerprint rc_a)
out=$(ou run --new-server "$r/OMERO.server-5.3.5.zip" 2>&1); rc=$?
is "$rc" 0 "run 1 upgrades rc_a to 5.3.5"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
run1=$(jq -r .run_id "$state")
is "$(readlink "$r/OMERO.server") $(dbv rc_a)" "OMERO.server-5.3.5 OMERO5.3__1" "… OMERO.server → 5.3.5, rc_a at OMERO5.3__1"
q rc_a -c "INSERT INTO configuration (name, value) VALUES ('after.run1', 'lost by the rollback')"

touch "$r/OMERO.server-5.3.5/var/stub/stop-fails"
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --stop-timeout 3 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "run 2 fails: its server stop fails (exit $rc)"
rm "$r/OMERO.server-5.3.5/var/stub/stop-fails"
run2=$(jq -r .run_id "$state")
is "$(jq -r '[.status, .failed_step] | join(" ")' "$state")" "failed server-stop" "… recorded as failed at server-stop"
ok "$([ -f "$state.$run1" ] && [ "$(jq -r .run_id "$state.$run1")" = "$run1" ]; echo $?)" \
  "run 1's record is kept beside the state file (.$run1)"
is "$(jq -r '.previous_run | [.run_id, .state_file] | join(" ")' "$state")" "$run1 $state.$run1" \
  "run 2's record names run 1's (previous_run)"
like "$out" "To roll back: nothing of this run to roll back" "run 2's report: nothing of it to roll back"
unlike "$out" "pg_restore|restore .* --into" "… and no restore offered"
like "$out" "advice: continue: .*nothing has changed yet" "… the advice is to continue"
is "$(readlink "$r/OMERO.server") $(dbv rc_a) $(blitz_on rc_a)" "OMERO.server-5.3.5 OMERO5.3__1 1" \
  "… the installation is as run 1 left it, the server running"

j=$(ou --json status 2>/dev/null)
is "$(jq -r '.result.rollback | [.possible, .run_id, .passed_over[0].run_id, .db_changed, .switched] | map(tostring) | join(" ")' <<<"$j")" \
  "true $run1 $run2 true true" "status: a rollback would undo run 1 (run 2 passed over), restore and switch back"
out=$(ou rollback --dry-run 2>&1); rc=$?
is "$rc" 0 "rollback --dry-run: exit 0"
like "$out" "run $run2 .*changed nothing" "… run 2 changed nothing"
like "$out" "rolling back the earlier run $run1" "… so it rolls back run 1"
like "$out" "restore .*--into" "… with a restore of run 1's backup"
is "$(jq -r .status "$state")" "failed" "… the dry run changed no record"

out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
into=$(jq -r .rollback.into "$state.$run1")
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.0" "OMERO.server points to the tree from before run 1"
is "$(config_value "$r/OMERO.server" omero.db.name) $(dbv "$into")" "$into OMERO5.3__0" \
  "… its config.xml names the restored database $into, at OMERO5.3__0"
is "$(db_fingerprint "$into")" "$before" "… whose key tables are as before run 1"
is "$(q "$into" -c "SELECT count(*) FROM configuration WHERE name = 'before.run1'") $(q "$into" -c "SELECT count(*) FROM configuration WHERE name = 'after.run1'")" \
  "1 0" "… (a write from before run 1 there, one made after it not)"
is "$(blitz_on "$into") $(blitz_on rc_a)" "1 0" "… and the old server runs on it"
is "$(jq -r '[.status, .rollback.status] | join(" ")' "$state.$run1")" "rolled back completed" "run 1's record: rolled back"
is "$(jq -r '[.status, .rollback.nothing_changed, .rollback.rolled_back_run] | map(tostring) | join(" ")' "$state")" \
  "rolled back true $run1" "run 2's record: finished, nothing changed, run 1 rolled back in its place"
is "$(dbv rc_a)" "OMERO5.3__1" "the upgraded rc_a is kept"

out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "a second rollback: exit 0"
like "$out" "run $run1 .*was rolled back" "… says run 1 was rolled back already"
is "$(readlink "$r/OMERO.server") $(config_value "$r/OMERO.server" omero.db.name)" "OMERO.server-5.3.0 $into" \
  "… and changes nothing"
j=$(ou --json status 2>/dev/null)
is "$(jq -r '.result.rollback.possible' <<<"$j")" "false" "status: no rollback left to do"

out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 0 "a new run after the rollback upgrades the restored database"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
is "$(dbv "$into") $(readlink "$r/OMERO.server")" "OMERO5.4__0 OMERO.server-5.6.3" "… to OMERO5.4__0 on 5.6.3"
is "$(jq -r .previous_run.run_id "$state")" "$run2" "… its record names run 2's, kept beside it"
ok "$([ -f "$state.$run2" ] && [ -f "$state.$run1" ]; echo $?)" "… both earlier records are kept"

# --- (b) run 2 stops after its check: no backup, no change ------------------------------------
b=$t/b
chain_scenario "$b" rc_b
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
sb=$b/.omero-upgrade-run.json
ob run --new-server "$b/OMERO.server-5.3.5.zip" >"$t/b1.out" 2>&1
is "$?" 0 "(b) run 1 upgrades rc_b"
b1=$(jq -r .run_id "$sb")
OMERO_UPGRADE_FAIL_AFTER_STEP=check ob run --new-server "$b/OMERO.server-5.6.3.zip" >"$t/b2.out" 2>&1
is "$?" 2 "(b) run 2 stopped after its check (no backup)"
out=$(ob rollback 2>&1); rc=$?
is "$rc" 0 "(b) rollback: exit 0 (not 'the run made no backup')"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
intob=$(jq -r .rollback.into "$sb.$b1")
is "$(readlink "$b/OMERO.server") $(config_value "$b/OMERO.server" omero.db.name) $(dbv "$intob") $(blitz_on "$intob")" \
  "OMERO.server-5.3.0 $intob OMERO5.3__0 1" "(b) … run 1 rolled back: old tree, restored database, server on it"
out=$(ob run --resume 2>&1)
like "$out" "already rolled back; nothing to do" "(b) run 2 cannot be resumed any more (its plan predates the rollback)"

# --- (c) two runs that changed something: a rollback after a rollback undoes the run before ----
# Run 1 (5.3.0 → 5.3.5) and run 2 (5.3.5 → 5.6.3) complete; rollback undoes run 2 (its backup
# restored into a new database); run 1 is then the last run still in effect, so status names it
# and the next rollback undoes it: the tree and the database from before run 1. It refuses, changing
# nothing, while the installation is not as run 1 left it (config.xml edited to another database;
# OMERO.server pointed elsewhere) or run 1's backup is gone.
c=$t/c
chain_scenario "$c" rc_c
oc() { "$TOOL" --server-dir "$c/OMERO.server" "$@"; }
sc=$c/.omero-upgrade-run.json
q rc_c -c "INSERT INTO configuration (name, value) VALUES ('before.run1', 'kept')"
oc run --new-server "$c/OMERO.server-5.3.5.zip" >"$t/c1.out" 2>&1; is "$?" 0 "(c) run 1 upgrades rc_c to 5.3.5"
c1=$(jq -r .run_id "$sc")
q rc_c -c "INSERT INTO configuration (name, value) VALUES ('after.run1', 'kept until run 1 is undone')"
oc run --new-server "$c/OMERO.server-5.6.3.zip" >"$t/c2.out" 2>&1; is "$?" 0 "(c) run 2 upgrades it to 5.6.3"
c2=$(jq -r .run_id "$sc")
out=$(oc rollback 2>&1); rc=$?
is "$rc" 0 "(c) rollback undoes run 2"
into2=$(jq -r .rollback.into "$sc")
is "$(readlink "$c/OMERO.server") $(config_value "$c/OMERO.server" omero.db.name) $(dbv "$into2")" \
  "OMERO.server-5.3.5 $into2 OMERO5.3__1" "(c) … back on 5.3.5, on the restored $into2 at OMERO5.3__1"
j=$(oc --json status 2>/dev/null)
is "$(jq -r '.result.rollback | [.possible, .run_id, .rolled_back[0].run_id, .db_changed, .switched] | map(tostring) | join(" ")' <<<"$j")" \
  "true $c1 $c2 true true" "(c) status: a rollback now undoes run 1 (run 2 rolled back), restore and switch back"
like "$(oc status 2>&1)" "rollback +run $c2 was rolled back: a rollback now undoes the last run still in effect, $c1" \
  "(c) … in words"

# Not as run 1 left it: config.xml names another database.
createdb -T run_template -O omero rc_c_other
"$c/OMERO.server/bin/omero" config set omero.db.name rc_c_other
s0=$(cat "$c"/OMERO.server-*/var/stub/calls 2>/dev/null | grep -c '^admin stop')
out=$(oc rollback 2>&1); rc=$?
is "$rc" 1 "(c) config.xml edited to another database: the rollback of run 1 refused (exit 1)"
like "$out" "run $c1 is the last run still in effect \(run $c2 after it was rolled back\), but the installation is not as it left it: .*names the database rc_c_other, not $into2" \
  "(c) … naming why"
like "$out" "nothing was changed" "(c) … and that nothing was changed"
is "$(cat "$c"/OMERO.server-*/var/stub/calls 2>/dev/null | grep -c '^admin stop') $(readlink "$c/OMERO.server") $(jq -r .status "$sc.$c1")" \
  "$s0 OMERO.server-5.3.5 completed" "(c) … no stop, the symlink as it was, run 1 not marked"
is "$(oc --json status 2>/dev/null | jq -r '[.result.rollback.possible, (.result.rollback.refusal | test("rc_c_other"))] | map(tostring) | join(" ")')" \
  "false true" "(c) status says a rollback would refuse, and why"
"$c/OMERO.server/bin/omero" config set omero.db.name "$into2"
# Not as run 1 left it: OMERO.server points elsewhere.
oc server stop >/dev/null 2>&1
ln -sfn OMERO.server-5.3.0 "$c/OMERO.server"
out=$(oc rollback 2>&1); rc=$?
is "$rc" 1 "(c) OMERO.server pointed elsewhere by hand: refused (exit 1)"
like "$out" "points to $c/OMERO.server-5.3.0, but run $c1 left it at $c/OMERO.server-5.3.5" "(c) … naming both trees"
ln -sfn OMERO.server-5.3.5 "$c/OMERO.server"
oc server start >/dev/null 2>&1
# Run 1's backup gone.
bk1=$(jq -r .backup.path "$sc.$c1")
mv "$bk1" "$bk1.away"
out=$(oc rollback 2>&1); rc=$?
is "$rc" 1 "(c) run 1's backup gone: refused (exit 1)"
like "$out" "run $c1 cannot be rolled back: its backup $bk1 is gone" "(c) … naming the backup"
is "$(readlink "$c/OMERO.server") $(config_value "$c/OMERO.server" omero.db.name)" "OMERO.server-5.3.5 $into2" "(c) … nothing changed"
mv "$bk1.away" "$bk1"

out=$(oc rollback 2>&1); rc=$?
is "$rc" 0 "(c) as run 1 left it again: the rollback undoes run 1"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
like "$out" "rolling back the earlier run $c1 .*the last run still in effect" "(c) … saying it is the last run still in effect"
into1=$(jq -r .rollback.into "$sc.$c1")
is "$(readlink "$c/OMERO.server") $(config_value "$c/OMERO.server" omero.db.name) $(dbv "$into1") $(blitz_on "$into1")" \
  "OMERO.server-5.3.0 $into1 OMERO5.3__0 1" "(c) … OMERO.server-5.3.0 on $into1 (run 1's backup) at OMERO5.3__0, running"
is "$(q "$into1" -c "SELECT count(*) FROM configuration WHERE name = 'before.run1'") $(q "$into1" -c "SELECT count(*) FROM configuration WHERE name = 'after.run1'")" \
  "1 0" "(c) … the state before run 1"
is "$(jq -r '[.status, .rollback.database] | join(" ")' "$sc.$c1")" "rolled back $into2" \
  "(c) run 1's record: rolled back, working on the database run 2's rollback gave back"
out=$(oc rollback 2>&1); rc=$?
is "$rc" 0 "(c) a third rollback: exit 0"
like "$out" "nothing to roll back \(already rolled back\): run $c1 was rolled back .*no run before run $c1 is recorded" \
  "(c) … nothing left to undo"
is "$(oc --json status 2>/dev/null | jq -r '.result.rollback | [.possible, .run_id] | map(tostring) | join(" ")')" "false $c1" \
  "(c) status: no rollback left"

done_testing
