#!/usr/bin/env bash
# server status|start|stop|diagnostics|jvmcfg against a sample server tree with a stub bin/omero
# whose `admin start` opens a session on the real database (as OMERO.blitz would): stop is only
# confirmed once status says down AND no OMERO session remains.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_srv LOGIN" postgres
fixture_db srv_omero --version OMERO5.4__0 --owner omero_srv
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 srv_omero omero_srv
calls=$srv/var/stub/calls
ou() { "$TOOL" --server-dir "$srv" --log-file "$t/log" "$@"; }
blitz_sessions() { q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname = 'srv_omero'"; }

out=$(ou server status 2>&1); rc=$?
is "$rc" 3 "server status on a stopped server: exit 3 (as LSB status and pg_ctl status)"
like "$out" "server: stopped" "… and says stopped"
is "$(ou --json server status | jq -r '.result.running')" "false" "--json: running false"

out=$(ou server start --dry-run 2>&1); rc=$?
is "$rc" 0 "start --dry-run"
like "$out" "would run: bin/omero admin start" "… says what it would run"
unlike "$(cat "$calls")" "admin start" "… and does not start"

out=$(ou server start 2>&1); rc=$?
is "$rc" 0 "server start: $out"
like "$(cat "$calls")" "admin start" "bin/omero admin start was run"
is "$(blitz_sessions)" 1 "the started server holds a session on the database"
out=$(ou server start 2>&1); rc=$?
is "$rc" 0 "server start again is safe"
like "$out" "already running" "… says already running"
is "$(grep -c '^admin start' "$calls")" 1 "… and does not start a second time"
j=$(ou --json server status)
is "$(jq -r '.result.running' <<<"$j")" "true" "status --json: running"
is "$(jq -r '[.result.sessions[] | select(.application == "OMERO.blitz" and .omero)] | length' <<<"$j")" 1 \
  "status --json lists the OMERO.blitz session as OMERO's"

out=$(ou server stop --dry-run 2>&1); rc=$?
is "$rc" 0 "stop --dry-run"
like "$out" "would run: bin/omero admin stop" "… says it would stop"
unlike "$(cat "$calls")" "admin stop" "… and does not"

# The server's connections end 3 s after bin/omero admin stop returns: stop waits for them.
echo 3 > "$srv/var/stub/stop-delay"
: > "$calls"
out=$(ou server stop --timeout 30 2>&1); rc=$?
is "$rc" 0 "server stop: $out"
like "$(sed -n 2,3p "$calls" | tr '\n' ';')" "^web stop;admin stop;$" "web stop comes before admin stop"
is "$(blitz_sessions)" 0 "no OMERO session is left when stop says stopped"
like "$out" "server stopped: bin/omero admin status says down and no OMERO session remains" "… and says so"
rm -f "$srv/var/stub/stop-delay"

out=$(ou server stop 2>&1); rc=$?
is "$rc" 0 "stop again is safe"
like "$out" "already stopped" "… says already stopped"

# A stale OMERO session (left by a crashed server) keeps the stop unconfirmed, and is named.
PGAPPNAME=OMERO.blitz psql -X -q -U omero_srv -d srv_omero -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do [ "$(blitz_sessions)" = 1 ] && break; sleep 0.1; done
stale=$(q postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname = 'srv_omero'")
out=$(ou server stop --timeout 3 2>&1); rc=$?
is "$rc" 1 "stop with a stale OMERO session: exit 1"
like "$out" "OMERO still holds connections to the database srv_omero: 1 session\(s\): pid $stale omero_srv@OMERO.blitz" \
  "… naming the session that holds on"
j=$(ou --json server stop --timeout 1)
is "$(jq -r '.exit_code, .result.stopped, (.result.omero_sessions | length)' <<<"$j" | tr '\n' ' ')" "1 false 1 " \
  "--json: exit_code 1, stopped false, the session listed"
q postgres -c "SELECT pg_terminate_backend($stale)" >/dev/null
wait "$sleeper" 2>/dev/null

# Someone else's session (not OMERO's) does not block the stop but is reported.
PGAPPNAME=admin-shell psql -X -q -d srv_omero -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'admin-shell'")" = 1 ] && break; sleep 0.1; done
out=$(ou server stop --timeout 5 2>&1); rc=$?
is "$rc" 0 "stop with only a non-OMERO session: confirmed"
like "$out" "warning: other sessions remain on srv_omero \(not OMERO's\): 1 session\(s\): pid [0-9]+ postgres@admin-shell" \
  "… with a warning naming it"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'admin-shell'" >/dev/null
wait "$sleeper" 2>/dev/null

# A slow start (the stub's bin/omero admin start takes 3 s): the wait is not silent.
echo 3 > "$srv/var/stub/start-delay"
out=$(ou server start 2>&1); rc=$?
rm -f "$srv/var/stub/start-delay"
is "$rc" 0 "a slow server start"
like "$out" "bin/omero admin start: running, elapsed 0:00:0[2-4], ETA unknown \(bin/omero reports no progress; gives up after 0:10:00\)" \
  "… shows a progress line with the elapsed time and the deadline"

# bin/omero admin stop fails: the server keeps running, the tool says so.
touch "$srv/var/stub/stop-fails"
out=$(ou server stop --timeout 2 2>&1); rc=$?
is "$rc" 1 "admin stop fails: exit 1"
like "$out" "bin/omero admin status still says it is running" "… says the server still runs"
rm -f "$srv/var/stub/stop-fails"
ou server stop >/dev/null 2>&1
ok $? "… and stop works once bin/omero does"

# start checks the database version against the server's scripts first.
fixture_db srv_old --version OMERO5.3__1 --owner omero_srv
: > "$calls"
out=$(ou --db-name srv_old server start 2>&1); rc=$?
is "$rc" 1 "start refused when the database is behind the server"
like "$out" "the database srv_old is at OMERO5.3__1 but this server \(.*\) needs OMERO5.4__0" "… saying why"
like "$out" "db upgrade" "… and what to do"
unlike "$(cat "$calls")" "admin start" "… without starting"

touch "$srv/var/stub/start-fails"
out=$(ou server start 2>&1); rc=$?
is "$rc" 1 "bin/omero admin start fails: exit 1"
like "$out" "bin/omero admin start: exit code 1: Error: could not start \(stub\)" "… with bin/omero's message"
rm -f "$srv/var/stub/start-fails"

out=$(ou server diagnostics 2>/dev/null); rc=$?
is "$rc" 0 "server diagnostics"
like "$out" "OMERO Diagnostics \(stub\) 5.6.3" "… prints bin/omero's report"
out=$(ou server jvmcfg 2>/dev/null); rc=$?
is "$rc" 0 "server jvmcfg"
like "$out" "blitz=-Xmx2048m" "… prints the JVM settings"
like "$(cat "$t/log")" "bin/omero: OMERO Diagnostics \(stub\)" "bin/omero's output is in the log"
like "$(cat "$t/log")" "running: .*bin/omero admin jvmcfg" "… and the commands run"

# Misbehaving bin/omero: a wrapper in front of the stub, switched on by files in var/stub.
mv "$srv/bin/omero" "$srv/bin/omero.stub"
hang="sleep 30.0$$"  # a unique command line, to find leftovers with pgrep -f
cat > "$srv/bin/omero" <<EOF
#!/usr/bin/env bash
var=\$(cd "\$(dirname "\$0")/.." && pwd -P)/var/stub
case "\$1 \$2" in
  "admin diagnostics")
    if [ -f "\$var/diag-hangs" ]; then echo "gathering (stub)"; $hang; echo done; exit 0; fi ;;
  "admin status")
    if [ -f "\$var/status-traceback" ]; then
      printf 'Traceback (most recent call last):\\n  File "omero/cli.py", line 1\\nImportError: No module named Ice\\n' >&2
      exit 1
    fi
    if [ -f "\$var/status-exit3" ]; then echo "status: cannot read the registry (stub)" >&2; exit 3; fi ;;
