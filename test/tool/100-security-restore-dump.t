#!/usr/bin/env bash
# Security (issue 13): what a hostile dump, a hostile owner or a privileged loader could still do
# to a restore after tests 98 and 99, each attack performed:
# 1. a name with a line break hides an object of another role from the dump's SQL as it was read
#    line by line (`ALTER TABLE public."a<LF>b" OWNER TO x;` spans two lines): refused;
# 2. a function body holding the line "CREATE EXTENSION …;" made the tool create that extension
#    as the superuser: a body is not a statement;
# 3. an entry of the table of contents whose owner the SQL never names (a large object of
#    another role): refused, and run's check before the backup names it too;
# 4. a loader that can act as a superuser without being one (a member of a superuser role or of
#    pg_execute_server_program; CREATEROLE before PostgreSQL 16): refused like a superuser;
# 5. a dump all of one other role's objects, that role on this server and no superuser: its code
#    would run as the loader: only with --reassign-owners;
# 6. while the superuser sets up the new database (extensions only it may create), the database
#    is not yet the owner's, so the owner cannot lift its CONNECTION LIMIT and plant first;
# 7. db to-utf8 --switch does not take a database with settings or grants a copy never has;
# 8. a service file's password (the connecting role's) is not offered to the owner's login.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
psql -X -q -d postgres -c "CREATE ROLE o0_omero LOGIN CREATEDB" -c "CREATE ROLE o0_report LOGIN" \
  -c "CREATE ROLE o0_dba NOLOGIN SUPERUSER" -c "CREATE ROLE o0_member LOGIN IN ROLE o0_dba" \
  -c "CREATE ROLE o0_prog LOGIN IN ROLE pg_execute_server_program" -c "CREATE ROLE o0_cr LOGIN CREATEROLE" \
  -c "CREATE ROLE o0_new LOGIN" -c "CREATE ROLE o0_crm LOGIN IN ROLE o0_cr"
