#!/usr/bin/env bash
# Progress of long steps (README, "Design", "Progress lines"): after 2 s a step shows
# "<what>: done/total unit (pct%), rate, elapsed h:mm:ss, ETA h:mm:ss" — plain lines when stderr
# is not a terminal, rewritten in place (\r) on one, "progress: " lines for a child of `run`.
# Slow for real: the upgrade scripts of the sample server run pg_sleep(2) (a slow hop), and a
# backup's pg_dump waits for a lock another session holds.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_pg LOGIN" postgres
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 pg_a omero_pg
for f in "$srv/sql/psql/OMERO5.3__1/OMERO5.2__0.sql" "$srv/sql/psql/OMERO5.4__0/OMERO5.3__1.sql"; do
  sed -i 's/^BEGIN;$/BEGIN;\nSELECT pg_sleep(2);  -- a slow hop/' "$f"
done
ou() { "$TOOL" --server-dir "$srv" "$@"; }
hms='[0-9]+:[0-9]{2}:[0-9]{2}'
nl=$'\n'
secs() { local IFS=:; set -- $1; echo $((10#$1 * 3600 + 10#$2 * 60 + 10#$3)); }

# ---- plain lines (stderr is a file) -------------------------------------------------------------
fixture_db pg_a --version OMERO5.2__0 --owner omero_pg
ou db upgrade >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "db upgrade (2 hops of 2 s each)"
err=$(cat "$t/err")
unlike "$err" $'\r' "not a terminal: plain lines, no carriage returns"
like "$err" "(^|$nl)db upgrade: 0/2 hops \(0%\), elapsed 0:00:00, ETA unknown; hop 1 of 2 \(OMERO5.2__0 → OMERO5.3__1\): precheck" \
  "a line as each hop begins: done/total, elapsed, ETA unknown before anything is done"
timed=$(grep -E "^db upgrade: 1/2 hops \(50%\), [0-9.]+ hops/s, elapsed $hms, ETA ~$hms; hop 2 of 2 .*: running " "$t/err" | tail -1)
like "$timed" "elapsed 0:00:0[2-9]" "after 2 s a timed line: 1/2 hops (50%), rate, elapsed, ETA (~: an estimate)"
eta=$(secs "$(sed -E 's/.*ETA ~([0-9:]+);.*/\1/' <<<"$timed")")
el=$(secs "$(sed -E 's/.*elapsed ([0-9:]+),.*/\1/' <<<"$timed")")
(( eta >= 1 && eta <= 3 * el )); ok $? "… its ETA parses and fits (${eta} s left after ${el} s, one hop of two done)"
like "$err" "(^|$nl)db upgrade: 2/2 hops \(100%\), [0-9.]+ hops/s, elapsed 0:00:0[4-9], ETA 0:00:00($|$nl)" \
  "a last line at 100%, ETA 0:00:00 (no ~)"
unlike "$(cat "$t/out")" "hops/s" "progress goes to stderr, not stdout"

# ---- a child of run: "progress: " lines on stderr, stdout only the JSON -----------------------------
fixture_db pg_b --version OMERO5.2__0 --owner omero_pg
"$srv/bin/omero" config set omero.db.name pg_b
OMERO_UPGRADE_PROGRESS=lines ou --json db upgrade >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "--json db upgrade as a child of run (OMERO_UPGRADE_PROGRESS=lines)"
is "$(jq -r .result.db_version "$t/out")" "OMERO5.4__0" "… stdout is the JSON object alone"
like "$(cat "$t/err")" "(^|$nl)progress: db upgrade: 1/2 hops \(50%\), [0-9.]+ hops/s, elapsed 0:00:0[2-9], ETA ~$hms; hop 2" \
  "… stderr has the timed line as a \"progress: \" line"
ou --json db plan >"$t/out" 2>"$t/err"
is "$(cat "$t/err")" "" "without OMERO_UPGRADE_PROGRESS, --json shows no progress"

# ---- on a terminal: rewritten in place about every second -----------------------------------------
fixture_db pg_c --version OMERO5.2__0 --owner omero_pg
"$srv/bin/omero" config set omero.db.name pg_c
script -qec "$(printf '%q ' "$TOOL" --server-dir "$srv" db upgrade)" /dev/null >"$t/tty" 2>&1; rc=$?
is "$rc" 0 "db upgrade on a pseudo-terminal (script)"
tty=$(cat "$t/tty")
n=$(grep -oE $'\r\e\\[Kdb upgrade: 1/2 hops \\(50%\\), [0-9.]+ hops/s, elapsed [0-9:]+, ETA ~[0-9]+:[0-9]{2}:[0-9]{2}' "$t/tty" | wc -l)
(( n >= 2 )); ok $? "in place (\\r, clear line) with elapsed and ETA, at least twice during the 2 s hop ($n)"
like "$tty" $'\r\e\\[Kdb upgrade: 2/2 hops \\(100%\\).*ETA 0:00:00\r?\n' "… the last state stays, ended by a newline"

# ---- backup: pg_dump waits for a lock ----------------------------------------------------------------
fixture_db pg_bk
q pg_bk -c "ANALYZE"
sample_config "$srv" omero.db.host="$PGHOST" omero.db.port="$PGPORT" omero.db.name=pg_bk omero.db.user=postgres
q pg_bk -c "BEGIN; LOCK TABLE image IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT" >/dev/null &
locker=$!
for _ in $(seq 50); do
  [ "$(q pg_bk -c "SELECT count(*) FROM pg_locks WHERE relation = 'public.image'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
  sleep 0.1
done
ou backup --backup-dir "$t/bk" >"$t/out" 2>"$t/err"; rc=$?
wait "$locker"
is "$rc" 0 "backup while another session locks a table for 3 s"
bytes='[0-9.]+ (B|KiB|MiB|GiB)'
like "$(cat "$t/err")" "(^|$nl)pg_dump: 0 B/$bytes \(0%\), elapsed 0:00:0[2-9], ETA unknown; $bytes written" \
  "pg_dump waiting: 0 B of the tables' size, elapsed, ETA unknown (nothing done yet), bytes written"
last=$(grep -E "^pg_dump: $bytes/$bytes \(100%\), $bytes/s, elapsed 0:00:0[3-9], ETA 0:00:00; $bytes written$" "$t/err")
like "$last" "." "… and its last line: 100%, rate, elapsed, ETA 0:00:00"
is "$(sed -E 's|^pg_dump: ([^/]+)/([^(]+) \(.*|\1=\2|' <<<"$last" | tr -d ' ')" \
  "$(sed -E 's|^pg_dump: [^/]+/([^(]+) \(.*|\1=\1|' <<<"$last" | tr -d ' ')" "… all of the tables' size done"

done_testing
