#!/usr/bin/env bash
# omero-upgrade run end to end on a sample server (stub bin/omero, running, on a copy of the
# fixture at OMERO5.3__1) and a sample new-server zip: --dry-run changes nothing and says whether
# the plan can run; a full run reaches OMERO5.4__0 with every step recorded; the report; a second
# run, --resume or rollback while one holds the lock (a shell flock, a real run) refuses; rollback
# gives back the old tree and the original content.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" run_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
state=$r/.omero-upgrade-run.json
fingerprint "$r" run_a > "$t/original.fp"
cp "$r/OMERO.server/etc/grid/config.xml" "$t/original-config.xml"

# --- dry run ---------------------------------------------------------------------------------
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --dry-run --vacuum-full 2>&1); rc=$?
is "$rc" 0 "--dry-run: the plan can run (exit 0)"
like "$out" "OMERO5.3__1 → OMERO5.4__0: sql/psql/OMERO5.4__0/OMERO5.3__1.sql" "… names the hop script from the new server"
like "$out" "server-stop .*\[server down\]" "… marks the offline steps"
like "$out" "omero-upgrade --server-dir [^ ]+ db upgrade --target OMERO5.4__0" "… shows the exact commands"
like "$out" "vacuum-full" "… with the optional step asked for"
like "$out" "backup dir .*free, needs about" "… and the sizes and free space"
like "$out" "check: ok" "… and runs the read-only check"
like "$out" "precheck: ok" "… and the precheck"
ok "$([ ! -e "$state" ] && [ ! -e "$state.lock" ] && [ ! -e "$r/omero-upgrade-backups" ]; echo $?)" \
  "--dry-run writes no state, no lock, no backup"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… leaves the symlink"
cmp -s <(fingerprint "$r" run_a) "$t/original.fp"
ok $? "… and the database and tree exactly as they were"
j=$(ou --json run --new-server "$r/OMERO.server-5.6.3.zip" --dry-run 2>/dev/null)
is "$(jq -r '.result.can_run, ([.result.steps[].id] | join(","))' <<<"$j" | tr '\n' ' ')" \
  "true check,precheck,tree-listing,backup,server-stop,binaries-install,db-upgrade,db-verify,cache-clear,upgrade-check-off,environment,server-start,diagnostics " \
  "--dry-run --json: can_run and the steps in the guide's order"
out=$(ou run --new-server "$r/nothing.zip" --dry-run 2>&1); rc=$?
is "$rc" 2 "--dry-run with a missing new server: exit 2"
like "$out" "does not exist" "… says why"
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --move-annotations-to-wells all --dry-run 2>&1); rc=$?
is "$rc" 2 "--move-annotations-to-wells needs screen:, plate: or well: ids (exit 2)"
like "$out" "expected screen:IDS, plate:IDS or well:IDS" "… says so"
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --target OMERO9.9__0 --dry-run 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "--dry-run to a target without scripts: not runnable (exit $rc)"
like "$out" "no chain of upgrade scripts from OMERO5.3__1 to OMERO9.9__0" "… says why"

# --- two runs at once: the second refuses ------------------------------------------------------
exec 9>"$state.lock"; flock -n 9
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 2 "a run while another holds the lock: exit 2"
like "$out" "another omero-upgrade run or rollback is in progress" "… says so"
ok "$([ ! -e "$state" ]; echo $?)" "… and starts nothing"
exec 9>&-

# A real run in progress (slowed down: server stop waits ~3 s for the sessions to end) on another
# scenario: a second run, --resume and rollback all refuse while it holds the lock; it completes.
b=$t/b
scenario "$b" run_b
echo 3 > "$b/OMERO.server/var/stub/stop-delay"
"$TOOL" --server-dir "$b/OMERO.server" run --new-server "$b/OMERO.server-5.6.3.zip" >"$t/b.out" 2>&1 &
pid=$!
for _ in $(seq 150); do
  [ "$(jq -r '.steps[] | select(.id == "server-stop") | .status' "$b/.omero-upgrade-run.json" 2>/dev/null)" = running ] && break
  sleep 0.1
