#!/usr/bin/env bash
# A plain run after a rollback (issue 14): the new tree left by the rolled-back run holds a stale
# config.xml naming the database from before the rollback. The new run must use the database the
# live server uses (the old tree's config.xml: the restored one), upgrade that one, never start
# the server on the stale one, and its report's versions are read back from the database the
# server runs on after the run. A config.xml edited during a run (another database) is refused
# before the server is started on it.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" rr_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
zip=$r/OMERO.server-5.6.3.zip
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }

ou run --new-server "$zip" >"$t/run1.out" 2>&1; is "$?" 0 "a first run upgrades rr_a"
ou rollback >"$t/rb.out" 2>&1; is "$?" 0 "… rolled back"
into=$(jq -r .rollback.into "$r/.omero-upgrade-run.json")
is "$(config_value "$r/OMERO.server" omero.db.name) $(dbv "$into")" "$into OMERO5.3__1" \
  "the old server runs on the restored database $into, at OMERO5.3__1"
is "$(config_value "$r/OMERO.server-5.6.3" omero.db.name)" "rr_a" "the new tree's config.xml still names rr_a (stale)"
# A write made on the restored database after the rollback must survive the next run.
q "$into" -c "INSERT INTO configuration (name, value) VALUES ('after.rollback', 'kept')"
# run --dry-run and run --resume agree with what a plain run then does (issue 14).
out=$(ou --json run --new-server "$zip" --dry-run 2>/dev/null); rc=$?
is "$rc" 0 "after the rollback, run --dry-run: the plan can run (exit 0)"
is "$(jq -r '[.result.database.name, .result.database.version_before, .result.can_run] | map(tostring) | join(" ")' <<<"$out")" \
  "$into OMERO5.3__1 true" "… on the database the old server uses ($into, OMERO5.3__1), not the stale rr_a"
out=$(ou run --resume 2>&1); rc=$?
like "$out" "is already rolled back; nothing to do" "run --resume: the rolled-back run is not continued"
like "$out" "server +[^ ]*/OMERO.server → [^ ]*/OMERO.server-5.6.3 until the rollback, now → [^ ]*/OMERO.server-5.3.5" \
  "… its report says where OMERO.server points now, not only where the run had pointed it"
unlike "$out" "undo alone" "… and offers no undo of steps the rollback undid"
is "$(readlink "$r/OMERO.server") $(config_value "$r/OMERO.server" omero.db.name)" "OMERO.server-5.3.5 $into" "… and nothing changed"

out=$(ou run --new-server "$zip" 2>&1); rc=$?
is "$rc" 0 "a plain run after the rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$out"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.6.3" "OMERO.server points to the new tree"
is "$(config_value "$r/OMERO.server" omero.db.name)" "$into" \
  "the new tree's config.xml names the database the server ran on ($into), not the stale rr_a"
is "$(dbv "$into")" "OMERO5.4__0" "that database was upgraded"
is "$(q "$into" -c "SELECT value FROM configuration WHERE name = 'after.rollback'")" "kept" \
  "… with the write made after the rollback"
is "$(q "$into" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname = '$into'")" 1 \
  "the server runs on it"
like "$out" "database $into: OMERO5.3__1 → OMERO5.4__0" "the report names the database used and its versions"
j=$(jq -c '.database | {name_after, version_after}' "$r/.omero-upgrade-run.json")
is "$j" "{\"name_after\":\"$into\",\"version_after\":\"OMERO5.4__0\"}" "… read back into the record"
ls "$r/OMERO.server-5.6.3/etc/grid/" | grep -q '^config.xml.stale-' ; ok $? "the stale config.xml is kept aside, not lost"

# --- a config.xml edited during a run: the server is not started on another database -----------
b=$t/b
scenario "$b" rr_b
createdb -T run_template -O omero rr_other
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
OMERO_UPGRADE_FAIL_AFTER_STEP=db-upgrade ob run --new-server "$b/OMERO.server-5.6.3.zip" >"$t/b1.out" 2>&1
is "$?" 2 "a run stopped after db-upgrade"
"$b/OMERO.server/bin/omero" config set omero.db.name rr_other
out=$(ob run --resume 2>&1); rc=$?
is "$rc" 2 "--resume with config.xml now naming another database: exit 2"
like "$out" "names the database rr_other.*this run upgrades rr_b" "… says which and which"
ok "$([ ! -e "$b/OMERO.server-5.6.3/var/stub/running" ]; echo $?)" "… and the server is not started"
is "$(dbv rr_other)" "OMERO5.3__1" "… rr_other untouched"
"$b/OMERO.server/bin/omero" config set omero.db.name rr_b
out=$(ob run --resume 2>&1); rc=$?
is "$rc" 0 "put back, --resume completes"
like "$out" "database rr_b: OMERO5.3__1 → OMERO5.4__0" "… reporting the versions read back"

# --- a config.xml edited during a rollback: the old server is not started on another database --
touch "$b/OMERO.server-5.3.5/var/stub/start-fails"
ob rollback >"$t/b2.out" 2>&1
ok "$([ "$?" -ne 0 ]; echo $?)" "a rollback failed at the old server's start, after its restore"
rm "$b/OMERO.server-5.3.5/var/stub/start-fails"
intob=$(jq -r .rollback.into "$b/.omero-upgrade-run.json")
"$b/OMERO.server/bin/omero" config set omero.db.name rr_other
out=$(ob rollback 2>&1); rc=$?
is "$rc" 2 "the rollback again with config.xml naming rr_other: exit 2"
like "$out" "names the database rr_other, but this rollback gives back $intob" "… says which and which"
ok "$([ ! -e "$b/OMERO.server-5.3.5/var/stub/running" ]; echo $?)" "… and the old server is not started"
"$b/OMERO.server/bin/omero" config set omero.db.name "$intob"
out=$(ob rollback 2>&1); rc=$?
is "$rc" 0 "put back, the rollback completes"
is "$(q "$intob" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname = '$intob'")" 1 \
  "… the old server runs on the restored database"

done_testing
