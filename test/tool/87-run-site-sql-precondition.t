#!/usr/bin/env bash
# run --site-sql DIR: the plan checks what the site SQL step needs while the server still runs
# (issue 14). Each pending site file runs through psql as the OMERO database user (omero.db.user),
# which records it in omero_upgrade.site_sql in the file's own transaction. Attack: INSERT on
# omero_upgrade.site_sql revoked from that user. Without the check (--force-step db-upgrade) the
# run stops the server, upgrades, and fails at the site file inside the offline window; with it,
# run and run --dry-run refuse before any stop, naming the right, the GRANT that fixes it and
# --force-step db-upgrade, also when the tool itself connects as a superuser (--db-user: the files
# still run as omero.db.user). With the grant back the same run completes and records the file.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
site=$t/site
mkdir -p "$site"
printf '%s\n' "CREATE TABLE site_notes (x int);" > "$site/010_notes.sql"
su=$(psql -X -A -t -c "SELECT current_user" postgres)

# --- (b) the step as it fails without the check: inside the offline window ---------------------
b=$t/b
scenario "$b" sp87_b
q sp87_b -c "REVOKE INSERT ON omero_upgrade.site_sql FROM omero"
is "$(q sp87_b -c "SELECT has_table_privilege('omero', 'omero_upgrade.site_sql', 'INSERT')")" f \
  "(b) the OMERO database user omero may not insert into omero_upgrade.site_sql"
out=$("$TOOL" --server-dir "$b/OMERO.server" run --new-server "$b/OMERO.server-5.6.3.zip" --site-sql "$site" \
      --force-step db-upgrade 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "(b) with the check skipped (--force-step db-upgrade) the run fails (exit $rc)"
is "$(jq -r '[.status, .failed_step] | join(" ")' "$b/.omero-upgrade-run.json")" "failed db-upgrade" \
  "(b) … at db-upgrade, after the stop (what the plan's check prevents)"
like "$(omero_calls "$b/OMERO.server-5.3.5")" "admin\|stop" "(b) … the server was stopped for it"
like "$out" "permission denied for table site_sql" "(b) … the site file's record was refused"

# --- (a) the plan refuses before any stop --------------------------------------------------------
r=$t/a
scenario "$r" sp87_a
q sp87_a -c "REVOKE INSERT ON omero_upgrade.site_sql FROM omero"
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
zip=$r/OMERO.server-5.6.3.zip
out=$(ou run --new-server "$zip" --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "run --site-sql, omero lacking INSERT on omero_upgrade.site_sql: refused (exit 1)"
like "$out" "step db-upgrade \(site SQL\): .*run as the OMERO database user omero.* omero lacks INSERT on omero_upgrade.site_sql" \
  "… naming the step, the user the files run as and the right it lacks"
like "$out" "GRANT INSERT ON omero_upgrade.site_sql TO omero" "… the GRANT that fixes it"
like "$out" "--force-step db-upgrade" "… and --force-step db-upgrade"
unlike "$out" "INSERT on omero_upgrade.history" "… not the rights omero has (INSERT on history)"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"
is "$(ou --json server status | jq -r .result.running)" true "… the server still runs"
ok "$([ ! -e "$r/.omero-upgrade-run.json" ] && [ -z "$(ls -A "$r/omero-upgrade-backups" 2>/dev/null)" ]; echo $?)" \
  "… no run recorded, no backup"
is "$(dbv sp87_a)" OMERO5.3__1 "… the database not upgraded"
out=$(ou run --new-server "$zip" --site-sql "$site" --dry-run 2>&1); rc=$?
is "$rc" 1 "run --dry-run: the same refusal (exit 1)"
like "$out" "omero lacks INSERT on omero_upgrade.site_sql" "… the same problem"
out=$(ou --db-user "$su" run --new-server "$zip" --site-sql "$site" --dry-run 2>&1); rc=$?
is "$rc" 1 "--db-user $su (a superuser): still refused, the files run as omero.db.user"
like "$out" "omero lacks INSERT on omero_upgrade.site_sql" "… naming omero"
out=$(ou run --new-server "$zip" --dry-run 2>&1); rc=$?
is "$rc" 0 "without --site-sql the plan can run (the check is the site step's)"
# No file pending: nothing is inserted, nothing to refuse.
empty=$t/empty; mkdir -p "$empty"
out=$(ou run --new-server "$zip" --site-sql "$empty" --dry-run 2>&1); rc=$?
is "$rc" 0 "--site-sql with no file to apply: the plan can run"

# With the grant the message names, the same run completes.
q sp87_a -c "GRANT INSERT ON omero_upgrade.site_sql TO omero"
out=$(ou run --new-server "$zip" --site-sql "$site" 2>&1); rc=$?
is "$rc" 0 "after GRANT INSERT ON omero_upgrade.site_sql TO omero: the run completes"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
is "$(dbv sp87_a) $(q sp87_a -c "SELECT string_agg(file_name || ' ' || db_role, ',') FROM omero_upgrade.site_sql") $(q sp87_a -c "SELECT to_regclass('site_notes') IS NOT NULL")" \
  "OMERO5.4__0 010_notes.sql omero t" "… upgraded, the site file applied as omero and recorded"

done_testing
