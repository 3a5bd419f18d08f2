#!/usr/bin/env bash
# The tool's side of issue 13 (items 2 and 3), against a real cluster, as the roles of a real site:
# the superuser postgres (--db-user postgres), the OMERO owner st_owner, an unprivileged login
# role st_mallory (CREATEDB, to pre-create databases).
#   1. Every command that queries the database, run as the superuser against a database where the
#      OMERO owner planted operators, aggregates and functions in public (and a fake dbpatch in a
#      schema named postgres, the superuser's "$user"): no plant runs (the log table stays empty),
#      nobody becomes superuser, the version read is the real one, never the fake.
#   2. psql children running OMERO's own scripts (the precheck script; db upgrade hops share the
#      code): names resolve in OMERO's schema and pg_catalog only ("$user" plants do not run), and
#      plants in OMERO's schema itself make the tool refuse before the script runs.
#   3. restore --into: template and system databases, databases of another owner, or holding any
#      object made after initdb (functions, operators, no relations), or granting CREATE to
#      others, or with settings of their own: refused, nothing restored into them.
#   4. Every subcommand the tool has (its hidden --list-commands, so a new one is covered
#      without editing this test), run as the superuser against a database planted in public by
#      the OMERO owner and in the superuser's "$user" schema: the dry runs, then the real ones
#      that change the database (orphans, colours, annotations, vacuum, restore, run): no plant
#      runs, nobody becomes superuser. A subcommand this test does not know how to call (its
#      arguments refused) fails the test: add it to the table below.
# The plants are shown to work first (unqualified, they run), so the test can fail.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
owner=st_owner
mallory=st_mallory
psql -X -q -c "CREATE ROLE $owner LOGIN" -c "CREATE ROLE $mallory LOGIN CREATEDB" postgres
as() { local role=$1 db=$2; shift 2; PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -U "$role" -d "$db" "$@" 2>&1; }
supers() { q postgres -c "SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), '') FROM pg_roles WHERE rolsuper AND rolname <> 'postgres'"; }
log_count() { q "$1" -c "SELECT count(*) FROM st.plant_log"; }

