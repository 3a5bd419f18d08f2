#!/usr/bin/env bash
# db plan / db upgrade with our own sample sql/psql scripts on fixture databases: the chain from
# the files present, a missing hop, refusal while the server or other sessions use the database,
# hop-by-hop runs as the OMERO user, a script failing half-way (the database stays at the
# previous version and the tool says so), resuming, an unfinished dbpatch row, a failing precheck.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
log=$t/log
psql -X -q -c "CREATE ROLE omero_up LOGIN" postgres
fixture_db up_db --version OMERO5.2__0 --owner omero_up
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 up_db omero_up
"$srv/bin/omero" config set omero.db.pass s3cret-pw      # trust auth ignores it; it must never show
ou() { "$TOOL" --server-dir "$srv" --log-file "$log" "$@"; }
version() { q "$1" -c "SELECT currentversion || '__' || currentpatch || CASE WHEN finished IS NULL THEN ' unfinished' ELSE '' END FROM dbpatch ORDER BY id DESC LIMIT 1"; }
npatch() { q "$1" -c "SELECT count(*) FROM dbpatch"; }

# ---- plan ------------------------------------------------------------------------------------------
out=$(ou db plan 2>&1); rc=$?
is "$rc" 3 "db plan with hops pending: exit 3"
like "$out" "OMERO5.2__0 → OMERO5.4__0 in 2 hop\(s\)" "… 2 hops to the newest version of the scripts"
like "$out" "1\. OMERO5.2__0 → OMERO5.3__1: sql/psql/OMERO5.3__1/OMERO5.2__0.sql \(precheck: sql/psql/OMERO5.3__1/OMERO5.2__0-precheck.sql\)" \
  "… first hop through the newest intermediate version, with its precheck"
like "$out" "2\. OMERO5.3__1 → OMERO5.4__0: sql/psql/OMERO5.4__0/OMERO5.3__1.sql" "… then to OMERO5.4__0"
j=$(ou --json db plan --target OMERO5.3__0)
is "$(jq -r '.result.hops | map(.from + ">" + .to) | join(",")' <<<"$j")" "OMERO5.2__0>OMERO5.3__0" "--target OMERO5.3__0: one hop (--json)"

mkdir -p "$t/gap"
make_sample_sql "$t/gap"
rm -r "$t/gap/sql/psql/OMERO5.3__0" "$t/gap/sql/psql/OMERO5.3__1"
out=$(ou db plan --new-server "$t/gap" 2>&1); rc=$?
is "$rc" 2 "a missing hop: exit 2"
like "$out" "no chain of upgrade scripts in $t/gap/sql/psql leads from OMERO5.2__0 to OMERO5.4__0 \(a hop is missing" \
  "… saying which versions it cannot connect"
like "$out" "no script starts at OMERO5.2__0" "… and where the chain breaks"

# ---- refusals ----------------------------------------------------------------------------------------
out=$(ou db upgrade --dry-run 2>&1); rc=$?
is "$rc" 3 "db upgrade --dry-run with hops pending: exit 3"
like "$out" "would run: psql -X -q -v ON_ERROR_STOP=1 -U omero_up -f sql/psql/OMERO5.3__1/OMERO5.2__0.sql" "… shows the psql commands"
is "$(version up_db)" "OMERO5.2__0" "… and runs nothing"

PGAPPNAME=some-client psql -X -q -d up_db -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'some-client'")" = 1 ] && break; sleep 0.1; done
out=$(ou db upgrade 2>&1); rc=$?
is "$rc" 1 "refused while another session uses the database"
like "$out" "other sessions use the database up_db: 1 session\(s\): pid [0-9]+ postgres@some-client" "… naming it"
is "$(version up_db)" "OMERO5.2__0" "… and changes nothing"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'some-client'" >/dev/null
wait "$sleeper" 2>/dev/null

touch "$srv/var/stub/running"
out=$(ou db upgrade 2>&1); rc=$?
is "$rc" 1 "refused while bin/omero admin status says running"
like "$out" "is running \(bin/omero admin status\)" "… saying so"
rm "$srv/var/stub/running"

# ---- a script failing half-way -------------------------------------------------------------------------
mkdir -p "$t/bad"
make_sample_sql "$t/bad" "OMERO5.3__1:OMERO5.4__0"
out=$(ou db upgrade --new-server "$t/bad" 2>&1); rc=$?
is "$rc" 1 "the second hop's script fails: exit 1"
like "$out" "hop 1 of 2 \(OMERO5.2__0 → OMERO5.3__1\): done" "the first hop was done"
like "$out" "hop 2 of 2 \(OMERO5.3__1 → OMERO5.4__0\): the script sql/psql/OMERO5.4__0/OMERO5.3__1.sql failed \(exit code 3\)" \
  "… the second failed, named with psql's exit code"
like "$out" "division by zero" "… with psql's error"
like "$out" "the database up_db is still at OMERO5.3__1 \(the script's transaction was rolled back\); 1 of 2 hop\(s\) done" \
  "… and the tool says where the database is"
