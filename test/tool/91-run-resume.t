#!/usr/bin/env bash
# omero-upgrade run --resume: a failure injected after each step in turn, the optional ones
# included (OMERO_UPGRADE_FAIL_AFTER_STEP: the step has run, then the run stops as if it had
# failed), then --resume, ends with the database and the server tree exactly as after a clean run.
# Real failures too: bin/omero refusing to stop (nothing changed yet), the backup changed before
# --resume (refused until it is the recorded one again), a hop script failing half-way (the
# database stays at its version; fixed, then resumed), and Ctrl-C during a step.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
upgrade() { local root=$1; shift; "$TOOL" --server-dir "$root/OMERO.server" run "$@"; }
# Every optional step too, so that a failure is injected after each of them as well.
opts=(--orphans --colors all --move-annotations-to-wells screen:1 --vacuum-full)

scenario "$t/clean" r_clean
upgrade "$t/clean" --new-server "$t/clean/OMERO.server-5.6.3.zip" "${opts[@]}" >"$t/clean.out" 2>&1
is "$?" 0 "a clean run"
is "$(jq -r '[.steps[].id | select(. == "orphans" or . == "colors" or . == "wells" or . == "vacuum-full")] | join(",")' \
        "$t/clean/.omero-upgrade-run.json")" "orphans,colors,wells,vacuum-full" "… with every optional step"
fingerprint "$t/clean" r_clean > "$t/clean.fp"
steps=$(jq -r '.steps[].id' "$t/clean/.omero-upgrade-run.json")

n=0
for s in $steps; do
  n=$((n + 1))
  r=$t/s$n
  scenario "$r" "r_s$n"
  out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=$s upgrade "$r" --new-server "$r/OMERO.server-5.6.3.zip" "${opts[@]}" 2>&1); rc=$?
  st=$(jq -r '.status + " " + .failed_step' "$r/.omero-upgrade-run.json")
  is "$rc $st" "2 failed $s" "failure injected after $s: exit 2, recorded as failed at $s"
  out=$(upgrade "$r" --resume 2>&1); rc=$?
  is "$rc" 0 "… --resume completes"
  [ "$rc" -eq 0 ] || diag "$out"
  is "$(jq -r --arg s "$s" '.steps[] | select(.id == $s) | .attempts' "$r/.omero-upgrade-run.json")" 2 "… having run $s again"
  [ "$s" = server-stop ] && ok "$(jq -e '.downtime.stop_began < (.steps[] | select(.id == "server-stop") | .started)' \
    "$r/.omero-upgrade-run.json" >/dev/null; echo $?)" "… the downtime still measured from the first stop, which stopped it"
  fingerprint "$r" "r_s$n" > "$t/s$n.fp"
  diff "$t/clean.fp" "$t/s$n.fp" > "$t/s$n.diff"
  ok $? "… with the database and tree exactly as after a clean run"
  [ -s "$t/s$n.diff" ] && diag "$(head -20 "$t/s$n.diff")"
done

