# Run-time hijack (issue 13, item 2): planted operators and functions, and a fake dbpatch in a
# "$user" schema, against every SQL-callable function and procedure of the extension, called by the
# roles of a real site: the superuser postgres, the OMERO owner, an unprivileged login role.
#   - sec61_modern: a PostgreSQL 15 database; the OMERO owner (owner of the database) plants in public.
#   - sec61_legacy: public world-writable (GRANT CREATE ON SCHEMA public TO PUBLIC, as on every
#     database created before PostgreSQL 15); the unprivileged role plants there.
#   - sec61_user: the OMERO owner plants in a schema named postgres (the superuser's "$user"), not
#     in OMERO's: here every call runs for real, OMERO's own code included.
# Every plant is loud: it writes a row to sec61.plant_log (who ran it, as whom) and, when it runs
# as a superuser, makes its planter a superuser. After the calls: the log is empty, nobody but
# postgres is superuser, the versions read are the real ones, the callers' search_path is intact
# (also after a procedure cancelled between two of its commits). The plants are shown to work
# first (called unqualified, they do run), so the test can fail. The calls come from the catalog
# (pg_proc and pg_depend: every object of the extension), so a new function is called without
# editing the test; one the test cannot call (an argument it has no value for, or an error of its
# own when run for real in sec61_user) fails it. Last, a static pass over the SQL
# text of extension/*.cpp: no unqualified function call.
source "$(dirname "$0")/../lib/tap.sh"

owner=sec61_owner
mallory=sec61_mallory
psql -X -q -c "CREATE ROLE $owner LOGIN" -c "CREATE ROLE $mallory LOGIN" postgres

# psql as a role on a database; errors do not stop it (a refusal is an expected outcome).
as() { local role=$1 db=$2; shift 2; PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -U "$role" -d "$db" "$@" 2>&1; }

