#!/usr/bin/env bash
# Security (issue 13): restoring a dump never runs the dump's code with more rights than its owner
# has. A dump is code: CHECK constraints and domains call functions the OMERO owner wrote, and
# COPY runs them as the role that loads the data. The owner (no superuser) plants such functions;
# a superuser then runs `restore` and `db to-utf8` as --db-user postgres. The dump must be loaded
# as the new database's owner: the functions run (their log shows it), as the owner, and nobody
# gains a right.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -d postgres -c "CREATE ROLE rs_omero LOGIN" -c "CREATE ROLE rs_other LOGIN"
su_of() { q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$1'"; }

# The owner's plants (as rs_omero, in its own database): each function logs who runs it and,
# when that is a superuser, makes rs_omero a superuser and reads a file only a superuser may.
plant() {  # $1 database
  psql -X -q -v ON_ERROR_STOP=1 -U rs_omero -d "$1" <<'SQL'
CREATE TABLE public.rs_log (via text, who text, su bool, stolen text);
CREATE FUNCTION public.rs_evil(v int, via text) RETURNS bool LANGUAGE plpgsql AS $f$
DECLARE s bool; stolen text;
BEGIN
  SELECT rolsuper INTO s FROM pg_catalog.pg_roles WHERE rolname = current_user;
  IF s THEN
    EXECUTE 'ALTER ROLE rs_omero SUPERUSER';
    stolen := pg_catalog.pg_read_file('postmaster.pid', 0, 10);
  END IF;
  INSERT INTO public.rs_log VALUES (via, current_user, s, stolen);
  RETURN true;
END $f$;
CREATE FUNCTION public.rs_chk(v int) RETURNS bool LANGUAGE sql AS $f$ SELECT public.rs_evil(v, 'check') $f$;
CREATE FUNCTION public.rs_dom(v int) RETURNS bool LANGUAGE sql AS $f$ SELECT public.rs_evil(v, 'domain') $f$;
CREATE FUNCTION public.rs_idx(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.rs_evil(v, 'index'); RETURN v; END $f$;
CREATE DOMAIN public.rs_d AS int CHECK (public.rs_dom(VALUE));
CREATE TABLE public.rs_checked (id int CHECK (public.rs_chk(id)));
CREATE TABLE public.rs_domained (id public.rs_d);
CREATE TABLE public.rs_indexed (id int);
CREATE INDEX ON public.rs_indexed (public.rs_idx(id));
INSERT INTO public.rs_checked VALUES (1), (2);
INSERT INTO public.rs_domained VALUES (1), (2);
INSERT INTO public.rs_indexed VALUES (1), (2);
TRUNCATE public.rs_log;
SQL
}
# What the restored database's log holds: "via who su" lines, in order.
log_of() { q "$1" -c "SELECT string_agg(via || ' ' || who || ' ' || coalesce(su::text, '?') || ' ' || coalesce(stolen, '-'), ', ' ORDER BY via, who) FROM public.rs_log"; }

fixture_db rs_src --owner rs_omero
plant rs_src
# the extension (installed by the owner, a trusted extension) and a row of its state
psql -X -q -v ON_ERROR_STOP=1 -U rs_omero -d rs_src -c "CREATE EXTENSION omero_upgrade" \
  -c "SELECT omero_site_sql_record('010_x.sql', repeat('a', 64), 'alice', 'h', 'OMERO5.3__1')" >/dev/null
ok $? "the owner planted functions behind a CHECK, a domain and an index expression"
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=rs_src omero.db.user=rs_omero
tool() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
tool -q backup --backup-dir "$t/bk" >/dev/null 2>&1
f=$(ls "$t"/bk/*.pgdump)
ok $? "a superuser's backup of the owner's database"

# 1. restore as --db-user postgres: the dump is loaded as rs_omero
out=$(tool restore "$f" --into rs_copy 2>&1); rc=$?
is "$rc" 0 "restore as --db-user postgres: exit 0"
[ "$rc" = 0 ] || diag "$out"
like "$out" "restoring .* into 'rs_copy' as rs_omero" "… the step says it loads the dump as the owner"
is "$(su_of rs_omero)" f "… the owner did not become a superuser"
log=$(log_of rs_copy)
like "$log" "check rs_omero false -" "… the CHECK's function ran during the load, as the owner"
like "$log" "domain rs_omero false -" "… the domain's too"
unlike "$log" " true " "… never as a superuser"
unlike "$log" "postgres" "… never as postgres"
is "$(q postgres -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'rs_copy'")" rs_omero "… the new database is the owner's"
is "$(q rs_copy -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind = 'r' AND pg_get_userbyid(c.relowner) <> 'rs_omero'")" 0 \
  "… and so are all its tables"
is "$(q rs_copy -c "SELECT count(*) FROM rs_checked") $(q rs_copy -c "SELECT count(*) FROM rs_domained") $(q rs_copy -c "SELECT count(*) FROM rs_indexed")" \
  "2 2 2" "… with every row"

is "$(q rs_copy -c "SELECT file_name FROM omero_site_sql_records()")" 010_x.sql "… the extension's state came along (loaded by the owner)"

# 2. --owner another role: loaded as that role (rs_omero's objects become rs_other's: a role of
#    this server, so only with --reassign-owners; test 100)
out=$(tool restore "$f" --into rs_copy2 --owner rs_other --reassign-owners 2>&1); rc=$?
is "$rc" 0 "restore --owner rs_other --reassign-owners: exit 0"
like "$out" "into 'rs_copy2' as rs_other" "… loaded as rs_other"
is "$(su_of rs_omero) $(su_of rs_other)" "f f" "… nobody became a superuser"
unlike "$(log_of rs_copy2)" " true |postgres" "… the planted functions ran as rs_other only"

# 3. the owner cannot log in: refused with a clear message, the database created for it dropped
psql -X -q -d postgres -c "CREATE ROLE rs_nologin NOLOGIN"
out=$(tool restore "$f" --into rs_copy3 --owner rs_nologin --reassign-owners 2>&1); rc=$?
is "$rc" 2 "an owner that cannot log in: exit 2"
like "$out" "loads the dump as the database's owner 'rs_nologin' .*could not connect as it" "… saying why"
like "$out" "dropped the database 'rs_copy3' created by this run" "… and the database it created is dropped"
is "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'rs_copy3'")" 0 "… gone"
unlike "$out" "postgres.*superuser" "… no fallback to the superuser"

# 4. db to-utf8 as --db-user postgres on a LATIN1 database the owner planted
fixture_db rs_latin1 --owner rs_omero --encoding LATIN1
plant rs_latin1
sample_config "$srv" omero.db.name=rs_latin1 omero.db.user=rs_omero
out=$(tool db to-utf8 --into rs_utf8 --backup-dir "$t/bk2" 2>&1); rc=$?
# The plants' log rows are writes the dump did not hold: to-utf8's row counts see them.
is "$rc" 1 "db to-utf8 as --db-user postgres: exit 1 (the new database differs: the plants wrote to their log)"
like "$out" "restoring .* into 'rs_utf8' as rs_omero" "… the dump was loaded as the owner"
like "$out" "public.rs_log: 0 rows in 'rs_latin1', [0-9]+ in 'rs_utf8'" "… the difference named"
is "$(su_of rs_omero)" f "… the owner did not become a superuser"
log=$(log_of rs_utf8)
like "$log" "check rs_omero false -" "… the planted CHECK ran during the load, as the owner"
unlike "$log" " true |postgres" "… never as a superuser"

# the attack is real: the same load by the superuser does run the plants as postgres
createdb -T template0 rs_control
pg_restore -d rs_control "$f" >/dev/null 2>&1
like "$(log_of rs_control)" "check postgres true" "control: pg_restore as postgres runs the planted CHECK as a superuser"
is "$(su_of rs_omero)" t "control: … and the owner becomes one (what the tool's restore prevents)"
psql -X -q -d postgres -c "ALTER ROLE rs_omero NOSUPERUSER"

done_testing
