#!/usr/bin/env bash
# The plan checks the preconditions of the optional steps too, while the server still runs (issue
# 14): --orphans, --colors and --move-annotations-to-wells work through the extension's functions,
# which run with the connecting role's rights on OMERO's tables and on the extension's state
# (schema omero_upgrade). A database whose OMERO tables were given to a new owner after the
# extension was installed (the extension granted its state to the old owner): run and run --dry-run
# refuse before any stop, naming each step, the missing rights and the fixes (--db-user, GRANT,
# --force-step STEP); with the grants the same run completes. A role with only SELECT: the
# orphans' DELETE and the colour rewrite's ownership of shape are named.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
psql -X -q -c "CREATE ROLE op_new LOGIN CREATEDB" postgres
psql -X -q -c "GRANT pg_read_all_settings TO op_new" postgres
createdb -T run_template -O omero op_a
# OMERO's tables, sequences and functions to op_new (as a DBA renaming the OMERO user does);
# the extension's state stays granted to omero, its owner when the extension was created.
q op_a <<'SQL'
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner = 'omero'::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                                 AND d.deptype IN ('a', 'i') AND c.relkind = 'S') LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO op_new', r.t);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.proowner = 'omero'::regrole LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO op_new', r.f);
  END LOOP;
END $$;
SQL
psql -X -q -c "ALTER DATABASE op_a OWNER TO op_new" postgres
is "$(q op_a -c "SELECT has_table_privilege('op_new', 'omero_upgrade.orphan_run', 'INSERT')")" f \
  "op_new owns OMERO's tables, but has no rights on the extension's state"
r=$t/a
mkdir -p "$r/data/BioFormatsCache"
make_sample_server "$r/OMERO.server-5.3.5" 5.3.5 op_a op_new "$r/data"
ln -s OMERO.server-5.3.5 "$r/OMERO.server"
mkdir -p "$r/build"; make_sample_server "$r/build/OMERO.server-5.6.3" 5.6.3
rm "$r/build/OMERO.server-5.6.3/etc/grid/config.xml"
make_server_zip "$r/build/OMERO.server-5.6.3" "$r/OMERO.server-5.6.3.zip"; rm -r "$r/build"
zip=$r/OMERO.server-5.6.3.zip
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
ou server start >/dev/null 2>&1
opts=(--orphans --colors all --move-annotations-to-wells screen:1)
before=$(q op_a -c "SELECT (SELECT count(*) FROM annotation) || '/' || (SELECT count(*) FROM wellannotationlink)")

out=$(ou run --new-server "$zip" "${opts[@]}" 2>&1); rc=$?
is "$rc" 1 "run --orphans --colors all --move-annotations-to-wells without the state's rights: refused (exit 1)"
like "$out" "step orphans: op_new lacks [^;]*INSERT on omero_upgrade.orphan_run" "… orphans, naming the right it lacks"
like "$out" "step colors: op_new lacks USAGE on schema omero_upgrade, INSERT on omero_upgrade.history, SELECT on omero_upgrade.color_runs" "… colors, in order"
like "$out" "step wells: op_new lacks [^;]*INSERT on omero_upgrade.history" "… wells"
like "$out" "--db-user" "… the fix --db-user"
like "$out" "GRANT <right> ON <object> TO op_new" "… the fix GRANT"
like "$out" "--force-step orphans" "… and --force-step orphans"
unlike "$out" "step db-upgrade" "… db-upgrade is fine (op_new owns OMERO's tables)"
unlike "$(omero_calls "$r/OMERO.server-5.3.5")" "admin\|stop" "… before any stop"
is "$(ou --json server status | jq -r .result.running)" true "… the server still runs"
ok "$([ ! -e "$r/.omero-upgrade-run.json" ] && [ -z "$(ls -A "$r/omero-upgrade-backups" 2>/dev/null)" ]; echo $?)" \
  "… no run recorded, no backup"
is "$(q op_a -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" OMERO5.3__1 \
  "… the database not upgraded"