# The log, the escalation and the plants, created by $2 in schema $3 of database $1.
plant() {
  local db=$1 planter=$2 schema=$3
  q "$db" <<SQL
CREATE SCHEMA sec61;
CREATE TABLE sec61.plant_log (plant text, run_by name, superuser boolean, at timestamptz DEFAULT clock_timestamp());
GRANT USAGE ON SCHEMA sec61 TO PUBLIC;
GRANT INSERT, SELECT ON sec61.plant_log TO PUBLIC;
-- Runs inside every plant: log, and as a superuser hand the planter superuser rights.
CREATE FUNCTION sec61.fire(what text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN
    INSERT INTO sec61.plant_log (plant, run_by, superuser)
    VALUES (what, current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('ALTER ROLE %I SUPERUSER', '$planter');
    END IF;
    RAISE WARNING 'PLANT % RAN as %', what, current_user;
END \$\$;
GRANT EXECUTE ON FUNCTION sec61.fire(text) TO PUBLIC;
SQL
  as "$planter" "$db" -v ON_ERROR_STOP=1 -v schema="$schema" <<'SQL'
SET search_path = :"schema";
-- Operators where pg_catalog's needs a coercion (varchar has no = of its own), so a plant is the
-- better match when found.
CREATE FUNCTION p_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('=(varchar,varchar)'); RETURN $1::text = $2::text; END $$;
CREATE OPERATOR = (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = p_eq);
CREATE FUNCTION p_eq_vt(varchar, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('=(varchar,text)'); RETURN $1::text = $2; END $$;
CREATE OPERATOR = (LEFTARG = varchar, RIGHTARG = text, FUNCTION = p_eq_vt);
CREATE FUNCTION p_like(varchar, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('~~(varchar,text)'); RETURN $1::text LIKE $2; END $$;
CREATE OPERATOR ~~ (LEFTARG = varchar, RIGHTARG = text, FUNCTION = p_like);
CREATE FUNCTION p_cat(varchar, varchar) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('||(varchar,varchar)'); RETURN $1::text || $2::text; END $$;
CREATE OPERATOR || (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = p_cat);
CREATE FUNCTION p_cat_vt(varchar, text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('||(varchar,text)'); RETURN $1::text || $2; END $$;
CREATE OPERATOR || (LEFTARG = varchar, RIGHTARG = text, FUNCTION = p_cat_vt);
-- Aggregates and functions whose pg_catalog version is polymorphic or takes "any": a plant with
-- concrete argument types wins over it.
CREATE FUNCTION p_agg_step(int8[], int8) RETURNS int8[] LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('array_agg(int8)'); RETURN $1 || $2; END $$;
CREATE AGGREGATE array_agg(int8) (SFUNC = p_agg_step, STYPE = int8[]);
CREATE FUNCTION p_agg_step4(int4[], int4) RETURNS int4[] LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('array_agg(int4)'); RETURN $1 || $2; END $$;
CREATE AGGREGATE array_agg(int4) (SFUNC = p_agg_step4, STYPE = int4[]);
CREATE FUNCTION p_agg_stept(text[], text) RETURNS text[] LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('array_agg(text)'); RETURN $1 || $2; END $$;
CREATE AGGREGATE array_agg(text) (SFUNC = p_agg_stept, STYPE = text[]);
CREATE FUNCTION p_jagg_step(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('jsonb_agg(jsonb)'); RETURN coalesce($1, '[]') || $2; END $$;
CREATE AGGREGATE jsonb_agg(jsonb) (SFUNC = p_jagg_step, STYPE = jsonb);
CREATE FUNCTION cardinality(int8[]) RETURNS int4 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('cardinality(int8[])'); RETURN pg_catalog.cardinality($1); END $$;
CREATE FUNCTION cardinality(int4[]) RETURNS int4 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('cardinality(int4[])'); RETURN pg_catalog.cardinality($1); END $$;
CREATE FUNCTION unnest(int8[]) RETURNS SETOF int8 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('unnest(int8[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('unnest(text[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION unnest(int2[]) RETURNS SETOF int2 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('unnest(int2[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION format(text, name, name) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('format(text,name,name)'); RETURN pg_catalog.format($1, $2, $3); END $$;
CREATE FUNCTION format(text, name) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('format(text,name)'); RETURN pg_catalog.format($1, $2); END $$;
CREATE FUNCTION jsonb_build_array(int4, int4) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('jsonb_build_array(int4,int4)'); RETURN pg_catalog.jsonb_build_array($1, $2); END $$;
CREATE FUNCTION jsonb_build_object(text, int8, text, text, text, jsonb, text, jsonb) RETURNS jsonb
  LANGUAGE plpgsql AS $$ BEGIN PERFORM sec61.fire('jsonb_build_object(…)');
  RETURN pg_catalog.jsonb_build_object($1, $2, $3, $4, $5, $6, $7, $8); END $$;
CREATE FUNCTION array_to_string(int8[], text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('array_to_string(int8[],text)'); RETURN pg_catalog.array_to_string($1, $2); END $$;
CREATE FUNCTION array_to_string(text[], text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('array_to_string(text[],text)'); RETURN pg_catalog.array_to_string($1, $2); END $$;
CREATE FUNCTION to_jsonb(public.annotation) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('to_jsonb(public.annotation)'); RETURN pg_catalog.to_jsonb($1); END $$;
CREATE FUNCTION pg_column_size(public.annotation) RETURNS int4 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('pg_column_size(public.annotation)'); RETURN pg_catalog.pg_column_size($1); END $$;
CREATE FUNCTION jsonb_populate_record(public.annotation, jsonb) RETURNS public.annotation LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('jsonb_populate_record(annotation,jsonb)');
  RETURN pg_catalog.jsonb_populate_record($1, $2); END $$;
CREATE FUNCTION string_agg_step(text, varchar, text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('string_agg(varchar,text)'); RETURN coalesce($1 || $3, '') || $2; END $$;
CREATE AGGREGATE string_agg(varchar, text) (SFUNC = string_agg_step, STYPE = text);
CREATE FUNCTION to_regclass(varchar) RETURNS regclass LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('to_regclass(varchar)'); RETURN pg_catalog.to_regclass($1::text); END $$;
CREATE FUNCTION quote_ident(name) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('quote_ident(name)'); RETURN pg_catalog.quote_ident($1::text); END $$;
CREATE FUNCTION current_setting(varchar) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('current_setting(varchar)'); RETURN pg_catalog.current_setting($1::text); END $$;
CREATE FUNCTION pg_get_userbyid(int8) RETURNS name LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('pg_get_userbyid(int8)'); RETURN pg_catalog.pg_get_userbyid($1::oid); END $$;
CREATE FUNCTION nextval(varchar) RETURNS int8 LANGUAGE plpgsql AS
  $$ BEGIN PERFORM sec61.fire('nextval(varchar)'); RETURN pg_catalog.nextval($1::regclass); END $$;
SQL
  # (every planted name is a pg_catalog function name: the list is checked below)
}

fixture_db sec61_modern --version OMERO5.3__1 --owner "$owner"
fixture_db sec61_legacy --version OMERO5.3__1 --owner "$owner"
q sec61_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC"
for db in sec61_modern sec61_legacy; do
  q "$db" -c "CREATE EXTENSION omero_upgrade"
  q "$db" -c "GRANT USAGE ON SCHEMA omero_upgrade TO $mallory"
done
plant_out=$(plant sec61_modern "$owner" public 2>&1)
ok $? "the OMERO owner plants operators, aggregates and functions in public: ${plant_out:0:300}"
plant_out=$(plant sec61_legacy "$mallory" public 2>&1)
ok $? "an unprivileged role plants them in a world-writable public: ${plant_out:0:300}"
is "$(q sec61_legacy -c "SELECT string_agg(DISTINCT p.proname, ',') FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace AND p.proname NOT LIKE 'p\\_%' ESCAPE '\\'
         AND p.proname NOT IN ('string_agg_step', 'ome_nextval')
         AND p.proowner = '$mallory'::regrole
         AND NOT EXISTS (SELECT 1 FROM pg_proc c WHERE c.pronamespace = 'pg_catalog'::regnamespace AND c.proname = p.proname)")" \
  "" "every planted function shadows a pg_catalog function of that name"

log_count() { q "$1" -c "SELECT count(*) FROM sec61.plant_log"; }
# The plants work: unqualified, in a caller's own SQL with public on the path, they run.
as postgres sec61_legacy -c "SELECT 'a'::varchar = 'b'::varchar, pg_catalog.cardinality(ARRAY[1]::int8[]), cardinality(ARRAY[1]::int8[])" >/dev/null
is "$(log_count sec61_legacy)" "2" "the plants are live: a superuser's own unqualified = (varchar, varchar) and cardinality(int8[]) run them"
is "$(q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$mallory'")" "t" "… and a plant run by a superuser does make its planter superuser"
q postgres -c "ALTER ROLE $mallory NOSUPERUSER" >/dev/null
# Inside OMERO's own code, with OMERO's schema on the path, they run too (what the extension guards against).
as postgres sec61_modern -c "SET search_path = pg_catalog, public" -c "SELECT public.ome_nextval('seq_event')" >/dev/null
like "$(log_count sec61_modern)" "^[1-9]" "… and OMERO's own ome_nextval, run with public on the path, runs them"
q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null
q sec61_modern -c "TRUNCATE sec61.plant_log"
q sec61_legacy -c "TRUNCATE sec61.plant_log"

# Every SQL-callable function and procedure of the extension, from the catalog, with arguments
# chosen by name (and by type where unnamed); those with a dry_run argument also for real.
calls() {
  q "$1" <<'SQL'
WITH f AS (
  SELECT p.oid, p.proname, p.prokind, p.proretset, p.pronargs, p.pronargdefaults,
         coalesce(p.proargnames, '{}') AS names, ARRAY(SELECT pg_catalog.unnest(p.proargtypes)) AS types,
         coalesce(p.proargmodes, '{}') AS modes
    FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'omero_upgrade')
     AND p.proname <> '_grant_state'),
a AS (
  SELECT f.oid, i, f.names[i] AS name, f.types[i] AS type, i > f.pronargs - f.pronargdefaults AS has_default
    FROM f, generate_subscripts(f.types, 1) AS i),
v AS (
  SELECT a.oid, a.i, a.name, a.has_default,
         CASE a.name
           WHEN 'direction' THEN '''argb_to_rgba'''  WHEN 'target' THEN '''OMERO5.4__0'''
           WHEN 'roi_ids' THEN '''{1,2}'''          WHEN 'plate_ids' THEN '''{2}'''
           WHEN 'run_id' THEN '1'                    WHEN 'shape_ids' THEN '''{1,2}'''
           WHEN 'fill_before' THEN '''{1,2}'''       WHEN 'stroke_before' THEN '''{1,2}'''
           WHEN 'version_after' THEN '''{1,1}'''     WHEN 'update_after' THEN '''{1,1}'''
           WHEN 'lo' THEN '1' WHEN 'hi' THEN '2'     WHEN 'want' THEN 'NULL'
           WHEN 'kind' THEN '''hop'''                WHEN 'what' THEN '''sec61 call'''
           WHEN 'jobs' THEN '2'
           WHEN 'file_name' THEN 'concat(''sec61-'', current_user, ''.sql'')' WHEN 'sha256' THEN 'repeat(''a'', 64)'
           WHEN 'os_user' THEN '''sec61'''           WHEN 'host' THEN '''sec61.example.org'''
           WHEN 'db_version' THEN '''OMERO5.3__1'''
           ELSE CASE WHEN a.type = 'int4'::regtype THEN '255' END END AS val
    FROM a)
SELECT f.proname,
       (CASE WHEN f.prokind = 'p' THEN 'CALL ' WHEN f.proretset THEN 'SELECT * FROM ' ELSE 'SELECT ' END)
       || f.oid::regproc::text || '(' ||
       coalesce((SELECT string_agg(CASE WHEN v.name IS NOT NULL AND v.name <> '' THEN v.name || ' => ' ELSE '' END
                                   || coalesce(v.val, 'NULL'), ', ' ORDER BY v.i)
                   FROM v WHERE v.oid = f.oid AND NOT (v.has_default AND v.val IS NULL)), '') || ')',
       (SELECT count(*) FROM v WHERE v.oid = f.oid AND v.name = 'dry_run') > 0,
       (SELECT string_agg(v.name, ',') FROM v WHERE v.oid = f.oid AND v.val IS NULL AND NOT v.has_default
                                         AND f.modes[v.i] IS DISTINCT FROM 'b')
  FROM f ORDER BY f.proname
SQL
}
calls sec61_modern > "$OU_TMP/sec61.calls"
n_calls=$(wc -l < "$OU_TMP/sec61.calls")
ok $(( n_calls < 15 )) "the extension's SQL-callable functions and procedures, from pg_proc and pg_depend: $n_calls"
like "$(cut -d'|' -f1 "$OU_TMP/sec61.calls" | tr '\n' ' ')" "omero_annotations_move_to_wells_in_batches .*omero_colors_convert .*omero_db_version .*omero_orphans_delete_batches .*omero_precheck " \
  "… procedures and functions of every concept among them"
missing=$(awk -F'|' '$4 != "" {print $1 ": " $4}' "$OU_TMP/sec61.calls")
is "$missing" "" "every argument without a default has a value in this test (a new function's new argument gets one)"
is "$(q sec61_modern -c "SELECT has_function_privilege('$mallory', 'omero_upgrade._grant_state(pg_catalog.regclass)', 'EXECUTE')
                          OR has_function_privilege('$owner', 'omero_upgrade._grant_state(pg_catalog.regclass)', 'EXECUTE')")" f \
  "the one function left out of the pass, _grant_state() (the install script's helper), is callable by neither role"
script="$OU_TMP/sec61.sql"
{
  echo "SET search_path = \"\$user\", public;"
  while IFS='|' read -r name call has_dry _; do
    echo "$call;"
    if [ "$has_dry" = t ]; then
      echo "${call%)}, dry_run => false);" | sed 's/(, /(/'
    fi
  done < "$OU_TMP/sec61.calls"
  echo "CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{2}', remove_image_links => true, dry_run => false);"
  echo "SELECT * FROM omero_colors_purge_journal(forget => true, dry_run => false);"
  echo "SELECT * FROM omero_orphans_delete(false, 10000, NULL, true);"
  echo "SELECT 'search_path after: ' || current_setting('search_path');"
} > "$script"
diag "$(grep -c . "$script") statements per role, e.g.: $(sed -n 2,4p "$script" | tr '\n' ' ')"

for db in sec61_modern sec61_legacy; do
  for role in postgres "$owner" "$mallory"; do
    out=$(as "$role" "$db" -f "$script")
    is "$(echo "$out" | grep '^search_path after: ')" 'search_path after: "$user", public' \
      "$db as $role: the caller's search_path is as it was after every call"
    unlike "$out" "PLANT .* RAN" "$db as $role: no plant ran (no WARNING from one)"
    [ "$role" = postgres ] && [ "$db" = sec61_modern ] && echo "$out" > "$OU_TMP/sec61.superuser.out"
  done
  is "$(log_count "$db")" "0" "$db: the plant log is empty after every function and procedure, called by all three roles"
done
is "$(q postgres -c "SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), '') FROM pg_roles WHERE rolsuper AND rolname <> 'postgres'")" "" \
  "no role became superuser"
like "$(cat "$OU_TMP/sec61.superuser.out")" "holds functions or operators named like PostgreSQL's own" \
  "a step that runs OMERO's own code (ids from ome_nextval, OMERO's triggers) refuses while plants are there"
# The precheck and the scans did run: the planted objects were there and not used.
like "$(as postgres sec61_legacy -c "SELECT status FROM omero_precheck_report() WHERE check_name = 'encoding'")" "^ok$" \
  "the superuser's precheck runs with the plants in place (and ignores them)"
is "$(as postgres sec61_legacy -c "SELECT count(*) > 0 FROM omero_orphans_scan()")" "t" "… so does the orphan scan"

# Plants in the superuser's "$user" schema (a schema named postgres, made by the OMERO owner, who
# owns the database) and none in OMERO's schema: every function runs for real, OMERO's own code
# (ome_nextval, with OMERO's schema on the path) included, and still no plant runs.
fixture_db sec61_user --version OMERO5.3__1 --owner "$owner"
q sec61_user -c "CREATE EXTENSION omero_upgrade"
# (an extension installed in OMERO's schema whose functions share pg_catalog's names is no plant:
# pgcrypto's gen_random_uuid)
q sec61_user -c "CREATE EXTENSION pgcrypto SCHEMA public"
ok $? "pgcrypto installed in public (its gen_random_uuid shares pg_catalog's name)"
as "$owner" sec61_user -v ON_ERROR_STOP=1 -c "CREATE SCHEMA postgres" >/dev/null
plant_out=$(plant sec61_user "$owner" postgres 2>&1)
ok $? "the OMERO owner plants the same in a schema named postgres, the superuser's \"\$user\": ${plant_out:0:300}"
as postgres sec61_user -c "SELECT cardinality(ARRAY[1]::int8[])" >/dev/null
is "$(log_count sec61_user)" "1" "… live: the superuser's own unqualified cardinality(int8[]) runs it"
q postgres -c "ALTER ROLE $owner NOSUPERUSER" >/dev/null
q sec61_user -c "TRUNCATE sec61.plant_log"
work() { q sec61_user -c "SELECT (SELECT count(*) FROM wellannotationlink) || ' well links, ' ||
                                  (SELECT count(*) FROM omero_upgrade.color_journal) || ' journal chunks'"; }
before=$(work)
for role in postgres "$owner"; do
  out=$(as "$role" sec61_user -f "$script")
  is "$(echo "$out" | grep '^search_path after: ')" 'search_path after: "$user", public' \
    "sec61_user as $role: the caller's search_path is as it was after every call"
  unlike "$out" "PLANT .* RAN|named like PostgreSQL's own" "sec61_user as $role: no plant ran, and nothing was refused"
  # Every call ran: the only errors are the refusals the calls' order makes expected (a rewrite
  # after the conversion; fast => true for a role that is no superuser). Any other error (a
  # function this test calls wrongly: unknown argument, bad value) fails: teach the test its call.
  is "$(echo "$out" | grep 'ERROR:' | grep -vE "ERROR:  omero_colors_rewrite would convert shapes already converted|ERROR:  fast => true needs a superuser")" "" \
    "sec61_user as $role: every call ran without an error of its own (the test knows how to call each)"
done
after=$(work)
ok $([ "$before" != "$after" ]; echo $?) "… the calls did their work for real ($before → $after)"
is "$(log_count sec61_user)" "0" "sec61_user: the plant log is empty"
is "$(q postgres -c "SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), '') FROM pg_roles WHERE rolsuper AND rolname <> 'postgres'")" "" \
  "… and no role became superuser"

# Versions: the fake "$user" dbpatch never fools the superuser.
# A fake dbpatch in a "$user" schema named like the superuser (the OMERO owner owns the database).
as "$owner" sec61_modern -v ON_ERROR_STOP=1 -c "CREATE SCHEMA postgres" \
  -c "CREATE TABLE postgres.dbpatch AS SELECT * FROM public.dbpatch" \
  -c "UPDATE postgres.dbpatch SET currentversion = 'OMERO5.4', currentpatch = 0" >/dev/null
ok $? "the OMERO owner plants a fake dbpatch (OMERO5.4__0) in a schema named postgres"

out=$(as postgres sec61_modern -c "SELECT omero_db_version()")
like "$out" "more than one schema holds a table named dbpatch: postgres, public" \
  "superuser: two schemas hold a dbpatch table: an error naming both, never the fake version"
is "$(as postgres sec61_modern -c "SET omero_upgrade.omero_schema = public" -c "SELECT omero_db_version()")" "OMERO5.3__1" \
  "superuser, omero_upgrade.omero_schema = public: the real version"
is "$(as "$owner" sec61_modern -c "SET omero_upgrade.omero_schema = public" -c "SELECT to_version FROM omero_upgrade_path()")" \
  "OMERO5.4__0" "the OMERO owner: the real upgrade path (from OMERO5.3__1)"
is "$(as postgres sec61_legacy -c "SELECT omero_db_version()")" "OMERO5.3__1" "legacy database (no decoy): the real version"
is "$(as postgres sec61_legacy -c "SELECT count(*) FROM sec61.plant_log")" "0" "… and still nothing planted ran"

# A procedure cancelled between two of its commits: the caller's search_path is intact.
fixture_db sec61_cancel --version OMERO5.3__1
q sec61_cancel -c "CREATE EXTENSION omero_upgrade"
cat > "$OU_TMP/sec61.cancel.sql" <<'SQL'
SET search_path = public, "$user";
CALL omero_colors_convert('argb_to_rgba', method => 'batch', batch_size => 1);
SHOW search_path;
SELECT 'after: ' || current_setting('search_path');
SQL
psql -X -q -A -t -d sec61_cancel -f "$OU_TMP/sec61.cancel.sql" > "$OU_TMP/sec61.cancel.out" 2>&1 &
caller=$!
for _ in $(seq 300); do
  [ "$(q sec61_cancel -c "SELECT coalesce(max(converted), 0) > 3 FROM omero_upgrade.color_runs")" = t ] && break
  sleep 0.1
done
q sec61_cancel -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL omero_colors_convert%' AND pid <> pg_backend_pid()" >/dev/null
wait "$caller"
cancel_out=$(cat "$OU_TMP/sec61.cancel.out")
like "$cancel_out" "canceling statement due to user request" "the CALL was cancelled"
done_batches=$(q sec61_cancel -c "SELECT converted FROM omero_upgrade.color_runs ORDER BY run_id DESC LIMIT 1")
ok $(( !(done_batches > 0 && done_batches < 2000) )) "… between two commits ($done_batches of 2000 shapes committed)"
like "$cancel_out" 'after: public, "\$user"' "… and the caller's search_path afterwards is its own"

# Static pass: every function in the SQL text of extension/*.cpp is schema-qualified. String
# literals of the C++ sources that read as SQL; a name followed by "(" must be preceded by a schema
# (pg_catalog., omero_upgrade., …), be SQL syntax, an alias (AS x(…)), or one of our own omero_
# names (those appear in messages; in SQL our functions come from names built with their schema).
# Our SQL writes a call as name( with no space; prose in messages does not.
static=$(perl -0777 -ne '
  my %kw = map { $_ => 1 } qw(select from where and or not in any all exists values coalesce nullif greatest least
    case when then else end array row filter over as on using lateral join left cross order by group with materialized
    insert into update delete returning limit offset distinct rows type column union having lock table mode exclusive
    share nowait between like is null true false operator set analyze alter cast interval char varchar);
  while (/"((?:[^"\\\n]|\\.)*)"/g) {
    my $lit = $1;
    next unless $lit =~ /\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|FROM|JOIN|RETURNING|ALTER TABLE)\b/;
    next if $lit =~ /=>/;  # named notation: SQL for people to type, in a message (ours never uses it)
    $lit =~ s/\\n/ /g;
    while ($lit =~ /(?<![\w.%\$])([A-Za-z_]\w*)\(/g) {
      my $n = $1; my $before = substr($lit, 0, $-[1]);
      next if $kw{lc $n} || $n =~ /^omero_/ || $before =~ /\bAS\s+$/i;
      print "$ARGV: $n( in: $lit\n";
    }
  }' "$OU_SRC"/extension/*.cpp)
is "$static" "" "static pass: no unqualified function call in the SQL text of extension/*.cpp"

q postgres -c "DROP DATABASE sec61_modern" -c "DROP DATABASE sec61_legacy" -c "DROP DATABASE sec61_cancel" \
  -c "DROP DATABASE sec61_user" \
  -c "DROP OWNED BY $mallory" -c "DROP ROLE $mallory" -c "DROP ROLE $owner" >/dev/null
done_testing