done
is "$(jq -r '.steps[] | select(.id == "server-stop") | .status' "$b/.omero-upgrade-run.json")" running \
  "a real run in progress (at server-stop)"
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
out=$(ob run --new-server "$b/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 2 "… a second run meanwhile: exit 2"
like "$out" "another omero-upgrade run or rollback is in progress \(pid $pid\)" "… naming the run in progress"
out=$(ob run --resume 2>&1); rc=$?
is "$rc" 2 "… run --resume meanwhile: exit 2"
like "$out" "in progress" "… says so"
out=$(ob rollback 2>&1); rc=$?
is "$rc" 2 "… rollback meanwhile: exit 2"
like "$out" "in progress" "… says so"
wait "$pid"; rc=$?
is "$rc" 0 "… and the run in progress completes (exit 0)"
[ "$rc" -eq 0 ] || diag "$(tail -20 "$t/b.out")"
is "$(jq -r '.status + " " + (.rollback.status)' "$b/.omero-upgrade-run.json")" "completed not run" \
  "… recorded as completed, not rolled back"

# --- the full run ----------------------------------------------------------------------------
wells_before=$(q run_a -c "SELECT count(*) FROM wellannotationlink")
orphans_before=$(q run_a -c "SELECT count(*) FROM omero_orphans_scan()")
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --vacuum-full --orphans --move-annotations-to-wells screen:1 2>&1); rc=$?
is "$rc" 0 "full run: exit 0"
[ "$rc" -eq 0 ] || diag "$out"
like "$out" "Report of run [^ ]+: completed" "… ends with the report"
like "$out" "downtime [0-9]+:[0-9]{2}:[0-9]{2} \(server stopped" "… which states the downtime"
like "$out" "rollback --state" "… and how to roll back"
like "$out" "schema +conforms to a fresh OMERO5.4__0 \(db verify: no difference\)" "… and db verify's verdict on the upgraded schema"
is "$(q run_a -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.4__0" \
  "the database is at OMERO5.4__0"
ok "$([ "$(q run_a -c "SELECT count(*) FROM wellannotationlink")" -gt "$wells_before" ]; echo $?)" \
  "the optional step moved annotations to the wells of screen 1"
is "$(q run_a -c "SELECT count(*) FROM (SELECT parent, child, owner_id FROM wellannotationlink GROUP BY 1, 2, 3 HAVING count(*) > 1) d")" \
  "0" "… each at most once per owner"
ok "$([ "$orphans_before" -gt 0 ]; echo $?)" "the database had orphans ($orphans_before)"
is "$(q run_a -c "SELECT count(*) FROM omero_orphans_scan()") $(q run_a -c "SELECT string_agg(status || ' ' || deleted, ',') FROM omero_upgrade.orphan_run")" \
  "0 deleted $orphans_before" "--orphans deleted them (db orphans delete --apply), in one archived run"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.6.3" "OMERO.server points to the new tree"
is "$("$r/OMERO.server/bin/omero" config get omero.db.name)" "run_a" "the new tree has the old config.xml"
is "$("$r/OMERO.server/bin/omero" config get omero.upgrades.url)" "" "the upgrade check is off"
grep -q 'omero.upgrades.url' "$r/OMERO.server/etc/grid/config.xml"; ok $? "… set explicitly in config.xml"
ok "$([ -z "$(ls -A "$r/data/BioFormatsCache")" ] && [ -e "$r/data/ManagedRepository/img.tif" ]; echo $?)" \
  "the Bio-Formats cache is empty, the rest of the data dir is kept"
is "$(ou --json server status | jq -r .result.running)" "true" "the new server runs"
j=$(cat "$state")
is "$(jq -r '[.steps[] | .status] | unique | join(",")' <<<"$j")" "done" "the state file: every step done"
is "$(jq -r .status <<<"$j")" "completed" "… the run completed"
is "$(jq -r '[.schema.verdict, .schema.differences, .schema.version] | map(tostring) | join(" ")' <<<"$j")" "conforms 0 OMERO5.4__0" \
  "… the schema's verdict recorded (db-verify after db-upgrade)"
is "$(jq -r '.steps[] | select(.id == "backup") | .result.path' <<<"$j")" "$(jq -r .backup.path <<<"$j")" \
  "… the backup recorded"
sha=$(jq -r .backup.sha256 <<<"$j"); bk=$(jq -r .backup.path <<<"$j")
is "$(sha256sum "$bk" | cut -d' ' -f1)" "$sha" "… with the checksum of the file"
ok "$(jq -e '.downtime.seconds >= 0 and (.steps | map(.seconds >= 0) | all)' <<<"$j" >/dev/null; echo $?)" \
  "… the downtime and per-step times"
calls=$(cat "$r"/OMERO.server-5.3.5/var/stub/calls "$r"/OMERO.server-5.6.3/var/stub/calls 2>/dev/null)
like "$(cat "$r/OMERO.server-5.3.5/var/stub/calls" | tr '\n' ';')" "admin stop;" "the old server was stopped by its own bin/omero"
like "$(cat "$r/OMERO.server-5.6.3/var/stub/calls" | tr '\n' ';')" "admin jvmcfg;.*admin start;.*admin diagnostics;" \
  "the new one reported its JVM settings, was started, then diagnosed"
