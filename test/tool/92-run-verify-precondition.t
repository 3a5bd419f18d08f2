#!/usr/bin/env bash
# db verify (run's step db-verify) builds the fresh schema in a scratch database the connecting
# role creates for the OMERO database user: the plan checks that while the server still runs
# (issue 14, "every step's preconditions"). A role without CREATEDB (the OMERO user as usual) is
# refused before any downtime, naming the fixes (ALTER ROLE … CREATEDB, --db-user, --force-step
# db-verify); a role with CREATEDB that cannot act as the OMERO user is refused naming the GRANT; a
# superuser passes; --force-step db-verify goes on and the report says "not verified"; a resume
# before the stop checks it again.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" vp_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
zip=$r/OMERO.server-5.6.3.zip
state=$r/.omero-upgrade-run.json

# --- the OMERO user without CREATEDB: refused before anything ---------------------------------
psql -X -q -c "ALTER ROLE omero NOCREATEDB" postgres
out=$(ou run --new-server "$zip" 2>&1); rc=$?
is "$rc" 1 "run as the OMERO user without CREATEDB: refused (exit 1)"
like "$out" "step db-verify: omero may not create databases" "… naming the step and why"
like "$out" "ALTER ROLE omero CREATEDB" "… the fix ALTER ROLE … CREATEDB"
like "$out" "--db-user" "… the fix --db-user"
like "$out" "--force-step db-verify" "… the fix --force-step db-verify"
like "$out" "nothing was changed" "… and says nothing was changed"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"
ok "$([ ! -e "$state" ] && [ -z "$(ls -A "$r/omero-upgrade-backups" 2>/dev/null)" ]; echo $?)" "… no run recorded, no backup"
is "$(ou --json server status | jq -r .result.running)" true "… the server still runs"
j=$(ou --json run --new-server "$zip" --dry-run 2>/dev/null); rc=$?
is "$rc" 1 "run --dry-run: the same refusal (exit 1)"
is "$(jq -r '[.result.can_run, (.result.problems | map(select(startswith("step db-verify: omero may not create databases"))) | length)] | map(tostring) | join(" ")' <<<"$j")" \
  "false 1" "… --json: can_run false, the db-verify problem listed"
out=$(ou run --new-server "$zip" --dry-run --force-step db-verify 2>&1); rc=$?
is "$rc" 0 "--dry-run --force-step db-verify: the plan can run"
unlike "$out" "step db-verify:" "… without the problem"

# --- a superuser given with --db-user passes --------------------------------------------------
out=$(ou --db-user postgres run --new-server "$zip" --dry-run 2>&1); rc=$?
is "$rc" 0 "--db-user postgres (a superuser): the plan can run"
[ "$rc" -eq 0 ] || diag "$(grep -i error <<<"$out")"
unlike "$out" "step db-verify:" "… no db-verify problem"

# --- a role with CREATEDB that cannot act as the OMERO user ---------------------------------
psql -X -q -c "CREATE ROLE vp_maker LOGIN CREATEDB" postgres
q vp_a -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO vp_maker" >/dev/null  # the plan reads the database
out=$(ou --db-user vp_maker run --new-server "$zip" --dry-run 2>&1); rc=$?
is "$rc" 1 "--db-user of a CREATEDB role that is not the OMERO user: refused"
like "$out" "step db-verify: vp_maker may create databases but not act as the OMERO database user omero" \
  "… db-verify, naming the OMERO user"
like "$out" "GRANT omero TO vp_maker" "… and the GRANT"
psql -X -q -c "GRANT omero TO vp_maker" postgres
out=$(ou --db-user vp_maker run --new-server "$zip" --dry-run 2>&1); rc=$?
is "$rc" 0 "… once granted (vp_maker acts as omero, who owns the tables too), the plan can run"
unlike "$out" "step db-verify:" "… no db-verify problem"

# --- resume before the stop: checked again; --resume --force-step db-verify goes on -----------
psql -X -q -c "ALTER ROLE omero CREATEDB" postgres
out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=check ou run --new-server "$zip" 2>&1); rc=$?
is "$rc" 2 "a run with CREATEDB stopped after its check"
psql -X -q -c "ALTER ROLE omero NOCREATEDB" postgres
out=$(ou run --resume 2>&1); rc=$?
is "$rc" 1 "CREATEDB taken away meanwhile: --resume refused (exit 1)"
like "$out" "step db-verify: omero may not create databases" "… naming the step"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"
out=$(ou run --resume --force-step db-verify 2>&1); rc=$?
is "$rc" 0 "--resume --force-step db-verify completes"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
like "$out" "schema +not verified: .*CREATEDB" "… the report says the schema was not verified, and why"
is "$(jq -r '[.status, .schema.verdict, (.options.force_steps | join(","))] | join(" ")' "$state")" \
  "completed not verified db-verify" "… the state: completed, not verified, the forced step recorded"
psql -X -q -c "ALTER ROLE omero CREATEDB" postgres

done_testing
