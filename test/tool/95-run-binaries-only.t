#!/usr/bin/env bash
# What run calls "nothing to do" (issue 14): a newer patch release whose scripts lead to the
# database's version is a binaries-only upgrade (stop, install, config.xml carried over, start; no
# hop, no db-upgrade step); nothing to do (exit 0, no stop, no run record) only for the release
# OMERO.server runs now (its tree, or a distribution of the same release); an older release is
# refused; a rollback of a binaries-only run switches back without a restore. Without the
# extension, the OMERO5.3__0 → OMERO5.3__1 hop, for which OMERO ships no -precheck.sql, runs (the
# tool checks what the precheck would); a missing upgrade script is still refused.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" bo_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
state=$r/.omero-upgrade-run.json
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
for v in 5.3.6 5.3.4; do
  make_sample_server "$r/build/OMERO.server-$v" "$v"
  rm "$r/build/OMERO.server-$v/etc/grid/config.xml"
  make_server_zip "$r/build/OMERO.server-$v" "$r/OMERO.server-$v.zip"
done
rm -r "$r/build"
q bo_a -c "INSERT INTO configuration (name, value) VALUES ('before.run', 'kept')"
pg_dump -n public bo_a | grep -vE '^\\(un)?restrict |^-- Dumped' | md5sum > "$t/db-before.md5"

# --- status and the plan -------------------------------------------------------------------------
j=$(ou --json status --new-server "$r/OMERO.server-5.3.6.zip" 2>/dev/null)
is "$(jq -r '.result.upgrade | [.nothing_to_do, .binaries_only, (.pending_hops | length), (.steps | index("db-upgrade") != null)] | map(tostring) | join(" ")' <<<"$j")" \
  "false true 0 false" "status --new-server 5.3.6: binaries only, no hop, no db-upgrade step, not nothing to do"
out=$(ou run --new-server "$r/OMERO.server-5.3.6.zip" --dry-run 2>&1); rc=$?
is "$rc" 0 "run --dry-run to 5.3.6 (same database version): the plan can run"
unlike "$out" "nothing to do" "… it is not nothing to do"
like "$out" "OMERO5.3__1 → OMERO5.3__1" "… the database stays at its version"
like "$out" "binaries-install" "… the binaries are swapped"
unlike "$out" "db-upgrade" "… no db-upgrade step"

# --- the binaries-only run -----------------------------------------------------------------------
out=$(ou run --new-server "$r/OMERO.server-5.3.6.zip" 2>&1); rc=$?
is "$rc" 0 "run to 5.3.6: completes"
like "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… the old server was stopped"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.6" "… OMERO.server points to the new tree"
is "$(config_value "$r/OMERO.server" omero.db.name)" bo_a "… its config.xml carried over (the same database)"
is "$(ou --json server status | jq -r .result.running)" true "… the new server runs"
like "$(omero_calls "$r/OMERO.server-5.3.6")" "admin\|start" "… started from the new tree"
is "$(dbv bo_a)" OMERO5.3__1 "… the database at its version"
like "$out" "OMERO5.3__1 → OMERO5.3__1" "… and the report says so"
is "$(jq -r '[.status, (.hops | length), .server.old_tree] | map(tostring) | join(" ")' "$state")" \
  "completed 0 $(cd "$r" && pwd -P)/OMERO.server-5.3.5" "… recorded: completed, no hop, the old tree 5.3.5"
run1=$(jq -r .run_id "$state")

# --- nothing to do: the same release again, as a zip or as the tree itself ----------------------
calls=$(omero_calls "$r/OMERO.server-5.3.6" | grep -c "admin|stop")
out=$(ou run --new-server "$r/OMERO.server-5.3.6.zip" 2>&1); rc=$?
is "$rc" 0 "run to the release it runs (5.3.6 zip): exit 0"
like "$out" "nothing to do: .*is the release OMERO.server runs now: OMERO.server-5.3.6" "… nothing to do, saying why"
out=$(ou run --new-server "$r/OMERO.server-5.3.6" 2>&1); rc=$?
is "$rc" 0 "run to the tree it runs (the directory): exit 0"
like "$out" "nothing to do: .*is the tree OMERO.server runs now" "… nothing to do"
out=$(ou run --new-server "$r/OMERO.server" --dry-run 2>&1); rc=$?
is "$rc" 0 "run --dry-run to OMERO.server itself: exit 0"
like "$out" "nothing to do" "… nothing to do"
is "$(omero_calls "$r/OMERO.server-5.3.6" | grep -c "admin|stop")" "$calls" "… no stop"
is "$(jq -r .run_id "$state")" "$run1" "… no new run record"
is "$(ls -A "$r" | grep -c '^\.omero-upgrade-run\.json\.[0-9]')" 0 "… and no earlier record set aside"

