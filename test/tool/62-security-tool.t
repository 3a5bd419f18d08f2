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
psql -X -q -d st_busy -c "SELECT pg_sleep(5)" >/dev/null 2>&1 &
busy=$!
for _ in $(seq 100); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'st_busy'")" = 1 ] && break; sleep 0.05; done
out=$(rt restore "$f" --into st_busy 2>&1); rc=$?
is "$rc" 2 "restore --into a database another session uses: exit 2"
like "$out" "1 other session\(s\) are connected to it" "… refused"
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

for db in st_modern st_user st_script st_legacy st_src st_trap st_theirs st_open st_op st_busy st_new st_mine; do
  q postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
q postgres -c "DROP OWNED BY $mallory" -c "DROP ROLE $mallory" -c "DROP OWNED BY $owner" -c "DROP ROLE $owner" >/dev/null 2>&1
done_testing