ok "$(grep -q . "$(jq -r '.steps[] | select(.id == "tree-listing") | .result.listing' <<<"$j")"; echo $?)" \
  "the listing of the old tree was written"
log=$(jq -r .log_file <<<"$j")
like "$(cat "$log")" "running: .*omero-upgrade .*db upgrade" "the log beside the state file has every command"
# Order: nothing changes before the verified backup; the server is stopped only after it.
is "$(jq -r '[.steps[] | .id] | index("backup") < index("server-stop")' <<<"$j")" "true" "the backup comes before the stop"
b_end=$(jq -r '.steps[] | select(.id == "backup") | .ended' <<<"$j"); s_start=$(jq -r '.steps[] | select(.id == "server-stop") | .started' <<<"$j")
ok "$([[ "$b_end" < "$s_start" || "$b_end" == "$s_start" ]]; echo $?)" "… and ended before the stop began"

out=$(ou run --report 2>&1); rc=$?
is "$rc" 0 "run --report of the completed run"
like "$out" "backup +[^ ]+\.pgdump" "… names the backup"
is "$(ou --json run --report | jq -r '.result.rollback_commands | test("restore .* --into .* --switch")')" "true" \
  "--json report: the rollback commands"
out=$(ou run --resume 2>&1); rc=$?
is "$rc" 0 "--resume of a completed run: nothing to do"
like "$out" "already completed" "… says so"
fingerprint "$r" run_a > "$t/upgraded.fp"

# --- rollback ----------------------------------------------------------------------------------
out=$(ou rollback --dry-run 2>&1); rc=$?
is "$rc" 0 "rollback --dry-run"
into=$(jq -r .rollback.into "$state")
like "$into" "^run_a_before_[0-9]{8}t[0-9]{4}$" "the run chose the rollback database's name: $into"
like "$out" "restore .*--into $into --switch" "… shows the restore into a new database"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.6.3" "… and changes nothing"
out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=restore ou rollback 2>&1); rc=$?
is "$rc" 2 "rollback stopped by an injected failure after its restore"
like "$out" "step restore: injected failure" "… says so"
is "$(jq -r '.rollback.steps[] | select(.id == "restore") | .status' "$state")" "failed" "… and records the step as failed"
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback run again completes"
[ "$rc" -eq 0 ] || diag "$out"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "OMERO.server points to the old tree again"
is "$("$r/OMERO.server/bin/omero" config get omero.db.name)" "$into" "omero.db.name names the restored database"
is "$(ou --json server status | jq -r .result.running)" "true" "the old server runs"
is "$(q $into -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" \
  "OMERO5.3__1" "the restored database is at OMERO5.3__1"
# The restored database must equal the original (the template), content and schema.
fingerprint "$r" $into | sed -n '/== database/,/== tree/p' > "$t/restored.db"
sed -n '/== database/,/== tree/p' "$t/original.fp" > "$t/original.db"
diff "$t/original.db" "$t/restored.db" > "$t/db.diff"; ok $? "the restored database's content equals the original"
[ -s "$t/db.diff" ] && diag "$(cat "$t/db.diff")"
drop='OMERO.server-5.6.3\|^OMERO.server ->\|BioFormatsCache\|OMERO.server-5.3.5/etc/grid/config.xml'
sed -n '/== tree/,/== config/p' "$t/original.fp" | grep -v "$drop" > "$t/original.tree"
fingerprint "$r" $into | sed -n '/== tree/,/== config/p' | grep -v "$drop" > "$t/after.tree"
diff "$t/original.tree" "$t/after.tree" > "$t/tree.diff"; ok $? "the old tree is as it was"
[ -s "$t/tree.diff" ] && diag "$(head -20 "$t/tree.diff")"
is "$(diff "$t/original-config.xml" "$r/OMERO.server/etc/grid/config.xml" | grep '^[<>]' | sed -E 's/value="[^"]*"//' | sort -u | tr '\n' ';')" \
  '<     <property name="omero.db.name" />;>     <property name="omero.db.name" />;' "its config.xml differs from the original in omero.db.name only"
is "$(q run_a -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.4__0" \
  "the upgraded database is kept"
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback again: nothing to do"
like "$out" "already rolled back" "… says so"
is "$(jq -r .status "$state")" "rolled back" "the state file says rolled back"

done_testing