# --- an older release: refused -------------------------------------------------------------------
out=$(ou run --new-server "$r/OMERO.server-5.3.4.zip" 2>&1); rc=$?
is "$rc" 1 "run to 5.3.4 (older than 5.3.6): refused (exit 1)"
like "$out" "OMERO.server-5.3.4 is an older release than the one OMERO.server runs now \(OMERO.server-5.3.6\)" "… saying so"
is "$(omero_calls "$r/OMERO.server-5.3.6" | grep -c "admin|stop")" "$calls" "… no stop"

# --- rollback of the binaries-only run: the old tree back, no restore -----------------------------
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… OMERO.server points to 5.3.5 again"
is "$(ou --json server status | jq -r .result.running)" true "… the old server runs"
is "$(config_value "$r/OMERO.server" omero.db.name)" bo_a "… on the same database (no restore into a new one)"
cmp -s <(pg_dump -n public bo_a | grep -vE '^\\(un)?restrict |^-- Dumped' | md5sum) "$t/db-before.md5"
ok $? "… which is as before the run"

# --- without the extension: OMERO5.3__0 → OMERO5.3__1 has no -precheck.sql upstream -------------
b=$t/b
mkdir -p "$b/data/BioFormatsCache"
fixture_db bo_b --version OMERO5.3__0 --owner omero
is "$(q bo_b -c "SELECT count(*) FROM pg_extension WHERE extname = 'omero_upgrade'")" 0 "bo_b has no extension"
make_sample_server "$b/OMERO.server-5.3.2" 5.3.2 bo_b omero "$b/data"
rm -rf "$b/OMERO.server-5.3.2/sql/psql/OMERO5.3__1"  # 5.3.0-5.3.3 lead to OMERO5.3__0
ln -s OMERO.server-5.3.2 "$b/OMERO.server"
mkdir -p "$b/build"; make_sample_server "$b/build/OMERO.server-5.3.6" 5.3.6
rm "$b/build/OMERO.server-5.3.6/etc/grid/config.xml"
ok "$([ ! -e "$b/build/OMERO.server-5.3.6/sql/psql/OMERO5.3__1/OMERO5.3__0-precheck.sql" ] &&
      [ -e "$b/build/OMERO.server-5.3.6/sql/psql/OMERO5.3__1/OMERO5.3__0.sql" ]; echo $?)" \
  "the new release ships OMERO5.3__1/OMERO5.3__0.sql and, as OMERO's, no precheck for it"
make_server_zip "$b/build/OMERO.server-5.3.6" "$b/OMERO.server-5.3.6.zip"
cp -a "$b/build/OMERO.server-5.3.6" "$b/build/broken"
rm "$b/build/broken/sql/psql/OMERO5.3__1/OMERO5.3__0.sql"
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
ob server start >/dev/null 2>&1
out=$(ob precheck --new-server "$b/OMERO.server-5.3.6.zip" 2>&1); rc=$?
is "$rc" 0 "precheck --new-server 5.3.6 without the extension: ready (exit 0)"
like "$out" "no -precheck.sql for OMERO5.3__0 → OMERO5.3__1" "… saying the release ships no precheck for the hop"
like "$out" "READY FOR UPGRADE TO VERSION OMERO5.3__1" "… and ready"
out=$(ob precheck --new-server "$b/build/broken" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "precheck to a release without the upgrade script: not ready (exit $rc)"
like "$out" "no upgrade script .*OMERO5.3__0" "… naming what is missing"
out=$(ob run --new-server "$b/build/broken" --dry-run 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "run --dry-run to it: refused (exit $rc)"
out=$(ob run --new-server "$b/OMERO.server-5.3.6.zip" 2>&1); rc=$?
is "$rc" 0 "run to 5.3.6 without the extension: completes"
like "$out" "precheck: *done|precheck" "… its precheck step passed"
is "$(dbv bo_b)" OMERO5.3__1 "… the database upgraded to OMERO5.3__1"
is "$(readlink "$b/OMERO.server")" "OMERO.server-5.3.6" "… and the new tree runs"

# The stub servers hold a session each: stopped, so that later tests of the cluster find free
# connection slots (the cluster's max_connections is shared by every test).
ou server stop >/dev/null 2>&1
ob server stop >/dev/null 2>&1

done_testing