esac
exec "\$(dirname "\$0")/omero.stub" "\$@"
EOF
chmod +x "$srv/bin/omero"

# A timeout stops everything bin/omero started (its process group), not just bin/omero.
touch "$srv/var/stub/diag-hangs"
start=$SECONDS
out=$(ou server diagnostics --timeout 2 2>&1); rc=$?
took=$((SECONDS - start))
is "$rc" 2 "server diagnostics --timeout 2 on a hanging bin/omero: exit 2"
like "$out" "bin/omero admin diagnostics did not finish within 2 s" "… saying it did not finish in time"
[ "$took" -le 10 ]; ok $? "… and returns within 10 s (took $took s)"
left=$(pgrep -f "$hang")
is "$left" "" "… leaving no process of it behind"
[ -z "$left" ] || kill $left  # by id, only ours (the unique marker), should the assertion fail
rm "$srv/var/stub/diag-hangs"

# A broken bin/omero admin status is not "stopped": exit 2 with its stderr, nothing done after it.
for broken in status-traceback status-exit3; do
  case $broken in
    status-traceback) msg="exit code 1\):.*ImportError: No module named Ice" ;;
    status-exit3) msg="exit code 3\):.*status: cannot read the registry \(stub\)" ;;
  esac
  touch "$srv/var/stub/$broken"
  : > "$calls"
  out=$(ou server status 2>&1); rc=$?
  is "$rc" 2 "$broken: server status exits 2"
  like "$out" "bin/omero admin status failed \($msg" "… showing bin/omero's error"
  unlike "$out" "server: (stopped|running)" "… without claiming a state"
  out=$(ou server stop 2>&1); rc=$?
  is "$rc" 2 "$broken: server stop exits 2"
  like "$out" "bin/omero admin status failed \($msg" "… showing bin/omero's error"
  unlike "$(cat "$calls")" "stop" "… and stops nothing"
  rm "$srv/var/stub/$broken"
done
out=$(ou server status 2>&1); rc=$?
is "$rc" 3 "status exit 1 with only 'not running' on stderr: stopped, as before (exit 3)"
like "$out" "server: stopped" "… says stopped"

out=$("$TOOL" --server-dir "$t/nowhere" server status 2>&1); rc=$?
is "$rc" 2 "no bin/omero: exit 2"
like "$out" "no executable bin/omero|no server directory" "… with a clear message"

q postgres -c "DROP DATABASE srv_omero" -c "DROP DATABASE srv_old" -c "DROP ROLE omero_srv"
done_testing
