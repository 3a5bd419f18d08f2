#!/usr/bin/env bash
# Security (issue 13): restore and db to-utf8 load a dump as the new database's owner (test 98);
# here, what that must not turn into. Before anything is created, the dump's own SQL is read:
# - objects of other roles (a DBA's SECURITY DEFINER function, a reporting role's schema) would
#   change hands and run their code as the owner: refused, unless --reassign-owners;
# - an owner that is a superuser (--owner, or omero.db.user in config.xml) would run the OMERO
#   owner's code as a superuser: refused;
# - db to-utf8 --switch takes an existing database as its copy only when it can be its own;
# - an extension only a superuser may create is created first by the connecting superuser, from
#   the server's files; one the server lacks, or a superuser's event trigger, is refused;
# - before PostgreSQL 15, the dump's REVOKE on schema public must not be lost;
# - the connecting role's PGPASSWORD is never offered to the owner's login.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -d postgres -c "CREATE ROLE o9_omero LOGIN" -c "CREATE ROLE o9_evil LOGIN CREATEDB" \
  -c "CREATE ROLE o9_dba LOGIN SUPERUSER" -c "CREATE ROLE o9_report LOGIN" \
  -c "CREATE ROLE o9_maker LOGIN CREATEDB IN ROLE o9_omero"