like "$out" "run omero-upgrade db upgrade again: it goes on from OMERO5.3__1" "… and what to do"
is "$(version up_db)" "OMERO5.3__1" "the database really is at OMERO5.3__1, finished"
is "$(q up_db -c "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'sample_omero5_4%'")" 0 "… with nothing of the failed script left"
j=$(ou --json db upgrade --new-server "$t/bad")
is "$(jq -r '.exit_code, .result.failed_hop, .result.db_version' <<<"$j" | tr '\n' ' ')" "1 1 OMERO5.3__1 " \
  "--json: exit 1, the failed hop (now the only one), the version"

# ---- resume with the good scripts -------------------------------------------------------------------------
out=$(ou db upgrade 2>&1); rc=$?
is "$rc" 0 "db upgrade goes on from where it stopped: $(tail -1 <<<"$out")"
like "$out" "OMERO5.3__1 → OMERO5.4__0 in 1 hop\(s\)" "… one hop left"
like "$out" "hop 1 of 1 \(OMERO5.3__1 → OMERO5.4__0\): precheck" "… progress: hop i of n"
like "$out" "upgraded from OMERO5.3__1 to OMERO5.4__0 in 1 hop\(s\), [0-9]+:[0-9]{2}:[0-9]{2}" "… with the elapsed time"
is "$(version up_db)" "OMERO5.4__0" "the database is at OMERO5.4__0, finished"
is "$(q up_db -c "SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE relname LIKE 'sample_omero5_4%'" | sort -u)" "omero_up" \
  "objects the scripts created belong to the OMERO user (psql ran as omero.db.user)"
like "$(cat "$log")" "YOU HAVE SUCCESSFULLY UPGRADED YOUR DATABASE TO VERSION OMERO5.4__0" "psql's output is in the log"
is "$(grep -c 's3cret-pw' "$log")" 0 "the password is not in the log"
n=$(npatch up_db)
out=$(ou db upgrade 2>&1); rc=$?
is "$rc" 0 "db upgrade again: safe"
like "$out" "already at OMERO5.4__0: nothing to do" "… nothing to do"
is "$(npatch up_db)" "$n" "… and no dbpatch row added"

# ---- an unfinished dbpatch row ---------------------------------------------------------------------------
fixture_db up_unf --version OMERO5.3__0 --unfinished --owner omero_up
out=$(ou --db-name up_unf db plan 2>&1); rc=$?
is "$rc" 1 "db plan on a half-applied upgrade: exit 1"
like "$out" "has no finished time: an upgrade script stopped half-way" "… explains the unfinished row"
like "$out" "restore the backup" "… and what to do"
out=$(ou --db-name up_unf db upgrade 2>&1); rc=$?
is "$rc" 1 "db upgrade refuses it too"

# ---- a failing precheck ----------------------------------------------------------------------------------
fixture_db up_pre --version OMERO5.2__0 --owner omero_up
mkdir -p "$t/pre"
make_sample_sql "$t/pre"
sed -i 's/^ROLLBACK;$/SELECT 1\/0 AS precheck_says_no;\nROLLBACK;/' "$t/pre/sql/psql/OMERO5.3__1/OMERO5.2__0-precheck.sql"
out=$(ou --db-name up_pre db upgrade --new-server "$t/pre" 2>&1); rc=$?
is "$rc" 1 "a failing precheck stops it"
like "$out" "hop 1 of 2 \(OMERO5.2__0 → OMERO5.3__1\): the precheck sql/psql/OMERO5.3__1/OMERO5.2__0-precheck.sql failed" "… naming the precheck"
like "$out" "still at OMERO5.2__0" "… the database is untouched"
is "$(version up_pre)" "OMERO5.2__0" "… really"

# ---- Ctrl-C while a script runs: psql stopped, its backend ended, the hop rolled back ----------------------
fixture_db up_int --version OMERO5.2__0 --owner omero_up
mkdir -p "$t/slow"
make_sample_sql "$t/slow"
sed -i 's/^-- schema changes of the kind real scripts make.*/SELECT pg_sleep(60);/' "$t/slow/sql/psql/OMERO5.3__1/OMERO5.2__0.sql"
"$TOOL" --server-dir "$srv" --db-name up_int db upgrade --new-server "$t/slow" > "$t/int.out" 2>&1 &
up=$!
busy() { q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'omero-upgrade-psql-%' AND query LIKE '%pg_sleep%'"; }
for _ in $(seq 100); do [ "$(busy)" -ge 1 ] && break; sleep 0.1; done
is "$(busy)" 1 "the hop's script is running (in psql, as application omero-upgrade-psql-PID)"
kill -INT "$up"; wait "$up"; rc=$?
is "$rc" 2 "Ctrl-C during db upgrade: exit 2"
like "$(cat "$t/int.out")" "interrupted \(Ctrl-C\) during hop 1 of 2 \(OMERO5.2__0 → OMERO5.3__1\): the database is at OMERO5.2__0" \
  "… saying where the database is"
for _ in $(seq 50); do [ "$(busy)" = 0 ] && break; sleep 0.1; done
is "$(busy)" 0 "… the script's backend is gone (not left running)"
is "$(version up_int)" "OMERO5.2__0" "… and the hop was rolled back"

q postgres -c "DROP DATABASE up_db" -c "DROP DATABASE up_int" -c "DROP DATABASE up_unf" -c "DROP DATABASE up_pre" -c "DROP ROLE omero_up"
done_testing