out=$(ou run --new-server "$zip" "${opts[@]}" --dry-run 2>&1); rc=$?
is "$rc" 1 "run --dry-run: the same refusal (exit 1)"
like "$out" "step orphans: op_new lacks" "… the same problem"
# OMERO's domains and types stayed omero's: a rollback's restore (as op_new) would refuse the
# backup of a database whose objects belong to two roles (test 99).
like "$out" "step backup: the database holds objects that op_new \(omero.db.user\) does not own \([0-9]+ types of omero\)" \
  "… and the backup step: the domains and types left to omero"
out=$(ou run --new-server "$zip" "${opts[@]}" --force-step orphans --force-step colors --force-step wells --force-step backup --dry-run 2>&1)
rc=$?
is "$rc" 0 "--force-step orphans, colors, wells and backup: the plan can run"

# With the grants the message names, and the types given to op_new, the same run completes: the check asks for no more than needed.
q op_a -c "GRANT USAGE ON SCHEMA omero_upgrade TO op_new;
           GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA omero_upgrade TO op_new;
           GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA omero_upgrade TO op_new"
q op_a <<'SQL'
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT t.oid::regtype AS t, t.typtype AS k FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = 'public' AND t.typowner = 'omero'::regrole AND t.typrelid = 0 AND t.typelem = 0 LOOP
    EXECUTE format(CASE WHEN r.k = 'd' THEN 'ALTER DOMAIN %s OWNER TO op_new' ELSE 'ALTER TYPE %s OWNER TO op_new' END, r.t);
  END LOOP;
END $$;
SQL
out=$(ou run --new-server "$zip" "${opts[@]}" --dry-run 2>&1); rc=$?
is "$rc" 0 "after the GRANTs: the plan can run"
out=$(ou run --new-server "$zip" "${opts[@]}" 2>&1); rc=$?
is "$rc" 0 "… and the run completes"
is "$(jq -r '[.steps[] | select(.id == "orphans" or .id == "colors" or .id == "wells") | .status] | join(",")' "$r/.omero-upgrade-run.json")" \
  "done,done,done" "… orphans, colors and wells done"
isnt() { [ "$1" != "$2" ]; ok $? "$3"; }
isnt "$(q op_a -c "SELECT (SELECT count(*) FROM annotation) || '/' || (SELECT count(*) FROM wellannotationlink)")" "$before" \
  "… and they changed the data"

# --- a role with SELECT only (db-upgrade's and db-verify's checks skipped) ----------------------
psql -X -q -c "CREATE ROLE op_ro LOGIN" postgres
createdb -T run_template -O omero op_b
q op_b -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO op_ro;
           GRANT USAGE ON SCHEMA omero_upgrade TO op_ro;
           GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA omero_upgrade TO op_ro"
b=$t/b
mkdir -p "$b/data/BioFormatsCache"
make_sample_server "$b/OMERO.server-5.3.5" 5.3.5 op_b omero "$b/data"
ln -s OMERO.server-5.3.5 "$b/OMERO.server"
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
out=$(ob --db-user op_ro run --new-server "$zip" --orphans --colors all --force-step db-upgrade --force-step db-verify \
      --dry-run 2>&1); rc=$?
is "$rc" 1 "--db-user op_ro (SELECT only) --orphans --colors all: refused (exit 1)"
like "$out" "step orphans: op_ro lacks [^;]*DELETE on public.annotation" "… orphans: DELETE on annotation"
like "$out" "step colors: op_ro lacks [^;]*UPDATE on public.shape" "… colors: UPDATE on shape"
like "$out" "step colors: --colors all with the server down .* op_ro does not own 1 table\(s\), e.g. public.shape" \
  "… and the one-pass rewrite needs shape's owner"
like "$out" "\(--online\)" "… naming --online"
out=$(ob --db-user op_ro run --new-server "$zip" --orphans --force-step db-upgrade --force-step db-verify --force-step orphans \
      --dry-run 2>&1); rc=$?
unlike "$out" "step orphans" "--force-step orphans: its check skipped"

# The stub servers hold a session each: stopped, so that later tests of the cluster find free
# connection slots (the cluster's max_connections is shared by every test).
ou server stop >/dev/null 2>&1

done_testing