# bin/omero refuses to stop: the run stops there, before anything is changed.
r=$t/stop
scenario "$r" r_stop
touch "$r/OMERO.server/var/stub/stop-fails"
out=$(upgrade "$r" --new-server "$r/OMERO.server-5.6.3.zip" "${opts[@]}" --stop-timeout 3 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "bin/omero admin stop fails: the run stops (exit $rc)"
like "$out" "step server-stop failed" "… at server-stop"
like "$out" "downtime none: server-stop failed, the server is still running" "… the report says the server still runs"
unlike "$out" "has been down since" "… not that it is down"
is "$(jq -r '.downtime.stopped_at' "$r/.omero-upgrade-run.json")" null "… and the state records no stop time"
is "$("$TOOL" --server-dir "$r/OMERO.server" --json server status | jq -r .result.running)" true "… (it does run)"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… the symlink untouched"
is "$(q r_stop -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.3__1" \
  "… the database untouched"
out=$(upgrade "$r" --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 2 "a new run without --resume refuses while one is unfinished"
like "$out" "unfinished run" "… and says to resume"
rm "$r/OMERO.server/var/stub/stop-fails"
out=$(upgrade "$r" --resume 2>&1); rc=$?
is "$rc" 0 "… --resume once it can stop"
like "$out" "downtime [0-9]+:[0-9]{2}:[0-9]{2} \(server stopped" "… then the report states the downtime"
is "$(jq -r '(.steps[] | select(.id == "server-stop")) as $s | .downtime as $d
             | [$s.attempts, $d.stop_began == $s.started, $d.stopped_at == $s.ended] | map(tostring) | join(" ")' \
        "$r/.omero-upgrade-run.json")" "2 true true" \
  "… measured from the start of the second stop, the one that stopped it"
fingerprint "$r" r_stop > "$t/stop.fp"
diff "$t/clean.fp" "$t/stop.fp" >/dev/null; ok $? "… same end state as a clean run"

# The backup changes between the failure and --resume: the resumed steps refuse to go on until
# the file is the one recorded again.
r=$t/bk
scenario "$r" r_bk
OMERO_UPGRADE_FAIL_AFTER_STEP=server-stop upgrade "$r" --new-server "$r/OMERO.server-5.6.3.zip" "${opts[@]}" >/dev/null 2>&1
bk=$(jq -r .backup.path "$r/.omero-upgrade-run.json")
printf x >> "$bk"
out=$(upgrade "$r" --resume 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a backup changed after it was recorded: --resume refuses (exit $rc)"
like "$out" "step server-stop refused: .*the backup .* changed since step backup recorded it" "… at the next step, saying why"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… the symlink untouched"
is "$(q r_bk -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.3__1" \
  "… the database untouched"
truncate -s -1 "$bk"
out=$(upgrade "$r" --resume 2>&1); rc=$?
is "$rc" 0 "… with the original back, --resume completes"
[ "$rc" -eq 0 ] || diag "$out"
like "$out" "comparing the SHA-256 of the backup" "… having compared it again"

# A hop script fails half-way: the database stays at OMERO5.3__1; with the script fixed, --resume.
r=$t/hop
scenario "$r" r_hop OMERO5.3__1:OMERO5.4__0
out=$(upgrade "$r" --new-server "$r/OMERO.server-5.6.3.zip" "${opts[@]}" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a failing upgrade script stops the run (exit $rc)"
like "$out" "step db-upgrade failed" "… at db-upgrade"
is "$(q r_hop -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.3__1" \
  "… the database is still at OMERO5.3__1"
like "$out" "downtime the server has been down since" "… the report says the server is down"
sed -i '/injected_failure/d' "$r/OMERO.server/sql/psql/OMERO5.4__0/OMERO5.3__1.sql"   # the fix
out=$(upgrade "$r" --resume 2>&1); rc=$?
is "$rc" 0 "… --resume with the script fixed completes"
[ "$rc" -eq 0 ] || diag "$out"
fingerprint "$r" r_hop > "$t/hop.fp"
diff <(grep -v 'OMERO5.4__0/OMERO5.3__1.sql' "$t/clean.fp") <(grep -v 'OMERO5.4__0/OMERO5.3__1.sql' "$t/hop.fp") >/dev/null
ok $? "… same end state as a clean run"

# Ctrl-C (SIGINT to the run) during a step: recorded as interrupted, exit 2, then resumable.
r=$t/int
scenario "$r" r_int
echo 4 > "$r/OMERO.server/var/stub/stop-delay"   # server stop waits ~4 s for the sessions to end
"$TOOL" --server-dir "$r/OMERO.server" run --new-server "$r/OMERO.server-5.6.3.zip" >"$t/int.out" 2>&1 &
pid=$!   # the tool itself, not a subshell (which would ignore SIGINT in the background)
for _ in $(seq 100); do
  [ "$(jq -r '.steps[] | select(.id == "server-stop") | .status' "$r/.omero-upgrade-run.json" 2>/dev/null)" = running ] && break
  sleep 0.1
done
sleep 0.5
kill -INT "$pid"; wait "$pid"; rc=$?
is "$rc" 2 "Ctrl-C during server-stop: exit 2"
is "$(jq -r '.status + " " + (.steps[] | select(.id == "server-stop") | .status)' "$r/.omero-upgrade-run.json")" \
  "interrupted interrupted" "… recorded as interrupted"
rm -f "$r/OMERO.server/var/stub/stop-delay"
out=$(upgrade "$r" --resume 2>&1); rc=$?
is "$rc" 0 "… --resume completes"
[ "$rc" -eq 0 ] || diag "$out"

done_testing