su_of() { q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$1'"; }
dbs() { q postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'"; }
vnum=$(q postgres -c "SHOW server_version_num")

# The OMERO owner's plant: a CHECK whose function, run by a superuser, makes o9_omero one.
plant() {
  psql -X -q -v ON_ERROR_STOP=1 -U o9_omero -d "$1" <<'SQL'
CREATE TABLE public.o9_log (via text, who text, su bool);
CREATE FUNCTION public.o9_evil(v int) RETURNS bool LANGUAGE plpgsql AS $f$
DECLARE s bool;
BEGIN
  SELECT rolsuper INTO s FROM pg_catalog.pg_roles WHERE rolname = current_user;
  IF s THEN EXECUTE 'ALTER ROLE o9_omero SUPERUSER'; END IF;
  INSERT INTO public.o9_log VALUES ('check', current_user, s);
  RETURN true;
END $f$;
CREATE TABLE public.o9_checked (id int CHECK (public.o9_evil(id)));
INSERT INTO public.o9_checked VALUES (1), (2);
TRUNCATE public.o9_log;
SQL
}
fixture_db o9_src --owner o9_omero
plant o9_src
srv=$t/srv
make_sample_server "$srv"
conf() { sample_config "$srv" omero.db.name="$1" omero.db.user="${2:-o9_omero}" omero.db.host=$PGHOST omero.db.port=$PGPORT; }
conf o9_src
tool() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
tool -q backup --backup-dir "$t/bk" >/dev/null 2>&1
f=$(ls "$t"/bk/*.pgdump)
ok $? "a backup of the owner's database with its plant"

# 1. --owner a superuser: the OMERO owner's code would run as o9_dba.
out=$(tool restore "$f" --into o9_a_copy --owner o9_dba 2>&1); rc=$?
is "$rc" 1 "restore --owner o9_dba (a superuser) of o9_omero's dump: refused"
like "$out" "objects of other roles than o9_dba: o9_omero .*a superuser's rights" "… saying whose objects and why"
is "$(dbs o9_a_copy)" 0 "… nothing was created"
is "$(su_of o9_omero)" f "… o9_omero did not become a superuser"

# 2. config.xml names a superuser as omero.db.user (the OMERO system account can edit it).
conf o9_src o9_dba
out=$(tool restore "$f" --into o9_b_copy 2>&1); rc=$?
is "$rc" 1 "omero.db.user a superuser: refused"
is "$(dbs o9_b_copy)" 0 "… nothing was created"
is "$(su_of o9_omero)" f "… o9_omero did not become a superuser"
conf o9_src

# 3. Objects of other roles in the OMERO database: a DBA's SECURITY DEFINER function (a superuser
#    cron job calls it) and a reporting role's schema whose CHECK reads what it can.
fixture_db o9_ro_src --owner o9_omero
psql -X -q -v ON_ERROR_STOP=1 -d o9_ro_src <<'SQL'
CREATE FUNCTION public.dba_job() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT current_user::text $$;
CREATE SCHEMA reporting AUTHORIZATION o9_report;
SQL
psql -X -q -v ON_ERROR_STOP=1 -U o9_report -d o9_ro_src <<'SQL'
CREATE TABLE reporting.log (who text);
CREATE FUNCTION reporting.chk(v int) RETURNS bool LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO reporting.log VALUES (current_user); RETURN true; END $f$;
CREATE TABLE reporting.data (v int CHECK (reporting.chk(v)));
INSERT INTO reporting.data VALUES (1);
DELETE FROM reporting.log;
SQL
conf o9_ro_src
tool -q backup --backup-dir "$t/bk3" >/dev/null 2>&1
f3=$(ls "$t"/bk3/*.pgdump)
out=$(tool restore "$f3" --into o9_ro_copy 2>&1); rc=$?
is "$rc" 1 "a dump with objects of postgres and o9_report besides o9_omero's: refused"
like "$out" "postgres \(FUNCTION public.dba_job\(\)\)" "… naming the DBA's function"
like "$out" "o9_report \(.*SCHEMA reporting" "… and the reporting role's schema"
like "$out" "--reassign-owners" "… and the way to take them over"
is "$(dbs o9_ro_copy)" 0 "… nothing was created"
out=$(tool --json restore "$f3" --into o9_ro_copy --reassign-owners 2>/dev/null); rc=$?
is "$rc" 0 "--reassign-owners: restored"
is "$(q o9_ro_copy -c "SELECT string_agg(DISTINCT pg_get_userbyid(o), ',') FROM (SELECT proowner FROM pg_proc WHERE proname = 'dba_job' UNION ALL SELECT nspowner FROM pg_namespace WHERE nspname = 'reporting') x(o)")" \
  o9_omero "… the taken-over objects are o9_omero's"
is "$(q o9_ro_copy -c "SELECT string_agg(who, ',') FROM reporting.log")" o9_omero "… the reporting CHECK ran as o9_omero, not as postgres"
is "$(echo "$out" | jq -c .result.owners_taken_over)" '["o9_report","postgres"]' "… the JSON says whose objects were taken over"
psql -X -q -d postgres -c "DROP DATABASE o9_ro_copy"

# 4. One other role owning everything is taken over by a non-superuser owner, and said so: when
#    that role is not on this server (test 31) or is a superuser here; o9_omero is neither, and
#    its code would run as o9_report: only with --reassign-owners (test 100).
out=$(tool restore "$f" --into o9_one_copy --owner o9_report --reassign-owners 2>&1); rc=$?
is "$rc" 0 "o9_omero's dump restored --owner o9_report --reassign-owners"
like "$out" "the objects of o9_omero .* become o9_report's" "… said so"
is "$(q o9_one_copy -c "SELECT string_agg(DISTINCT who || ' ' || su, ',') FROM public.o9_log")" "o9_report false" "… the plant ran as o9_report only"
psql -X -q -d postgres -c "DROP DATABASE o9_one_copy"

# 5. db to-utf8 --switch does not adopt a database someone else made.
fixture_db o9_latin1 --owner o9_omero --encoding LATIN1
conf o9_latin1
PGUSER=o9_evil "$OU_SRC/test/fixture/omero-fixture" o9_evil_utf8 >/dev/null 2>&1
is "$(q postgres -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'o9_evil_utf8'")" o9_evil \
  "o9_evil made an OMERO-looking UTF8 database with the same rows"
out=$(tool db to-utf8 --into o9_evil_utf8 --switch --backup-dir "$t/bk5" 2>&1); rc=$?
is "$rc" 1 "db to-utf8 --switch into o9_evil's database: refused"
like "$out" "belongs to o9_evil, not to o9_omero" "… saying whose it is"
is "$(config_value "$srv" omero.db.name)" o9_latin1 "… config.xml not switched"
fixture_db o9_owned_utf8 --owner o9_omero
q o9_owned_utf8 -c "CREATE FUNCTION public.evil_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'" -c "ALTER FUNCTION public.evil_fn() OWNER TO o9_evil"
out=$(tool db to-utf8 --into o9_owned_utf8 --switch --backup-dir "$t/bk5" 2>&1); rc=$?
is "$rc" 1 "… nor into o9_omero's database holding a function of o9_evil"
like "$out" "1 functions of o9_evil" "… naming it"
is "$(config_value "$srv" omero.db.name)" o9_latin1 "… config.xml not switched"
out=$(tool db to-utf8 --into o9_u8 --backup-dir "$t/bk5" 2>&1) && out=$(tool db to-utf8 --into o9_u8 --switch --backup-dir "$t/bk5" 2>&1)
is "$?" 0 "the tool's own copy is still taken on the second run with --switch"
like "$out" "comparing it with 'o9_latin1' again" "… without a second copy"
# Another session on the copy: it is not taken (after the few seconds a closing backend gets),
# while the tool's own closed connections and autovacuum never count (the run just above).
psql -X -q -d o9_u8 -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
for i in $(seq 50); do
  [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'o9_u8' AND query LIKE '%pg_sleep(60)%'")" = 1 ] && break
  sleep 0.1
done
conf o9_latin1
out=$(tool db to-utf8 --into o9_u8 --switch --backup-dir "$t/bk5" 2>&1); rc=$?
is "$rc" 1 "another session connected to the copy: --switch refuses to take it"
like "$out" "'o9_u8' is used by 1 other session" "… saying so"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'o9_u8' AND pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null
out=$(tool db to-utf8 --into o9_u8 --switch --backup-dir "$t/bk5" 2>&1); rc=$?
is "$rc" 0 "… taken once that session has gone (its backend may still be exiting)"
conf o9_src

# 6. Extensions. One only a superuser may create (superuser = true in its control file) is made
#    first by the connecting superuser; without one, or when the server lacks it, refused.
share=$(q postgres -c "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")/extension
printf "default_version = '1.0'\nsuperuser = true\nrelocatable = true\n" > "$share/ou_su_only.control"
echo "CREATE FUNCTION ou_su_only_ping() RETURNS int LANGUAGE sql AS 'SELECT 7';" > "$share/ou_su_only--1.0.sql"
printf "default_version = '1.0'\nsuperuser = true\nrelocatable = true\n" > "$share/ou_gone.control"
echo "CREATE FUNCTION ou_gone_ping() RETURNS int LANGUAGE sql AS 'SELECT 8';" > "$share/ou_gone--1.0.sql"
chmod a+r "$share"/ou_su_only* "$share"/ou_gone*
fixture_db o9_rx_src --owner o9_omero
q o9_rx_src -c "CREATE EXTENSION ou_su_only"
conf o9_rx_src
tool -q backup --backup-dir "$t/bk6" >/dev/null 2>&1
f6=$(ls "$t"/bk6/*.pgdump)
out=$(tool --json restore "$f6" --into o9_rx_copy 2>/dev/null); rc=$?
is "$rc" 0 "a dump with a superuser-only extension: restored as --db-user postgres"
is "$(q o9_rx_copy -c "SELECT ou_su_only_ping()")" 7 "… the extension is there"
is "$(echo "$out" | jq -c .result.extensions_created_first)" '["ou_su_only"]' "… created first by the tool (JSON)"
is "$(echo "$out" | jq -r .result.loaded_as)" o9_omero "… the dump still loaded as the owner"
psql -X -q -d postgres -c "DROP DATABASE o9_rx_copy"
out=$("$TOOL" --server-dir "$srv" --db-user o9_maker restore "$f6" --into o9_rx_copy2 2>&1); rc=$?
is "$rc" 1 "… as --db-user o9_maker (CREATEDB, no superuser): refused"
like "$out" "only a superuser may create.*--db-user a superuser" "… saying why and what to do"
is "$(dbs o9_rx_copy2)" 0 "… nothing was created"
fixture_db o9_rg_src --owner o9_omero
q o9_rg_src -c "CREATE EXTENSION ou_gone"
conf o9_rg_src
tool -q backup --backup-dir "$t/bk7" >/dev/null 2>&1
rm -f "$share"/ou_gone*
out=$(tool restore "$(ls "$t"/bk7/*.pgdump)" --into o9_rg_copy 2>&1); rc=$?
is "$rc" 1 "a dump with an extension this server lacks: refused"
like "$out" "extension ou_gone, which this PostgreSQL server does not have" "… saying which"
is "$(dbs o9_rg_copy)" 0 "… nothing was created"
fixture_db o9_re_src --owner o9_omero
q o9_re_src -c "CREATE FUNCTION public.et() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'" \
  -c "CREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION public.et()"
conf o9_re_src
tool -q backup --backup-dir "$t/bk8" >/dev/null 2>&1
out=$(tool restore "$(ls "$t"/bk8/*.pgdump)" --into o9_re_copy 2>&1); rc=$?
is "$rc" 1 "a dump with a superuser's event trigger: refused"
like "$out" "postgres \(FUNCTION public.et\(\), EVENT TRIGGER et\)" "… naming it"
conf o9_src

# 7. A hardened public (REVOKE CREATE … FROM PUBLIC, the advice before PostgreSQL 15) stays so.
fixture_db o9_rh_src --owner o9_omero
q o9_rh_src -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC" -c "GRANT CREATE ON SCHEMA public TO o9_omero"
conf o9_rh_src
tool -q backup --backup-dir "$t/bk9" >/dev/null 2>&1
f9=$(ls "$t"/bk9/*.pgdump)
out=$(tool restore "$f9" --into o9_rh_copy 2>&1); rc=$?
is "$rc" 0 "a dump of a hardened public: restored"
is "$(q o9_rh_copy -c "SELECT has_schema_privilege('o9_evil', 'public', 'CREATE')")" f "… o9_evil may not create in public"
is "$(q o9_rh_copy -c "SELECT has_schema_privilege('o9_omero', 'public', 'CREATE')")" t "… the owner may"
if [ "$vnum" -lt 150000 ]; then
  like "$out" "schema public of 'o9_rh_copy' given to o9_omero" "… (PostgreSQL $vnum: public given to the owner first)"
  out=$("$TOOL" --server-dir "$srv" --db-user o9_maker restore "$f9" --into o9_rh_copy2 2>&1); rc=$?
  is "$rc" 1 "… as --db-user o9_maker (no superuser) the REVOKE could not apply: refused"
  is "$(dbs o9_rh_copy2)" 0 "… nothing was created"
  # an existing empty database (its public the bootstrap superuser's): the REVOKE only warns,
  # and a warning about privileges fails the restore
  createdb -E UTF8 -T template0 -O o9_omero o9_rh_pre
  out=$(tool restore "$f9" --into o9_rh_pre 2>&1); rc=$?
  is "$rc" 2 "… into an existing database whose public is postgres's: the lost REVOKE fails the restore"
  like "$out" "could not apply all of the dump's privileges" "… saying so"
fi
conf o9_src

# 8. The connecting role's PGPASSWORD is not offered to the owner's login (over TCP, passwords).
psql -X -q -d postgres -c "ALTER ROLE postgres PASSWORD 'same-secret'" -c "CREATE ROLE o9_pw LOGIN PASSWORD 'same-secret'"
out=$(PGPASSWORD=same-secret "$TOOL" --server-dir "$srv" --db-host 127.0.0.1 --db-user postgres restore "$f" --into o9_pw_copy --owner o9_pw --reassign-owners 2>&1); rc=$?
is "$rc" 2 "PGPASSWORD (postgres's) is not offered to o9_pw's login: it cannot log in"
like "$out" "could not connect as it" "… said so"
is "$(dbs o9_pw_copy)" 0 "… and the database made for it is dropped"
printf '127.0.0.1:%s:*:o9_pw:same-secret\n' "$PGPORT" > "$t/pgpass" && chmod 600 "$t/pgpass"
out=$(PGPASSWORD=same-secret PGPASSFILE=$t/pgpass "$TOOL" --server-dir "$srv" --db-host 127.0.0.1 --db-user postgres restore "$f" --into o9_pw_copy --owner o9_pw --reassign-owners 2>&1); rc=$?
is "$rc" 0 "… with o9_pw's password in a password file, it loads as o9_pw"
psql -X -q -d postgres -c "ALTER ROLE postgres PASSWORD NULL" -c "DROP DATABASE o9_pw_copy"

is "$(su_of o9_omero)$(su_of o9_report)$(su_of o9_evil)$(su_of o9_pw)" ffff "no role became a superuser"
rm -f "$share"/ou_su_only*  # the cluster's private share directory: leave it as found
done_testing