# plant DB PLANTER SCHEMA: the log (by postgres) and loud plants by PLANTER in SCHEMA. A plant run
# by a superuser makes its planter superuser.
plant() {
  local db=$1 planter=$2 schema=$3
  q "$db" <<SQL
CREATE SCHEMA IF NOT EXISTS st;
CREATE TABLE IF NOT EXISTS st.plant_log (plant text, run_by name);
GRANT USAGE ON SCHEMA st TO PUBLIC;
GRANT INSERT ON st.plant_log TO PUBLIC;
CREATE OR REPLACE FUNCTION st.fire(what text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN
    INSERT INTO st.plant_log VALUES (what, current_user);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('ALTER ROLE %I SUPERUSER', '$planter');
    END IF;
END \$\$;
GRANT EXECUTE ON FUNCTION st.fire(text) TO PUBLIC;
SQL
  as "$planter" "$db" -v ON_ERROR_STOP=1 -v schema="$schema" <<'SQL'
SET search_path = :"schema";
CREATE FUNCTION p_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('=(varchar,varchar)'); RETURN $1::text = $2::text; END $$;
CREATE OPERATOR = (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = p_eq);
CREATE FUNCTION p_ne(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('<>(varchar,varchar)'); RETURN $1::text <> $2::text; END $$;
CREATE OPERATOR <> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = p_ne);
CREATE FUNCTION p_cat(varchar, varchar) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('||(varchar,varchar)'); RETURN $1::text || $2::text; END $$;
CREATE OPERATOR || (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = p_cat);
CREATE FUNCTION p_cat_vt(varchar, text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('||(varchar,text)'); RETURN $1::text || $2; END $$;
CREATE OPERATOR || (LEFTARG = varchar, RIGHTARG = text, FUNCTION = p_cat_vt);
CREATE FUNCTION p_cat_nt(name, text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('||(name,text)'); RETURN $1::text || $2; END $$;
CREATE OPERATOR || (LEFTARG = name, RIGHTARG = text, FUNCTION = p_cat_nt);
CREATE FUNCTION p_agg_step(int8[], int8) RETURNS int8[] LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('array_agg(int8)'); RETURN $1 || $2; END $$;
CREATE AGGREGATE array_agg(int8) (SFUNC = p_agg_step, STYPE = int8[]);
CREATE FUNCTION cardinality(int8[]) RETURNS int4 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('cardinality(int8[])'); RETURN pg_catalog.cardinality($1); END $$;
CREATE FUNCTION format(text, name, name) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('format(text,name,name)'); RETURN pg_catalog.format($1, $2, $3); END $$;
CREATE FUNCTION quote_ident(name) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('quote_ident(name)'); RETURN pg_catalog.quote_ident($1::text); END $$;
CREATE FUNCTION to_regclass(varchar) RETURNS regclass LANGUAGE plpgsql AS
  $$ BEGIN PERFORM st.fire('to_regclass(varchar)'); RETURN pg_catalog.to_regclass($1::text); END $$;
SQL
}

# 1. The tool's own queries, as the superuser, on a database the OMERO owner has planted.
fixture_db st_modern --version OMERO5.3__1 --owner "$owner"
q st_modern -c "CREATE EXTENSION omero_upgrade"
out=$(plant st_modern "$owner" public); ok $? "the OMERO owner plants operators, aggregates and functions in public ${out:0:200}"
as postgres st_modern -c "SELECT 'a'::varchar = 'b'::varchar, cardinality(ARRAY[1]::int8[])" >/dev/null
is "$(log_count st_modern)" 2 "the plants are live: a superuser's own unqualified = and cardinality run them"
is "$(supers)" "$owner" "… and one run by a superuser makes its planter superuser"
q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null; q st_modern -c "TRUNCATE st.plant_log"
as "$owner" st_modern -v ON_ERROR_STOP=1 -c "CREATE SCHEMA postgres" \
  -c "CREATE TABLE postgres.dbpatch AS SELECT * FROM public.dbpatch" \
  -c "UPDATE postgres.dbpatch SET currentversion = 'OMERO9.9', currentpatch = 9" >/dev/null
ok $? "… and a fake dbpatch (OMERO9.9__9) in a schema named postgres, the superuser's \"\$user\""

srv=$t/srv
make_sample_server "$srv" 5.6.3 st_modern "$owner"
tool() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
cmds=("check --backup-dir $t/bk" "status" "precheck" "backup --backup-dir $t/bk" "db orphans scan" "colors status"
      "db plan" "db vacuum --dry-run --force")
for c in "${cmds[@]}"; do
  [ "$c" = "db vacuum --dry-run --force" ] && continue  # reads no dbpatch
  out=$(tool $c 2>&1)
  like "$out" "more than one schema (of the database st_modern )?holds a table named dbpatch: \"?postgres\"?, \"?public" \
    "two dbpatch tables: $c refuses, naming both"
  unlike "$out" "OMERO9\.9__9" "… and never shows the fake version"
done
is "$(log_count st_modern)" 0 "no plant ran"
q postgres -c "ALTER ROLE postgres IN DATABASE st_modern SET omero_upgrade.omero_schema = 'public'" >/dev/null
for c in "${cmds[@]}"; do
  out=$(tool --json $c 2>/dev/null)
  like "$(jq -r .exit_code <<<"$out")" "^[013]$" "omero_upgrade.omero_schema = public: $c runs (exit $(jq -r .exit_code <<<"$out"))"
  [ "$(jq -r .exit_code <<<"$out")" = 2 ] && diag "$(jq -c .errors <<<"$out")"
done
like "$(tool --json status 2>/dev/null | jq -c .)" "OMERO5\.3__1" "status shows the real version"
unlike "$(tool --json status 2>/dev/null | jq -c .)" "OMERO9\.9__9" "… never the fake"
is "$(tool --json precheck 2>/dev/null | jq -r .result.method)" extension "precheck ran through the extension"
is "$(log_count st_modern)" 0 "after every command as the superuser: the plant log is empty"
is "$(supers)" "" "… and no role became superuser"
ls "$t"/bk/*.pgdump >/dev/null 2>&1; ok $? "the backup was made with the plants in place"

# 2. psql children running OMERO's scripts: the precheck script (no extension in the database).
# 2a. Plants only in the superuser's "$user" schema: not on the child's path, the script runs.
fixture_db st_user --version OMERO5.3__1 --owner "$owner"
as "$owner" st_user -v ON_ERROR_STOP=1 -c "CREATE SCHEMA postgres" >/dev/null
out=$(plant st_user "$owner" postgres); ok $? "the OMERO owner plants the same in a schema named postgres ${out:0:200}"
as postgres st_user -c "SELECT 'a'::varchar <> 'b'::varchar" >/dev/null
is "$(log_count st_user)" 1 "… live: the superuser's own unqualified <> (varchar, varchar) runs it"
q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null; q st_user -c "TRUNCATE st.plant_log"
make_sample_server "$t/srv_user" 5.6.3 st_user "$owner"
out=$("$TOOL" --server-dir "$t/srv_user" --db-user postgres --log-file "$t/user.log" precheck 2>&1); rc=$?
is "$rc" 0 "precheck by OMERO's script, as the superuser: exit 0"
[ "$rc" = 0 ] || diag "$out"
like "$(cat "$t/user.log")" 'PGOPTIONS=.*search_path=\\?"public\\?",\\? ?\\?pg_catalog' "… its psql ran with OMERO's schema and pg_catalog as search_path"
is "$(log_count st_user)" 0 "… and no plant of the \"\$user\" schema ran (the script compares varchar with <>)"
is "$(supers)" "" "… nobody became superuser"
# 2b. Plants in OMERO's schema itself: refused before the script runs.
fixture_db st_script --version OMERO5.3__1 --owner "$owner"
out=$(plant st_script "$owner" public); ok $? "the OMERO owner plants in public, OMERO's schema ${out:0:200}"
make_sample_server "$t/srv_script" 5.6.3 st_script "$owner"
out=$("$TOOL" --server-dir "$t/srv_script" --db-user postgres precheck 2>&1); rc=$?
is "$rc" 2 "precheck by script with plants in OMERO's schema: exit 2"
like "$out" "holds functions or operators named like PostgreSQL's own: .*operator " "… naming them"
is "$(log_count st_script)" 0 "… and no plant ran"
# 2c. A legacy database (public world-writable): an unprivileged role plants, the superuser is safe.
fixture_db st_legacy --version OMERO5.3__1 --owner "$owner"
q st_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC" -c "CREATE EXTENSION omero_upgrade"
out=$(plant st_legacy "$mallory" public); ok $? "an unprivileged role plants in a world-writable public ${out:0:200}"
make_sample_server "$t/srv_legacy" 5.6.3 st_legacy "$owner"
for c in "check --backup-dir $t/bk3" "status" "precheck" "db orphans scan" "colors status" "db plan"; do
  out=$("$TOOL" --server-dir "$t/srv_legacy" --db-user postgres --json $c 2>/dev/null)
  like "$(jq -r .exit_code <<<"$out")" "^[013]$" "legacy database: $c as the superuser runs"
done
is "$(log_count st_legacy)" 0 "legacy database: the plant log is empty"
is "$(supers)" "" "… and no role became superuser"

# 3. restore --into.
fixture_db st_src --version OMERO5.3__1 --owner "$owner"
make_sample_server "$t/srv_rt" 5.6.3 st_src "$owner"
rt() { "$TOOL" --server-dir "$t/srv_rt" --db-user postgres "$@"; }
rt -q backup --backup-dir "$t/bk2" >/dev/null 2>&1
f=$(ls "$t"/bk2/*.pgdump)
ok $? "a backup to restore"
relcount() { q "$1" -c "SELECT count(*) FROM pg_class WHERE oid >= 16384"; }
for db in template1 postgres template0; do
  out=$(rt restore "$f" --into "$db" 2>&1); rc=$?
  is "$rc" 2 "restore --into $db: exit 2"
  like "$out" "'$db' is a system or template database: refusing" "… refused as a system or template database"
done
is "$(relcount template1)" 0 "template1 holds nothing new"
is "$(relcount postgres)" 0 "postgres holds nothing new"
# Pre-created by the unprivileged role, with planted functions and operators and no relation.
psql -X -q -U "$mallory" -d postgres -c "CREATE DATABASE st_trap ENCODING 'UTF8' TEMPLATE template0" >/dev/null
as "$mallory" st_trap -v ON_ERROR_STOP=1 -c "CREATE SCHEMA m" \
  -c "CREATE FUNCTION m.ome_nextval(varchar) RETURNS int8 LANGUAGE sql AS 'SELECT 1::int8'" \
  -c "CREATE FUNCTION m.p_eq(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT true'" \
  -c "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = m.p_eq)" \
  -c "ALTER DATABASE st_trap SET search_path = m, public" >/dev/null
ok $? "the unprivileged role pre-creates st_trap with a schema, functions, an operator and a search_path, no relation"
out=$(rt restore "$f" --into st_trap 2>&1); rc=$?
is "$rc" 2 "restore --into st_trap: exit 2"
like "$out" "'st_trap' already exists and is not empty \(it holds .*functions.*operators.*schemas.*settings of the database" \
  "… refused, saying what it holds"
is "$(relcount st_trap)" 0 "… nothing was restored into it"
# Empty, but owned by the unprivileged role.
psql -X -q -U "$mallory" -d postgres -c "CREATE DATABASE st_theirs ENCODING 'UTF8' TEMPLATE template0" >/dev/null
out=$(rt restore "$f" --into st_theirs 2>&1); rc=$?
is "$rc" 2 "restore --into an empty database of another owner: exit 2"
like "$out" "'st_theirs' already exists and belongs to $mallory, not to $owner" "… refused, naming both owners"
# Owned by the OMERO owner, empty, but public open to everyone (since 15 a grant someone made;
# before 15 every new database has it, so there the grant is to the unprivileged role instead).
psql -X -q -d postgres -c "CREATE DATABASE st_open ENCODING 'UTF8' TEMPLATE template0 OWNER $owner"
if [ "$(q postgres -c "SHOW server_version_num")" -ge 150000 ]; then grantee=PUBLIC; else grantee=$mallory; fi
q st_open -c "GRANT CREATE ON SCHEMA public TO $grantee"
out=$(rt restore "$f" --into st_open 2>&1); rc=$?
is "$rc" 2 "restore --into a database whose public $grantee may write: exit 2"
like "$out" "grants of CREATE to other roles" "… refused, saying why"
# Owned by the OMERO owner, with only an operator of the owner's (no relation, no function of its own).
psql -X -q -d postgres -c "CREATE DATABASE st_op ENCODING 'UTF8' TEMPLATE template0 OWNER $owner"
as "$owner" st_op -v ON_ERROR_STOP=1 -c "CREATE OPERATOR public.=== (LEFTARG = int8, RIGHTARG = int8, FUNCTION = pg_catalog.int8eq)" >/dev/null
out=$(rt restore "$f" --into st_op 2>&1); rc=$?
is "$rc" 2 "restore --into a database holding one operator: exit 2"
like "$out" "is not empty \(it holds 1 operators\)" "… refused"
# Other sessions connected: refused.
psql -X -q -d postgres -c "CREATE DATABASE st_busy ENCODING 'UTF8' TEMPLATE template0 OWNER $owner"
# (Longer than the 5 s a closing session is given.)
psql -X -q -d st_busy -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
busy=$!
for _ in $(seq 100); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'st_busy'")" = 1 ] && break; sleep 0.05; done
out=$(rt restore "$f" --into st_busy 2>&1); rc=$?
is "$rc" 2 "restore --into a database another session uses: exit 2"
like "$out" "1 other session\(s\) are connected to it" "… refused"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'st_busy' AND pid <> pg_backend_pid()" >/dev/null
kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null
# The good cases: a new name is created, an empty database of the owner is taken (and said so).
out=$(rt restore "$f" --into st_new 2>&1)
is "$?" 0 "restore --into a new name: exit 0"
like "$out" "created database 'st_new' \(UTF8, owner $owner\)" "… created by the tool"
psql -X -q -d postgres -c "CREATE DATABASE st_mine ENCODING 'UTF8' TEMPLATE template0 OWNER $owner"
out=$(rt restore "$f" --into st_mine 2>&1)
is "$?" 0 "restore --into an empty UTF8 database of the OMERO owner: exit 0"
like "$out" "the database 'st_mine' exists: restoring into it, as it is empty" "… and says that it exists"
is "$(supers)" "" "after every attack: no role became superuser"

# 4. Every subcommand, as the superuser, in two databases: st_all planted by the OMERO owner in
#    public (OMERO's schema: what writes or runs OMERO's scripts refuses, the rest reads among the
#    plants) and in the superuser's "$user" schema (named postgres; no dbpatch there); st_usr
#    planted in the "$user" schema only, where the real runs go all the way.
mapfile -t subcommands < <("$TOOL" --list-commands)
ok "$([ "${#subcommands[@]}" -ge 25 ]; echo $?)" "the tool lists ${#subcommands[@]} subcommands"
all_pass() {
local db=$1 schemas=$2
fixture_db "$db" --version OMERO5.3__1 --owner "$owner"
q "$db" -c "CREATE EXTENSION omero_upgrade"
as "$owner" "$db" -v ON_ERROR_STOP=1 -c "CREATE SCHEMA postgres" >/dev/null
local sc okp=0
for sc in $schemas; do out=$(plant "$db" "$owner" "$sc") || okp=1; done
ok $okp "$db: the OMERO owner plants in $schemas ${out:0:200}"
as postgres "$db" -c "SELECT 'a'::varchar = 'b'::varchar" >/dev/null
is "$(log_count "$db")" 1 "… live: a superuser's own unqualified = runs one"
q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null; q "$db" -c "TRUNCATE st.plant_log"
a=$t/$db
mkdir -p "$a/build"
make_sample_server "$a/OMERO.server-5.3.5" 5.3.5 "$db" "$owner" "$a/data"
mkdir -p "$a/data"
ln -s OMERO.server-5.3.5 "$a/OMERO.server"
make_sample_server "$a/build/OMERO.server-5.6.3" 5.6.3
rm "$a/build/OMERO.server-5.6.3/etc/grid/config.xml"
make_server_zip "$a/build/OMERO.server-5.6.3" "$a/OMERO.server-5.6.3.zip"; rm -r "$a/build"
zip=$a/OMERO.server-5.6.3.zip bk=$a/bk
allt() { timeout 300 "$TOOL" --server-dir "$a/OMERO.server" --db-user postgres --log-file "$a/tool.log" --json "$@"; }
allt backup --backup-dir "$a/bk0" >/dev/null 2>&1
dump=$(ls "$a"/bk0/*.pgdump 2>/dev/null | head -1)
ok "$([ -n "$dump" ]; echo $?)" "a dump of $db to restore and import (made by the tool, with the plants in place)"
# The plant log (schema st) is the test's, postgres's: a dump of the database holds objects of two
# roles, which restore and rollback take over only with --reassign-owners, and run's backup check
# names (test 99); here they are given, so that every call goes all the way among the plants.
# How to call each subcommand: its dry runs first, then (after "|") the runs that change things.
# Variants are separated by ";". The real runs come in the order given; run last (it stops the
# stub server and upgrades the database as far as the plants let it).
declare -A how=(
  ["annotations move-to-wells"]="--well 1 | --well 1 --apply"
  ["backup"]="--backup-dir $bk"
  ["backup list"]="--backup-dir $bk"
  ["backup import"]="--backup-dir $a/bk-import $dump"
  ["backup verify"]="--backup-dir $bk $dump"
  ["binaries install"]="--dry-run $zip"
  ["binaries rollback"]="--dry-run"
  ["cache clear"]="--dry-run"
  ["check"]="--backup-dir $bk --new-server $zip"
  ["colors convert"]="--dry-run | --roi 1,2,3 ; --batches"
  ["colors revert"]="--dry-run | --roi 1,2,3"
  ["colors status"]=""
  ["config upgrade-check"]="--dry-run off"
  ["db orphans scan"]=""
  ["db orphans delete"]="--dry-run | --apply"
  ["db orphans restore"]="--run 1 --dry-run | --run 1"
  ["db to-utf8"]="--into ${db}_utf8 --backup-dir $bk"
  ["db plan"]=""
  ["db upgrade"]="--dry-run --force"
  ["db vacuum"]="--dry-run --force | --force"
  ["db verify"]=""
  ["history"]=""
  ["precheck"]="--new-server $zip"
  ["restore"]=" | $dump --into ${db}_restored --reassign-owners"
  ["rollback"]="--dry-run"
  ["run"]="--dry-run --new-server $zip --backup-dir $bk --force-step backup | --new-server $zip --backup-dir $bk --rollback-into ${db}_rb --force-step backup"
  ["server status"]=""
  ["server stop"]="--dry-run"
  ["server start"]="--dry-run"
  ["server diagnostics"]="--dry-run"
  ["server jvmcfg"]="--dry-run"
  ["status"]="--new-server $zip"
)
local c unknown=() stale=()
for c in "${!how[@]}"; do printf '%s\n' "${subcommands[@]}" | grep -qxF "$c" || stale+=("$c"); done
is "${stale[*]}" "" "every subcommand of the table still exists"
# run_one PHASE CMD ARGS: one call; a usage error (exit 2 with the hint to --help) means this test
# does not know how to call it.
bad_calls=() calls=0 exits=() real_exits=()
run_one() {
  local phase=$1 c=$2 args=$3 out rc
  # shellcheck disable=SC2086
  out=$(allt $c $args 2>/dev/null); rc=$?
  calls=$((calls + 1)) exits+=("$rc")
  [ "$phase" = dry ] || real_exits+=("$rc")
  if [ "$rc" -ge 124 ]; then bad_calls+=("$c $args: exit $rc (signal or timeout)"); return; fi
  if [ "$rc" = 2 ] && jq -e '.hints | any(test("--help$"))' <<<"$out" >/dev/null 2>&1; then
    bad_calls+=("$c $args: arguments refused ($(jq -c .errors <<<"$out")): add it to the table of test 62")
    return
  fi
  if ! jq -e . <<<"$out" >/dev/null 2>&1; then bad_calls+=("$c $args: no JSON (exit $rc)"); return; fi
  # Each call judged on its own: what a plant did is undone after it is recorded.
  if [ "$(log_count "$db")" != 0 ]; then
    bad_calls+=("$c $args: a plant ran: $(q "$db" -c "SELECT string_agg(DISTINCT plant || ' by ' || run_by, ', ') FROM st.plant_log")")
    q "$db" -c "TRUNCATE st.plant_log"
  fi
  if [ -n "$(supers)" ]; then
    bad_calls+=("$c $args: $(supers) became superuser")
    q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null
  fi
  diag "$db $phase: $c $args: exit $rc$([ "$rc" = 0 ] || echo " $(jq -c .errors <<<"$out" | cut -c1-300)")"
}
local phase spec part v variants
for phase in dry real; do
  for c in "${subcommands[@]}"; do
    if [ -z "${how[$c]+x}" ]; then
      [ "$phase" = dry ] || continue
      unknown+=("$c"); run_one new "$c" ""; continue
    fi
    [ "$c" = run ] && [ "$phase" = real ] && continue   # last, below
    spec=${how[$c]}
    if [ "$phase" = dry ]; then part=${spec%%|*}; else [[ $spec == *"|"* ]] || continue; part=${spec#*|}; fi
    IFS=';' read -r -a variants <<<"$part"
    [ "${#variants[@]}" -eq 0 ] && variants=("")
    for v in "${variants[@]}"; do
      [[ $spec == *"|"* ]] && [ -z "${v// /}" ] && continue
      run_one "$phase" "$c" "$v"
    done
  done
done
run_one real run "${how[run]#*|}"
# And what undoes a run, once there is one to undo.
for v in "rollback --dry-run" "binaries rollback --dry-run" "rollback --into ${db}_rb2 --reassign-owners"; do run_one real "${v%% *}" "${v#* }"; done
[ "${#unknown[@]}" -gt 0 ] && diag "subcommands not in the table, run without arguments: ${unknown[*]}"
is "$(printf '%s\n' "${bad_calls[@]}")" "" "$db: all $calls calls of the ${#subcommands[@]} subcommands ran as the superuser: no plant ran, no role became superuser, none refused its arguments"
is "$(log_count "$db")" 0 "$db: the plant log is empty after them all"
local d
for d in "${db}_restored" "${db}_rb" "${db}_rb2"; do
  if [ "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$d'")" = 1 ]; then
    is "$(log_count "$d")" 0 "$d (made by restore or run, the plants restored with it): its plant log is empty"
  fi
done
is "$(supers)" "" "… and no role became superuser"
local n_schemas
n_schemas=$(wc -w <<<"$schemas")
is "$(q "$db" -c "SELECT count(*) FROM pg_proc WHERE proname = 'p_eq'")" "$n_schemas" "… the plants are still there (the pass ran among them)"
}
all_pass st_all "public postgres"
ok "$(grep -c . <<<"$(printf '%s\n' "${exits[@]}" | grep -vx 2)" | awk '{print ($1 >= 15) ? 0 : 1}')" "st_all: most calls went past their checks (exit 0, 1 or 3: $(printf '%s\n' "${exits[@]}" | grep -cvx 2) of $calls)"
all_pass st_usr "postgres"
is "$(printf '%s\n' "${real_exits[@]}" | grep -cx 2)" 0 "st_usr (plants only in \"\$user\"): none of the ${#real_exits[@]} real runs was refused (exit 2): they went all the way"
q st_usr -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1" | grep -qx "OMERO5.4__0"
ok $? "… run upgraded st_usr to OMERO5.4__0 among the plants"

for db in st_modern st_user st_script st_legacy st_src st_trap st_theirs st_open st_op st_busy st_new st_mine st_all st_all_restored st_all_utf8 st_all_rb st_usr st_usr_restored st_usr_utf8 st_usr_rb st_all_rb2 st_usr_rb2; do
  q postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
q postgres -c "DROP OWNED BY $mallory" -c "DROP ROLE $mallory" -c "DROP OWNED BY $owner" -c "DROP ROLE $owner" >/dev/null 2>&1
done_testing