su_of() { q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$1'"; }
dbs() { q postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'"; }
vnum=$(q postgres -c "SHOW server_version_num")

# The OMERO owner's plant: a CHECK whose function, run by a superuser, makes o0_omero one.
plant() {
  psql -X -q -v ON_ERROR_STOP=1 -U o0_omero -d "$1" <<'SQL'
CREATE TABLE public.o0_log (who text, su bool);
CREATE FUNCTION public.o0_evil(v int) RETURNS bool LANGUAGE plpgsql AS $f$
DECLARE s bool;
BEGIN
  SELECT rolsuper INTO s FROM pg_catalog.pg_roles WHERE rolname = current_user;
  IF s THEN EXECUTE 'ALTER ROLE o0_omero SUPERUSER'; END IF;
  INSERT INTO public.o0_log VALUES (current_user, s);
  RETURN true;
END $f$;
CREATE TABLE public.o0_checked (id int CHECK (public.o0_evil(id)));
INSERT INTO public.o0_checked VALUES (1);
TRUNCATE public.o0_log;
SQL
}
srv=$t/srv
make_sample_server "$srv"
conf() { sample_config "$srv" omero.db.name="$1" omero.db.user="${2:-o0_omero}" omero.db.host=$PGHOST omero.db.port=$PGPORT; }
tool() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
backup_of() {  # $1 database, $2 backup dir: prints the dump's path
  conf "$1"
  tool -q backup --backup-dir "$2" >/dev/null 2>&1 || echo "backup of $1 failed" >&2
  ls "$2"/*.pgdump
}

# 1. Line breaks in names. o0_report's table, named so that its OWNER TO line is cut in two and
#    the line read alone says o0_omero owns something: loaded as o0_omero, o0_report's CHECK
#    (it logs who runs it) would become o0_omero's without a word.
fixture_db o0_nl_src --owner o0_omero
q o0_nl_src -c "GRANT CREATE ON SCHEMA public TO o0_report"
psql -X -q -v ON_ERROR_STOP=1 -U o0_report -d o0_nl_src <<'SQL'
CREATE TABLE public."o0 OWNER TO o0_omero;
ALTER TABLE o0_t" (v int);
SQL
f1=$(backup_of o0_nl_src "$t/bk1")
grep -q . <<<"$f1"; ok $? "a backup holding o0_report's table with a line break in its name"
out=$(tool restore "$f1" --into o0_nl_copy 2>&1); rc=$?
is "$rc" 1 "restore of it: refused (exit 1)"
like "$out" "names with a line break \(\"o0 OWNER TO o0_omero;\\\\nALTER TABLE o0_t\"\)" "… naming the name, its line break shown as \\n"
is "$(dbs o0_nl_copy)" 0 "… nothing was created"
out=$(tool restore "$f1" --into o0_nl_copy --reassign-owners 2>&1); rc=$?
is "$rc" 1 "… --reassign-owners does not take it either"
#    A role whose name holds a line break, owning a function.
psql -X -q -d postgres -c 'CREATE ROLE "o0
nl" LOGIN'
fixture_db o0_nr_src --owner o0_omero
q o0_nr_src -c "CREATE FUNCTION public.o0_f() RETURNS int LANGUAGE sql AS 'SELECT 1'" -c 'ALTER FUNCTION public.o0_f() OWNER TO "o0
nl"'
f1b=$(backup_of o0_nr_src "$t/bk1b")
out=$(tool restore "$f1b" --into o0_nr_copy 2>&1); rc=$?
is "$rc" 1 "a function of a role named with a line break: refused"
like "$out" 'names with a line break \("o0\\nnl"\)' "… naming the role"
is "$(dbs o0_nr_copy)" 0 "… nothing was created"

# 2. A forged CREATE EXTENSION: an extension only a superuser may create, that the source does not
#    have, named on a line of its own inside o0_omero's function body.
share=$(q postgres -c "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")/extension
printf "default_version = '1.0'\nsuperuser = true\nrelocatable = true\n" > "$share/ou0_su.control"
echo "CREATE FUNCTION ou0_su_ping() RETURNS int LANGUAGE sql AS 'SELECT 5';" > "$share/ou0_su--1.0.sql"
chmod a+r "$share"/ou0_su*
fixture_db o0_fx_src --owner o0_omero
psql -X -q -v ON_ERROR_STOP=1 -U o0_omero -d o0_fx_src <<'SQL'
CREATE FUNCTION public.o0_forged() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
  IF false THEN
CREATE EXTENSION ou0_su;
  END IF;
  RETURN 1;
END $f$;
SQL
f2=$(backup_of o0_fx_src "$t/bk2")
pg_restore --schema-only -f - "$f2" | grep -qx "CREATE EXTENSION ou0_su;"
ok $? "the dump's SQL holds the line 'CREATE EXTENSION ou0_su;' (in the body)"
out=$(tool --json restore "$f2" --into o0_fx_copy 2>/dev/null); rc=$?
is "$rc" 0 "restore of it: done"
is "$(echo "$out" | jq -c .result.extensions_created_first)" '[]' "… no extension created first (JSON)"
is "$(q o0_fx_copy -c "SELECT count(*) FROM pg_extension WHERE extname = 'ou0_su'")" 0 "… ou0_su is not in the copy"
is "$(q o0_fx_copy -c "SELECT public.o0_forged()")" 1 "… the function came along"

# 3. A large object of o0_report: the dump's SQL (--schema-only) has no OWNER TO for it, only the
#    table of contents names its owner.
fixture_db o0_lo_src --owner o0_omero
psql -X -q -U o0_report -d o0_lo_src -c "SELECT lo_from_bytea(777, 'report')" >/dev/null
f3=$(backup_of o0_lo_src "$t/bk3")
out=$(tool restore "$f3" --into o0_lo_copy 2>&1); rc=$?
is "$rc" 1 "a large object of o0_report: refused"
like "$out" "entries whose owner its SQL gives nothing to: BLOB (METADATA )?- 777 o0_report" "… naming the entry"
is "$(dbs o0_lo_copy)" 0 "… nothing was created"
#    Its owner's name ending in the loader's after a space: the line reads as the loader's too.
psql -X -q -d postgres -c 'CREATE ROLE "o0_x o0_omero" LOGIN'
fixture_db o0_ls_src --owner o0_omero
psql -X -q -U "o0_x o0_omero" -d o0_ls_src -c "SELECT lo_from_bytea(779, 'spaced')" >/dev/null
f3b=$(backup_of o0_ls_src "$t/bk3b")
out=$(tool restore "$f3b" --into o0_ls_copy 2>&1); rc=$?
is "$rc" 1 "a large object of \"o0_x o0_omero\" (the line ends as o0_omero's would): refused"
like "$out" "entries whose owner its SQL gives nothing to: BLOB (METADATA )?- 779 o0_x o0_omero" "… naming the entry"
is "$(dbs o0_ls_copy)" 0 "… nothing was created"
#    A database prepared with a large object of a low OID (its maker chooses it) is not empty.
createdb -E UTF8 -T template0 -O o0_omero o0_lo_pre
psql -X -q -U o0_omero -d o0_lo_pre -c "SELECT lo_from_bytea(5, 'planted')" >/dev/null
out=$(tool restore "$f3" --into o0_lo_pre 2>&1); rc=$?
is "$rc" 2 "restore into an existing database holding large object 5: refused (exit 2)"
like "$out" "already exists and is not empty \(it holds 1 large objects\)" "… naming it"
#    run checks it before its downtime: the backup it makes would be refused at a rollback.
scenario "$t/run" o0_run_db
psql -X -q -U o0_report -d o0_run_db -c "SELECT lo_from_bytea(778, 'report')" >/dev/null
out=$("$TOOL" --server-dir "$t/run/OMERO.server" run --new-server "$t/run/OMERO.server-5.6.3.zip" --dry-run 2>&1); rc=$?
is "$rc" 1 "run --dry-run on that database: refused"
like "$out" "step backup: the database holds objects that omero \(omero.db.user\) does not own \(1 large objects of o0_report\)" \
  "… the backup step names the large object"
# A subscription (made by the superuser, never connected) is an object of postgres's too; its
# catalog's oid column is not everyone's to read before PostgreSQL 14: the check still sees it.
q o0_run_db -c "CREATE SUBSCRIPTION o0_sub CONNECTION 'dbname=nowhere' PUBLICATION o0_pub WITH (connect = false)" 2>/dev/null
out=$("$TOOL" --server-dir "$t/run/OMERO.server" run --new-server "$t/run/OMERO.server-5.6.3.zip" --dry-run 2>&1); rc=$?
is "$rc" 1 "… and with a subscription of postgres there too: refused"
like "$out" "\(1 large objects of o0_report, 1 subscriptions of postgres\)" "… naming both"
q o0_run_db -c "ALTER SUBSCRIPTION o0_sub SET (slot_name = NONE)" -c "DROP SUBSCRIPTION o0_sub"
"$TOOL" --server-dir "$t/run/OMERO.server" server stop >/dev/null 2>&1  # its session must not outlive this test

# 4. Loaders that can act as a superuser: the OMERO owner's plant would run with their rights.
fixture_db o0_src --owner o0_omero
plant o0_src
f4=$(backup_of o0_src "$t/bk4")
for who in o0_member:"member of o0_dba" o0_prog:"member of pg_execute_server_program"; do
  role=${who%%:*} why=${who#*:}
  out=$(tool restore "$f4" --into o0_"$role"_copy --owner "$role" 2>&1); rc=$?
  is "$rc" 1 "restore --owner $role ($why): refused"
  like "$out" "$role is a $why" "… saying why"
  is "$(dbs o0_"$role"_copy)" 0 "… nothing was created"
done
conf o0_src o0_member
out=$(tool restore "$f4" --into o0_cfg_copy 2>&1); rc=$?
is "$rc" 1 "omero.db.user o0_member (a superuser's member) in config.xml: refused"
conf o0_src
if [ "$vnum" -lt 160000 ]; then
  out=$(tool restore "$f4" --into o0_cr_copy --owner o0_cr 2>&1); rc=$?
  is "$rc" 1 "restore --owner o0_cr (CREATEROLE, PostgreSQL $vnum): refused"
  like "$out" "o0_cr has CREATEROLE" "… saying why"
  out=$(tool restore "$f4" --into o0_crm_copy --owner o0_crm 2>&1); rc=$?
  is "$rc" 1 "restore --owner o0_crm (a member of o0_cr, which has CREATEROLE): refused"
  like "$out" "o0_crm is a member of o0_cr, which has CREATEROLE" "… saying why"
fi
is "$(su_of o0_omero)" f "… o0_omero did not become a superuser"

# 5. All objects o0_omero's, loaded as o0_new: o0_omero's code would run as o0_new.
out=$(tool restore "$f4" --into o0_one_copy --owner o0_new 2>&1); rc=$?
is "$rc" 1 "o0_omero's dump --owner o0_new, o0_omero a role here: refused"
like "$out" "objects of other roles than its owner o0_new: o0_omero .*--reassign-owners" "… pointing to --reassign-owners"
is "$(dbs o0_one_copy)" 0 "… nothing was created"
out=$(tool restore "$f4" --into o0_one_copy --owner o0_new --reassign-owners 2>&1); rc=$?
is "$rc" 0 "… with --reassign-owners: restored"
is "$(q postgres -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'o0_one_copy'")" o0_new "… owned by o0_new"

# 6. The set-up window. ou0_probe (only a superuser may create it) records, while the tool's
#    superuser creates it in the new database, whose database it is, its connection limit, and
#    whether the OMERO owner could lift that limit then (ALTER DATABASE, as o0_omero).
cat > "$share/ou0_probe.control" <<'EOF'
default_version = '1.0'
superuser = true
relocatable = true
EOF
cat > "$share/ou0_probe--1.0.sql" <<'EOF'
CREATE TABLE ou0_probe_seen (owner text, connlimit int, lifted text);
DO $p$
DECLARE r text;
BEGIN
  BEGIN
    SET LOCAL ROLE o0_omero;
    EXECUTE pg_catalog.format('ALTER DATABASE %I CONNECTION LIMIT -1', pg_catalog.current_database());
    r := 'lifted';
  EXCEPTION WHEN OTHERS THEN
    r := SQLERRM;
  END;
  RESET ROLE;
  INSERT INTO ou0_probe_seen SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, d.datconnlimit, r
    FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
END $p$;
EOF
chmod a+r "$share"/ou0_probe*
fixture_db o0_pr_src --owner o0_omero
q o0_pr_src -c "CREATE EXTENSION ou0_probe" -c "TRUNCATE ou0_probe_seen"
f6=$(backup_of o0_pr_src "$t/bk6")
out=$(tool restore "$f6" --into o0_pr_copy 2>&1); rc=$?
is "$rc" 0 "a dump with a superuser-only extension, restored as --db-user postgres"
like "$out" "owner postgres until it is set up, then o0_omero" "… saying whose the database is meanwhile"
seen=$(q o0_pr_copy -c "SELECT owner || ' ' || connlimit FROM ou0_probe_seen")
is "$seen" "postgres 0" "… while the extension was created, the database was postgres's, connection limit 0"
like "$(q o0_pr_copy -c "SELECT lifted FROM ou0_probe_seen")" "must be owner" "… and o0_omero could not lift the limit"
is "$(q postgres -c "SELECT pg_get_userbyid(datdba) || ' ' || datconnlimit FROM pg_database WHERE datname = 'o0_pr_copy'")" \
  "o0_omero -1" "… then it was given to o0_omero and opened"

# 7. db to-utf8 --switch: a database of o0_omero with OMERO's rows but a setting of its own (a
#    search_path every session of the comparison would take) is no copy of the tool's.
fixture_db o0_l1 --owner o0_omero --encoding LATIN1
fixture_db o0_u8 --owner o0_omero
q postgres -c "ALTER DATABASE o0_u8 SET search_path = o0_evil, public"
conf o0_l1
out=$(tool db to-utf8 --into o0_u8 --switch --backup-dir "$t/bk7" 2>&1); rc=$?
is "$rc" 1 "db to-utf8 --switch into a database with a setting: refused"
like "$out" "has 1 setting\(s\) .*not a copy made by the tool" "… saying why"
is "$(config_value "$srv" omero.db.name)" o0_l1 "… config.xml not switched"
q postgres -c "ALTER DATABASE o0_u8 RESET search_path" -c "GRANT CREATE ON DATABASE o0_u8 TO o0_report"
out=$(tool db to-utf8 --into o0_u8 --switch --backup-dir "$t/bk7" 2>&1); rc=$?
is "$rc" 1 "… nor one granting CREATE to another role"
like "$out" "grants CREATE to 1 other role" "… saying so"
conf o0_src

# 8. A service (PGSERVICEFILE) holding postgres's password: never offered to o0_pw's login (the
#    same password: offered, it would log in).
psql -X -q -d postgres -c "ALTER ROLE postgres PASSWORD 'svc-secret'" -c "CREATE ROLE o0_pw LOGIN PASSWORD 'svc-secret'"
printf '[o0svc]\nhost=127.0.0.1\nport=%s\nuser=postgres\npassword=svc-secret\n' "$PGPORT" > "$t/services"
chmod 600 "$t/services"
svc() { env -u PGHOST -u PGPORT PGSERVICEFILE="$t/services" "$TOOL" --server-dir "$srv" -d service=o0svc "$@"; }
out=$(svc restore "$f4" --into o0_pw_copy --owner o0_pw --reassign-owners 2>&1); rc=$?
is "$rc" 2 "the service's password (postgres's) is not offered to o0_pw's login"
like "$out" "could not connect as it" "… said so"
is "$(dbs o0_pw_copy)" 0 "… and the database made for it is dropped"
printf '127.0.0.1:%s:*:o0_pw:svc-secret\n' "$PGPORT" > "$t/pgpass" && chmod 600 "$t/pgpass"
out=$(PGPASSFILE=$t/pgpass svc restore "$f4" --into o0_pw_copy --owner o0_pw --reassign-owners 2>&1); rc=$?
is "$rc" 0 "… with o0_pw's password in a password file, it loads as o0_pw, through the service's host and port"
like "$out" "as o0_pw" "… as o0_pw"
psql -X -q -d postgres -c "ALTER ROLE postgres PASSWORD NULL"

# 9. The dump read once: held open from its first check to its load. A dump swapped at its path
#    after the checks (here by a pg_restore that swaps it just before the load) is never loaded;
#    one that others may change in place is refused; a FIFO is not read at all.
fixture_db o0_sw_src --owner o0_omero
f5=$(backup_of o0_sw_src "$t/bk5")
q o0_sw_src -c "CREATE TABLE public.o0_swapped (v int)" -c "ALTER TABLE public.o0_swapped OWNER TO o0_report"
pg_dump -Fc -f "$t/swapped.pgdump" o0_sw_src
mkdir -p "$t/swapbin"
printf '#!/bin/bash\nfor a; do case $a in --dbname=*) [ -f "$SWAP_FROM" ] && mv -f "$SWAP_FROM" "$SWAP_TO";; esac; done\nexec %q "$@"\n' \
  "$(command -v pg_restore)" > "$t/swapbin/pg_restore"
chmod +x "$t/swapbin/pg_restore"
out=$(PATH=$t/swapbin:$PATH SWAP_FROM=$t/swapped.pgdump SWAP_TO=$f5 tool restore "$f5" --into o0_sw_copy 2>&1); rc=$?
is "$rc" 0 "a dump swapped at its path between the checks and the load: the restore goes on"
ok "$([ ! -e "$t/swapped.pgdump" ]; echo $?)" "… (the swap was made)"
is "$(q o0_sw_copy -c "SELECT count(*) FROM pg_class WHERE relname = 'o0_swapped'")" 0 "… and what was checked is what was loaded, not the swapped dump"
q o0_sw_src -c "DROP TABLE public.o0_swapped"
f6=$(backup_of o0_sw_src "$t/bk9")
chmod 0664 "$f6"
out=$(tool restore "$f6" --into o0_sw_copy2 2>&1); rc=$?
is "$rc" 2 "a dump of mode 0664: refused (exit 2)"
like "$out" "others than this user may change the dump .*\(mode 0664\)" "… saying why"
is "$(dbs o0_sw_copy2)" 0 "… nothing was created"
mkfifo "$t/fifo.pgdump"
out=$(timeout 20 "$TOOL" --server-dir "$srv" --db-user postgres restore "$t/fifo.pgdump" --into o0_sw_copy3 2>&1); rc=$?
is "$rc" 2 "a FIFO given as the dump: refused (exit 2), without waiting on it"
like "$out" "is neither a regular file nor a directory" "… saying why"
# 10. An owner whose sessions act as another role (ALTER ROLE … SET role): refused.
chmod 0600 "$f6"
psql -X -q -d postgres -c "GRANT o0_report TO o0_new" -c "ALTER ROLE o0_new SET role = o0_report"
out=$(tool restore "$f6" --into o0_rs_copy --owner o0_new --reassign-owners 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "owner o0_new logging in as o0_report (ALTER ROLE … SET role): refused (exit $rc)"
like "$out" "the database's owner 'o0_new' logs in as 'o0_report'" "… saying so"
is "$(dbs o0_rs_copy)" 0 "… and the database made for it is dropped"
psql -X -q -d postgres -c "ALTER ROLE o0_new RESET role"

# 11. Objects another role makes in the new database while the dump loads (here made by a
#     pg_restore that plants one first, as another role would through PUBLIC's CREATE on public
#     before PostgreSQL 15): found after the load, the database dropped.
printf '#!/bin/bash\nfor a; do case $a in --dbname=*) psql -X -q -d o0_pl_copy -c "CREATE FUNCTION public.o0_planted() RETURNS int LANGUAGE sql AS \x27SELECT 1\x27" -c "ALTER FUNCTION public.o0_planted() OWNER TO o0_report";; esac; done\nexec %q "$@"\n' \
  "$(command -v pg_restore)" > "$t/swapbin/pg_restore"
out=$(PATH=$t/swapbin:$PATH tool restore "$f6" --into o0_pl_copy 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a function of o0_report made during the load: the restore fails (exit $rc)"
like "$out" "while the dump was loaded, other roles made objects in 'o0_pl_copy': 1 functions of o0_report: the database is dropped" "… naming it"
is "$(dbs o0_pl_copy)" 0 "… and the database is dropped"

is "$(q postgres -c "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolname LIKE 'o0%' AND rolsuper AND rolname <> 'o0_dba'")" "" \
  "no o0 role became a superuser (o0_dba was made one)"
rm -f "$share"/ou0_su* "$share"/ou0_probe*  # the cluster's private share directory: leave it as found
# The cluster as found for the tests after this one: they check that no role but theirs is a
# superuser, and count OMERO sessions.
q postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'o0%'" | while IFS= read -r d; do dropdb --force "$d"; done
psql -X -q -d postgres <<'SQL'
DO $$ DECLARE r name; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'o0%' LOOP
    EXECUTE format('DROP OWNED BY %I', r); EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
SQL
is "$(q postgres -c "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'o0%'")" 0 "… and its roles are gone, with their databases"
done_testing
