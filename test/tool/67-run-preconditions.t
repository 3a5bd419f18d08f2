#!/usr/bin/env bash
# Every step's preconditions are checked by the plan while the server still runs (issue 14):
# run --vacuum-full as the OMERO database owner who is not a superuser and cannot read
# data_directory is refused before anything is done (no stop, no backup, no run recorded), naming
# the fixes (--db-user, GRANT pg_read_all_settings, --force-step vacuum-full); --dry-run shows the
# same refusal; --force-step vacuum-full runs it (db vacuum --full --force). A database user who
# does not own OMERO's tables is refused for db-upgrade the same way, and a resume before the
# stop checks the steps still to run.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
# The owner of the OMERO database, not a superuser, without pg_read_all_settings.
# It may create databases: db verify's scratch database (test 92 checks the plan without that).
psql -X -q -c "CREATE ROLE pc_owner LOGIN CREATEDB" postgres
createdb -T run_template -O omero pc_a
q pc_a -c "DROP EXTENSION omero_upgrade"  # its objects belong to the superuser who created it
q pc_a -c "REASSIGN OWNED BY omero TO pc_owner" >/dev/null
psql -X -q -c "ALTER DATABASE pc_a OWNER TO pc_owner" postgres
r=$t/a
mkdir -p "$r"
make_sample_server "$r/OMERO.server-5.3.5" 5.3.5 pc_a pc_owner "$r/data"
ln -s OMERO.server-5.3.5 "$r/OMERO.server"
mkdir -p "$r/build"; make_sample_server "$r/build/OMERO.server-5.6.3" 5.6.3
rm "$r/build/OMERO.server-5.6.3/etc/grid/config.xml"
make_server_zip "$r/build/OMERO.server-5.6.3" "$r/OMERO.server-5.6.3.zip"; rm -r "$r/build"
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
ou server start >/dev/null 2>&1
zip=$r/OMERO.server-5.6.3.zip
is "$(psql -X -A -t -c "SELECT pg_has_role('pc_owner', 'pg_read_all_settings', 'USAGE') OR rolsuper FROM pg_roles WHERE rolname = 'pc_owner'" postgres)" f \
  "pc_owner can read no data_directory"

out=$(ou run --new-server "$zip" --vacuum-full 2>&1); rc=$?
is "$rc" 1 "run --vacuum-full as the owner, no superuser: refused (exit 1)"
like "$out" "step vacuum-full: pc_owner cannot read data_directory" "… naming the step and why"
like "$out" "--db-user" "… the fix --db-user"
like "$out" "GRANT pg_read_all_settings TO pc_owner" "… the fix GRANT"
like "$out" "--force-step vacuum-full" "… the fix --force-step vacuum-full"
like "$out" "step cache-clear: the OMERO data directory $r/data \(omero.data.dir of .*\) does not exist" \
  "… and cache-clear's missing data directory, found before the stop too"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"
is "$(ou --json server status | jq -r .result.running)" true "… the server still runs"
ok "$([ ! -e "$r/.omero-upgrade-run.json" ] && [ -z "$(ls -A "$r/omero-upgrade-backups" 2>/dev/null)" ]; echo $?)" "… no run recorded, no backup"
out=$(ou run --new-server "$zip" --vacuum-full --dry-run 2>&1); rc=$?
is "$rc" 1 "run --dry-run: the same refusal (exit 1)"
like "$out" "step vacuum-full: pc_owner cannot read data_directory" "… the same problem"
mkdir -p "$r/data/BioFormatsCache"
out=$(ou run --new-server "$zip" --vacuum-full --force-step vacuum-full --dry-run 2>&1); rc=$?
is "$rc" 0 "--force-step vacuum-full: the plan can run"
like "$out" "db vacuum --full --force" "… the step gets --force"
out=$(ou run --new-server "$zip" --force-step no-such-step --dry-run 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "--force-step of an unknown step: refused (exit $rc)"

# --- a database user who does not own the tables: db-upgrade refused before the stop -----------
psql -X -q -c "CREATE ROLE pc_other LOGIN" postgres
q pc_a -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pc_other" >/dev/null
out=$(ou --db-user pc_other run --new-server "$zip" --dry-run 2>&1); rc=$?
is "$rc" 1 "--db-user of a role owning no table: refused (exit 1)"
like "$out" "step db-upgrade: the upgrade scripts alter OMERO's tables, but pc_other does not own [0-9]+ table" \
  "… db-upgrade, naming the tables' owner"
like "$out" "owned by pc_owner" "… and the owner to connect as"

# --- resume before the stop: the steps still to run are checked -------------------------------
out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=check ou run --new-server "$zip" 2>&1); rc=$?
is "$rc" 2 "a run without --vacuum-full stopped after check"
jq '.options.vacuum_full = true | .steps += [{"id": "vacuum-full", "title": "VACUUM FULL", "command": ["db", "vacuum", "--full"], "status": "pending", "offline": true, "needs_backup": true}]' \
  "$r/.omero-upgrade-run.json" > "$t/st.json" && cp "$t/st.json" "$r/.omero-upgrade-run.json"
out=$(ou run --resume --dry-run 2>&1); rc=$?
is "$rc" 1 "--resume --dry-run with a vacuum-full it cannot do: exit 1"
like "$out" "step vacuum-full: pc_owner cannot read data_directory" "… the problem"
out=$(ou run --resume 2>&1); rc=$?
is "$rc" 1 "--resume with a vacuum-full it cannot do: refused (exit 1)"
like "$out" "step vacuum-full: pc_owner cannot read data_directory" "… the same problem"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"

# --- --resume --force-step: the step goes on unchecked (db vacuum --full --force) ---------------
out=$(ou run --resume --force-step vacuum-full 2>&1); rc=$?
is "$rc" 0 "--resume --force-step vacuum-full completes"
[ "$rc" -eq 0 ] || diag "$out"
is "$(jq -r '.steps[] | select(.id == "vacuum-full") | [.status, (.ran | join(" "))] | join(" ")' "$r/.omero-upgrade-run.json")" \
  "done db vacuum --full --force" "… vacuum-full done, with --force"
is "$(jq -r '.options.force_steps | join(",")' "$r/.omero-upgrade-run.json")" "vacuum-full" "… recorded in the run's options"

done_testing
