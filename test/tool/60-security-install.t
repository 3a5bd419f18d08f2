#!/usr/bin/env bash
# Install-time security of the extension (issue 13, item 1). omero_upgrade is a trusted
# extension: its install and upgrade scripts run as the bootstrap superuser with the installer's
# search_path (the extension's schema, then pg_temp), so an overload planted there that is a
# better match than pg_catalog's (public.format(text, name) for format(text, VARIADIC "any"))
# would run as superuser. Attacks, as a real site's roles (the superuser postgres, the OMERO
# database owner omero_owner who is not a superuser, an unprivileged login role mallory):
#   - plants in public of overloads shadowing every function and operator the install and upgrade
#     scripts use (the list is read from the scripts themselves by test/lib/sql-lint.pl, so a new
#     call is covered), by the database owner, and on a legacy database whose public is
#     world-writable by mallory; then CREATE EXTENSION as the owner and as a superuser,
#     DROP EXTENSION, ALTER EXTENSION UPDATE from 1.0, and pg_dump/pg_restore round trips;
#   - the attack exactly as reported (public.format(text, name)), which still works on 1.0;
#   - objects planted under the extension's own names (plain CREATE: the install must fail).
# Each time: no role gained an attribute or a membership, no ACL or owner outside the extension
# changed, the extension's own grants name only the roles they should, no planted object ran
# (each logs into a table and raises a WARNING), and the extension's objects are exactly those of
# an install in a clean database. Then the upgrade path: 1.0 updated to 1.1 equals a fresh 1.1,
# and the lint that rejects unqualified names in the scripts (with its own positive controls).
source "$(dirname "$0")/../lib/tap.sh"

t=$(scratch)
lint() { perl "$OU_SRC/test/lib/sql-lint.pl" "$@"; }
extversion=$(sed -n "s/^default_version *= *'\\([^']*\\)'.*/\\1/p" "$OU_SRC/omero_upgrade.control")
sq() { PGOPTIONS="-c search_path=pg_catalog -c client_min_messages=warning" q "$@"; }   # superuser, pinned path: our checks
su() { PGOPTIONS="-c client_min_messages=warning" q "$@"; }   # the superuser as a site's DBA: default search_path
as() { local role=$1 db=$2; shift 2; PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$role" -d "$db" "$@"; }

# The server's extension directory (the private install tree of test/with-cluster.sh).
extdir=$(sq postgres -c "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")/extension
install_script=$extdir/omero_upgrade--$extversion.sql
mapfile -t upgrade_scripts < <(ls "$extdir"/omero_upgrade--*--*.sql 2>/dev/null)
frozen_10=$OU_SRC/extension/omero_upgrade--1.0.sql
ok "$([ -f "$install_script" ] && [ -f "$frozen_10" ] && [ ${#upgrade_scripts[@]} -gt 0 ]; echo $?)" \
  "the install script of $extversion, ${#upgrade_scripts[@]} upgrade script(s) and the frozen 1.0 script are there"
is "$(sq postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'omero_upgrade'")" "$extversion" \
  "the control file's default_version is the one installed ($extversion)"
ok "$([ ! -e "$extdir/omero_upgrade--1.0.sql" ]; echo $?)" "make install does not install the vulnerable 1.0 install script"
# The 1.0 script goes into this private cluster only, for the upgrade tests; removed at the end.
cp "$frozen_10" "$extdir/" && chmod a+r "$extdir/omero_upgrade--1.0.sql"
# So does the previous release's (1.1), frozen as make generated it, for the 1.1 → current update.
frozen_11=$OU_SRC/extension/omero_upgrade--1.1.sql
cp "$frozen_11" "$extdir/" && chmod a+r "$extdir/omero_upgrade--1.1.sql"
# And 1.2's, for the 1.2 → current update.
frozen_12=$OU_SRC/extension/omero_upgrade--1.2.sql
cp "$frozen_12" "$extdir/" && chmod a+r "$extdir/omero_upgrade--1.2.sql"
frozen_13=$OU_SRC/extension/omero_upgrade--1.3.sql
cp "$frozen_13" "$extdir/" && chmod a+r "$extdir/omero_upgrade--1.3.sql"
trap 'rm -f "$extdir/omero_upgrade--1.0.sql" "$extdir/omero_upgrade--1.1.sql" "$extdir/omero_upgrade--1.2.sql" "$extdir/omero_upgrade--1.3.sql"' EXIT

# ---- roles of a site ------------------------------------------------------------------------------
psql -X -q -d postgres -c "CREATE ROLE omero_owner LOGIN" -c "CREATE ROLE mallory LOGIN"
fixture() { fixture_db "$1" --version OMERO5.3__1 --owner omero_owner; }
param_acl=()
[ "$(sq postgres -c "SELECT current_setting('server_version_num')::int >= 150000")" = t ] &&
  param_acl=(-c "SELECT parname, paracl FROM pg_parameter_acl ORDER BY 1")
roles_snapshot() {
  sq postgres -c "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
                         rolbypassrls, rolconnlimit, rolvaliduntil, rolconfig FROM pg_roles ORDER BY rolname" \
              -c "SELECT roleid::regrole, member::regrole, grantor::regrole, admin_option FROM pg_auth_members ORDER BY 1, 2" \
              -c "SELECT datname, pg_get_userbyid(datdba), datacl FROM pg_database
                   WHERE datname IN ('postgres', 'template0', 'template1') ORDER BY 1" "${param_acl[@]}"
}
roles_snapshot > "$t/roles.base"

# Ownership and ACLs of everything in a database that is not the extension's (its members, its
# schema and the relations and types in it).
acl_snapshot() {
  sq "$1" <<'SQL'
WITH ext_members AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'omero_upgrade'),
ours AS (SELECT oid FROM pg_namespace WHERE nspname = 'omero_upgrade' OR nspname ~ '^pg_(toast_)?temp_')
SELECT 'class', c.oid::regclass::text, pg_get_userbyid(c.relowner), c.relacl::text FROM pg_class c
 WHERE c.relnamespace NOT IN (SELECT oid FROM ours) AND (c.relnamespace <> 'pg_toast'::regnamespace)
   AND c.oid NOT IN (SELECT objid FROM ext_members WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'attribute', attrelid::regclass::text || '.' || attname, '', attacl::text FROM pg_attribute
 WHERE attacl IS NOT NULL AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace NOT IN (SELECT oid FROM ours))
UNION ALL
SELECT 'proc', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text FROM pg_proc p
 WHERE p.oid NOT IN (SELECT objid FROM ext_members WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace WHERE oid NOT IN (SELECT oid FROM ours)
UNION ALL
SELECT 'type', t.oid::regtype::text, pg_get_userbyid(t.typowner), t.typacl::text FROM pg_type t
 WHERE t.typnamespace NOT IN (SELECT oid FROM ours) AND t.typnamespace <> 'pg_toast'::regnamespace
UNION ALL
SELECT 'language', lanname, pg_get_userbyid(lanowner), lanacl::text FROM pg_language
UNION ALL
SELECT 'default_acl', defaclrole::regrole::text || ' ' || defaclnamespace::regnamespace::text || ' ' || defaclobjtype::text, '', defaclacl::text FROM pg_default_acl
UNION ALL
SELECT 'large_object', oid::text, pg_get_userbyid(lomowner), lomacl::text FROM pg_largeobject_metadata
UNION ALL
SELECT 'fdw', fdwname, pg_get_userbyid(fdwowner), fdwacl::text FROM pg_foreign_data_wrapper
UNION ALL
SELECT 'server', srvname, pg_get_userbyid(srvowner), srvacl::text FROM pg_foreign_server
UNION ALL
SELECT 'event_trigger', evtname, pg_get_userbyid(evtowner), evtfoid::regproc::text FROM pg_event_trigger
UNION ALL
SELECT 'extension', extname, pg_get_userbyid(extowner), extversion FROM pg_extension WHERE extname <> 'omero_upgrade'
ORDER BY 1, 2
SQL
}

# Every object of the extension, with what defines it: one line each, no OIDs, names qualified
# unless in pg_catalog (so an operator captured at install time shows as OPERATOR(public.=)).
ext_catalog() {
  sq "$1" <<'SQL'
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'omero_upgrade'),
mem AS (SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'omero_upgrade'),
rels AS (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
          OR c.oid IN (SELECT objid FROM mem WHERE classid = 'pg_class'::regclass))
SELECT 'extension', format('owner=%s schema=%s relocatable=%s config=%s condition=%s', pg_get_userbyid(extowner),
       extnamespace::regnamespace, extrelocatable,
       (SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM unnest(extconfig) c), extcondition)
  FROM ext
UNION ALL
SELECT 'member', pg_describe_object(classid, objid, 0) FROM mem
UNION ALL
SELECT 'function ' || p.oid::regprocedure, format('%s owner=%s acl=%s comment=%s', pg_get_functiondef(p.oid),
       pg_get_userbyid(p.proowner), p.proacl, obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p WHERE p.oid IN (SELECT objid FROM mem WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'relation ' || c.oid::regclass, format('kind=%s owner=%s acl=%s options=%s persistence=%s comment=%s',
       c.relkind, pg_get_userbyid(c.relowner), c.relacl, c.reloptions, c.relpersistence, obj_description(c.oid, 'pg_class'))
  FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind <> 't'
UNION ALL
SELECT 'column ' || a.attrelid::regclass || ' ' || lpad(a.attnum::text, 3, '0'),
       format('%s %s notnull=%s default=%s storage=%s identity=%s generated=%s dropped=%s collation=%s acl=%s comment=%s',
              a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
              a.attstorage, a.attidentity, a.attgenerated, a.attisdropped, a.attcollation::regcollation, a.attacl,
              col_description(a.attrelid, a.attnum))
  FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attrelid IN (SELECT oid FROM rels) AND a.attnum > 0
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname, pg_get_constraintdef(oid) || ' deferrable=' || condeferrable
  FROM pg_constraint WHERE conrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'index ' || indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid IN (SELECT oid FROM rels) AND NOT tgisinternal
UNION ALL
SELECT 'rule ' || ev_class::regclass || ' ' || rulename, pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM rels)
UNION ALL
SELECT 'policy ' || polrelid::regclass || ' ' || polname, polcmd::text || ' ' || coalesce(pg_get_expr(polqual, polrelid), '')
  FROM pg_policy WHERE polrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'sequence ' || seqrelid::regclass, format('%s start=%s inc=%s max=%s min=%s cache=%s cycle=%s',
       seqtypid::regtype, seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle)
  FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'owned by ' || d.objid::regclass, pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
  FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM rels)
   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
UNION ALL
SELECT 'schema ' || nspname, format('owner=%s acl=%s comment=%s', pg_get_userbyid(nspowner), nspacl,
       obj_description(oid, 'pg_namespace')) FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
UNION ALL
SELECT 'type ' || t.oid::regtype, format('type=%s owner=%s acl=%s', t.typtype, pg_get_userbyid(t.typowner), t.typacl)
  FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns) OR t.oid IN (SELECT objid FROM mem WHERE classid = 'pg_type'::regclass)
UNION ALL
SELECT 'init privs ' || pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype::text || ' ' || i.initprivs::text
  FROM pg_init_privs i
 WHERE (i.classoid = 'pg_class'::regclass AND i.objoid IN (SELECT oid FROM rels))
    OR (i.classoid, i.objoid) IN (SELECT classid, objid FROM mem)
    OR (i.classoid = 'pg_namespace'::regclass AND i.objoid IN (SELECT oid FROM ns))
ORDER BY 1, 2
SQL
}

# The roles named in the extension's own grants (its schema, tables, sequences, functions).
ext_grantees() {
  sq "$1" <<'SQL'
WITH acls AS (
  SELECT c.relacl AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'omero_upgrade'
  UNION ALL SELECT nspacl FROM pg_namespace WHERE nspname = 'omero_upgrade'
  UNION ALL SELECT p.proacl FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
             AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
SELECT coalesce(string_agg(DISTINCT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END, ' '), '')
  FROM acls, aclexplode(acls.acl) x
SQL
}

# ---- the plants -------------------------------------------------------------------------------
# What the scripts call, as the lint reads them: "call NAME ARITY" and "op OP".
lint calls "$install_script" "${upgrade_scripts[@]}" "$frozen_10" > "$t/calls"
ok $? "the list of calls and operators is read from the install and upgrade scripts"
like "$(cat "$t/calls")" "call format 2" "… format(…, …) is among them"
like "$(cat "$t/calls")" "op =" "… and the = operator"
# Names of the extension's own functions and relations: plants of those are the next attack.
fixture sp_clean
as omero_owner sp_clean -c "CREATE EXTENSION omero_upgrade"
own_names=" $(sq sp_clean -c "SELECT string_agg(DISTINCT proname, ' ') FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'omero_upgrade'::regnamespace)
                              AND oid IN (SELECT objid FROM pg_depend WHERE deptype = 'e')") $(sq sp_clean -c "SELECT string_agg(relname, ' ') FROM pg_class WHERE relnamespace = 'omero_upgrade'::regnamespace") "
types=(text name varchar int8 int4 int2 regclass oid bool jsonb regrole '"char"' anyelement)

# plant_sql PLANTER: the SQL that plants every overload; each logs, warns and tries to make
# PLANTER superuser and a member of pg_read_server_files; the four realistic ones (those 1.0's
# _grant_state meets) also return what pg_catalog's would, so that an install that called them
# would succeed and keep what they did.
plant_sql() {
  local planter=$1 name arity sig n=0 i T L R args
  declare -A done=()
  cat <<SQL
CREATE TABLE public.plant_log (sig text, run_as name, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.plant_log TO PUBLIC;
CREATE FUNCTION public.plant_escalate(sig text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS \$p\$
BEGIN
  RAISE WARNING 'PLANTED % RAN as %', sig, current_user;
  INSERT INTO public.plant_log (sig, run_as) VALUES (sig, current_user);
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '$planter'); EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('GRANT pg_read_server_files TO %I', '$planter'); EXCEPTION WHEN OTHERS THEN NULL; END;
END \$p\$;
GRANT EXECUTE ON FUNCTION public.plant_escalate(text) TO PUBLIC;
CREATE FUNCTION public.format(text, name) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
  \$p\$ BEGIN PERFORM public.plant_escalate('format(text,name)'); RETURN pg_catalog.format(\$1, \$2); END \$p\$;
CREATE FUNCTION public.format(text, regclass) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
  \$p\$ BEGIN PERFORM public.plant_escalate('format(text,regclass)'); RETURN pg_catalog.format(\$1, \$2); END \$p\$;
CREATE FUNCTION public.plant_eq_oid_regclass(oid, regclass) RETURNS bool LANGUAGE plpgsql SET search_path = pg_catalog AS
  \$p\$ BEGIN PERFORM public.plant_escalate('=(oid,regclass)'); RETURN \$1 OPERATOR(pg_catalog.=) \$2::oid; END \$p\$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.plant_eq_oid_regclass);
CREATE FUNCTION public.plant_cat_namearr_name(name[], name) RETURNS name[] LANGUAGE plpgsql SET search_path = pg_catalog AS
  \$p\$ BEGIN PERFORM public.plant_escalate('||(name[],name)'); RETURN pg_catalog.array_append(\$1, \$2); END \$p\$;
CREATE OPERATOR public.|| (LEFTARG = name[], RIGHTARG = name, FUNCTION = public.plant_cat_namearr_name);
SQL
  done["format(text,name)"]=1; done["format(text,regclass)"]=1; done["=(oid,regclass)"]=1; done["||(name[],name)"]=1
  while read -r kind name arity; do
    case $kind in
      call)
        case "$own_names" in *" $name "*) continue ;; esac
        local sigs=()
        if [ "$arity" -eq 0 ]; then sigs=(""); else
          for T in "${types[@]}"; do
            args=$T; for ((i = 1; i < arity; i++)); do args+=",$T"; done; sigs+=("$args")
            if [ "$arity" -ge 2 ]; then
              args=text; for ((i = 1; i < arity; i++)); do args+=",$T"; done; sigs+=("$args")
              args=$T; for ((i = 1; i < arity; i++)); do args+=",text"; done; sigs+=("$args")
            fi
          done
        fi
        for args in "${sigs[@]}"; do
          sig="$name($args)"
          [ -n "${done[$sig]:-}" ] && continue
          done[$sig]=1
          echo "CREATE FUNCTION public.\"$name\"($args) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS \$p\$ BEGIN PERFORM public.plant_escalate('$sig'); RETURN NULL; END \$p\$;"
        done ;;
      op)
        for L in "${types[@]}"; do for R in "${types[@]}"; do
          sig="$name($L,$R)"
          [ -n "${done[$sig]:-}" ] && continue
          done[$sig]=1; n=$((n + 1))
          echo "CREATE FUNCTION public.plant_op_$n($L, $R) RETURNS bool LANGUAGE plpgsql SET search_path = pg_catalog AS \$p\$ BEGIN PERFORM public.plant_escalate('$sig'); RETURN NULL; END \$p\$;"
          echo "CREATE OPERATOR public.$name (LEFTARG = $L, RIGHTARG = $R, FUNCTION = public.plant_op_$n);"
        done; done ;;
    esac
  done < "$t/calls"
}
plant_sql omero_owner > "$t/plants-omero_owner.sql"
plant_sql mallory > "$t/plants-mallory.sql"
n_plants=$(grep -c '^CREATE \(FUNCTION\|OPERATOR\) public\.\("\|format\|=\|||\)' "$t/plants-omero_owner.sql")
ok "$([ "$n_plants" -ge 300 ]; echo $?)" "$n_plants overloads to plant (every call and operator of the scripts, $(( ${#types[@]} )) argument types)"
plant() { as "$1" "$2" -f "$t/plants-$1.sql" >/dev/null; }

# nothing_gained LABEL DB OUTPUT: the checks after each attack.
nothing_gained() {
  local label=$1 db=$2 out=$3
  roles_snapshot > "$t/roles.now"
  diff -u "$t/roles.base" "$t/roles.now" > "$t/roles.diff"
  ok $? "$label: no role gained an attribute or a membership"
  [ -s "$t/roles.diff" ] && diag "$(head -20 "$t/roles.diff")"
  is "$(sq "$db" -c "SELECT count(*) FROM public.plant_log" 2>&1)" "0" "$label: no planted object ran"
  unlike "$out" "PLANTED" "$label: … and none warned"
  acl_snapshot "$db" > "$t/acl.now"
  diff -u "$t/acl.$db" "$t/acl.now" > "$t/acl.diff"
  ok $? "$label: no owner or ACL changed outside the extension"
  [ -s "$t/acl.diff" ] && diag "$(head -20 "$t/acl.diff")"
  unlike " $(ext_grantees "$db") " " mallory " "$label: the extension grants nothing to mallory"
}
# catalog_is DB REFERENCE_DB LABEL: the extension's objects are exactly the reference's.
catalog_is() {
  ext_catalog "$1" > "$t/cat.$1"; ext_catalog "$2" > "$t/cat.$2"
  diff -u "$t/cat.$2" "$t/cat.$1" > "$t/cat.diff"
  ok $? "$3"
  [ -s "$t/cat.diff" ] && diag "$(head -60 "$t/cat.diff")"
}
# Reference installs in clean databases: by the owner (sp_clean, above) and by the superuser.
fixture sp_clean_su
su sp_clean_su -c "CREATE EXTENSION omero_upgrade"
ok "$([ "$(ext_catalog sp_clean | wc -l)" -gt 80 ]; echo $?)" "the catalog description of a clean install has every object ($(ext_catalog sp_clean | wc -l) lines)"
is "$(sq sp_clean_su -c "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'omero_upgrade'") $(sq sp_clean -c "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'omero_upgrade'")" \
  "public public" "the reference installs are in public"
is "$(ext_grantees sp_clean_su)" "omero_owner postgres" "installed by the superuser: its grants go to it and to the OMERO owner (dbpatch's)"
is "$(ext_grantees sp_clean)" "omero_owner postgres" "installed by the owner: to the owner (and postgres, the objects' owner)"

# ---- the attack as reported, on 1.0: it works (this test can fail) -------------------------------
fixture sp_10
as omero_owner sp_10 -c "$(sed -n '/^CREATE TABLE public.plant_log/,/^GRANT EXECUTE ON FUNCTION public.plant_escalate/p' "$t/plants-omero_owner.sql")" \
   -c "$(grep -A1 '^CREATE FUNCTION public.format(text, name)' "$t/plants-omero_owner.sql")"
out=$(as omero_owner sp_10 -c "CREATE EXTENSION omero_upgrade VERSION '1.0'" 2>&1)
is "$(sq postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'omero_owner'")" "t" \
  "1.0 as released: the owner who planted public.format(text, name) and ran CREATE EXTENSION became superuser"
like "$out" "PLANTED format\(text,name\) RAN as postgres" "… the plant ran as the bootstrap superuser"
psql -X -q -d postgres -c "ALTER ROLE omero_owner NOSUPERUSER" -c "REVOKE pg_read_server_files FROM omero_owner"
dropdb sp_10
is "$(roles_snapshot | diff - "$t/roles.base" >/dev/null; echo $?)" "0" "(roles put back for the next attacks)"

# ---- the same on this version ------------------------------------------------------------------
fixture sp_report
as omero_owner sp_report -c "$(sed -n '/^CREATE TABLE public.plant_log/,/^GRANT EXECUTE ON FUNCTION public.plant_escalate/p' "$t/plants-omero_owner.sql")" \
   -c "$(grep -A1 '^CREATE FUNCTION public.format(text, name)' "$t/plants-omero_owner.sql")"
acl_snapshot sp_report > "$t/acl.sp_report"
out=$(as omero_owner sp_report -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "$extversion: the owner installs it beside the planted public.format(text, name): $out"
nothing_gained "reported attack on $extversion" sp_report "$out"
catalog_is sp_report sp_clean "… and the extension is exactly a clean install's"

# ---- every overload, planted by the owner; installs by the owner and by the superuser ----------
fixture sp_owner
plant omero_owner sp_owner
ok $? "the owner planted every overload in public"
acl_snapshot sp_owner > "$t/acl.sp_owner"
# The owner's own session also holds temporary look-alikes (searched last, after public).
out=$(as omero_owner sp_owner -c "CREATE FUNCTION pg_temp.format(text, name) RETURNS text LANGUAGE plpgsql AS
          \$\$ BEGIN PERFORM public.plant_escalate('pg_temp.format'); RETURN pg_catalog.format(\$1, \$2); END \$\$" \
        -c "CREATE TEMP TABLE dbpatch (id int8)" -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "CREATE EXTENSION by the owner among the plants: $(echo "$out" | head -3)"
nothing_gained "owner install among the owner's plants" sp_owner "$out"
catalog_is sp_owner sp_clean "… the extension is exactly a clean install's (no captured operator or function)"
is "$(as omero_owner sp_owner -c "SELECT omero_argb_to_rgba(-65536)")" "-16776961" "… and it works"
out=$(as omero_owner sp_owner -c "DROP EXTENSION omero_upgrade" 2>&1)
ok $? "DROP EXTENSION by the owner: $out"
nothing_gained "DROP EXTENSION among the plants" sp_owner "$out"
is "$(sq sp_owner -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'omero_upgrade'")" "0" "… it removed its schema"
out=$(su sp_owner -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "CREATE EXTENSION by the superuser among the owner's plants: $out"
nothing_gained "superuser install among the owner's plants" sp_owner "$out"
catalog_is sp_owner sp_clean_su "… the extension is exactly a clean superuser install's"

# ---- a legacy database (public world-writable, as before PostgreSQL 15): mallory plants --------
fixture sp_legacy
sq sp_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC"
plant mallory sp_legacy
ok $? "mallory, an unprivileged role, planted every overload in the world-writable public"
acl_snapshot sp_legacy > "$t/acl.sp_legacy"
out=$(as omero_owner sp_legacy -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "CREATE EXTENSION by the owner among mallory's plants: $out"
nothing_gained "owner install among mallory's plants" sp_legacy "$out"
catalog_is sp_legacy sp_clean "… the extension is exactly a clean install's"
is "$(as mallory sp_legacy -c "SELECT has_schema_privilege('omero_upgrade', 'USAGE')")" "f" "mallory may not use the extension's state"
as omero_owner sp_legacy -c "DROP EXTENSION omero_upgrade"
out=$(su sp_legacy -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $? "CREATE EXTENSION by the superuser among mallory's plants: $out"
nothing_gained "superuser install among mallory's plants" sp_legacy "$out"
catalog_is sp_legacy sp_clean_su "… the extension is exactly a clean superuser install's"

# ---- objects planted under the extension's own names: the install fails, replaces nothing ------
fixture sp_names
as omero_owner sp_names -c "CREATE FUNCTION public.omero_db_version() RETURNS text LANGUAGE sql AS \$\$ SELECT 'planted' \$\$"
out=$(as omero_owner sp_names -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $((! $?)) "a planted public.omero_db_version() makes CREATE EXTENSION fail (plain CREATE) …"
like "$out" "already exists" "… saying it exists: $out"
is "$(sq sp_names -c "SELECT prosrc FROM pg_proc WHERE proname = 'omero_db_version'")" " SELECT 'planted' " "… and it was not replaced"
as omero_owner sp_names -c "DROP FUNCTION public.omero_db_version()" \
  -c "CREATE SCHEMA omero_upgrade" \
  -c "CREATE FUNCTION omero_upgrade._grant_state(regclass) RETURNS void LANGUAGE plpgsql AS \$\$ BEGIN RAISE WARNING 'PLANTED'; END \$\$"
out=$(as omero_owner sp_names -c "CREATE EXTENSION omero_upgrade" 2>&1)
ok $((! $?)) "a schema omero_upgrade made beforehand (with its own _grant_state) makes it fail too: $out"
is "$(roles_snapshot | diff - "$t/roles.base" >/dev/null; echo $?)" "0" "… and no role gained anything"
dropdb sp_names

# ---- ALTER EXTENSION UPDATE from 1.0 -------------------------------------------------------------
# Without plants first: an updated 1.0 is exactly a fresh install of this version.
fixture sp_up_clean
as omero_owner sp_up_clean -c "CREATE EXTENSION omero_upgrade VERSION '1.0'"
ext_catalog sp_clean > "$t/cat.sp_clean"
ext_catalog sp_up_clean | diff - "$t/cat.sp_clean" > "$t/cat.10.diff"
ok $((! $?)) "the comparison sees what 1.0 lacks before the update (it can fail): $(grep -c '^[<>]' "$t/cat.10.diff") line(s) differ"
like "$(cat "$t/cat.10.diff")" "SET search_path TO 'pg_catalog', 'pg_temp'" "… among them _grant_state's pinned search_path"
out=$(as omero_owner sp_up_clean -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the owner updates 1.0 to $extversion: $out"
is "$(sq sp_up_clean -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'")" "$extversion" "… now at $extversion"
catalog_is sp_up_clean sp_clean "an updated 1.0 is exactly a fresh $extversion (installed by the same role); if not, the upgrade script misses the lines shown: see README \"Install and upgrade scripts\""
fixture sp_up_clean_su
su sp_up_clean_su -c "CREATE EXTENSION omero_upgrade VERSION '1.0'" -c "ALTER EXTENSION omero_upgrade UPDATE"
catalog_is sp_up_clean_su sp_clean_su "the same for a superuser's install and update"
# With state rows: the update keeps them.
su sp_up_clean -c "DROP EXTENSION omero_upgrade"
as omero_owner sp_up_clean -c "CREATE EXTENSION omero_upgrade VERSION '1.0'" \
  -c "SELECT count(*) FROM omero_orphans_delete(dry_run => false)" \
  -c "SELECT count(*) FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1}')" >/dev/null
before=$(sq sp_up_clean -c "SELECT (SELECT count(*) FROM omero_upgrade.orphan_archive) || ' ' || (SELECT count(*) FROM omero_upgrade.color_journal)")
as omero_owner sp_up_clean -c "ALTER EXTENSION omero_upgrade UPDATE"
is "$(sq sp_up_clean -c "SELECT (SELECT count(*) FROM omero_upgrade.orphan_archive) || ' ' || (SELECT count(*) FROM omero_upgrade.color_journal)")" \
  "$before" "the update keeps the state (archived orphans and colour journal: $before)"
like "$before" "^[1-9][0-9]* [1-9][0-9]*$" "… of which there was some"
out=$(as omero_owner sp_up_clean -c "SELECT omero_orphans_restore(1)" 2>&1)
like "$out" "^[1-9][0-9]*$" "… and a 1.0 delete run is restored by $extversion: $out"

# ---- ALTER EXTENSION UPDATE from 1.1, the previous release ---------------------------------------
# A fresh 1.1 (its own install script), updated by omero_upgrade--1.1--$extversion.sql alone.
fixture sp_up11
as omero_owner sp_up11 -c "CREATE EXTENSION omero_upgrade VERSION '1.1'" \
  -c "SELECT count(*) FROM omero_orphans_delete(dry_run => false)" >/dev/null
ext_catalog sp_up11 | diff - "$t/cat.sp_clean" > "$t/cat.11.diff"
ok $((! $?)) "a fresh 1.1 differs from a fresh $extversion before the update (the comparison can fail): $(grep -c '^[<>]' "$t/cat.11.diff") line(s)"
like "$(cat "$t/cat.11.diff")" "omero_history" "… among them omero_history()"
out=$(as omero_owner sp_up11 -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the owner updates 1.1 to $extversion: $out"
is "$(sq sp_up11 -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'")" "$extversion" "… now at $extversion"
catalog_is sp_up11 sp_clean "an updated 1.1 is exactly a fresh $extversion (same objects, definitions, grants)"
out=$(as omero_owner sp_up11 -c "SELECT omero_orphans_restore(1)" -c "SELECT kind FROM omero_history()" 2>&1)
like "$out" "^[1-9][0-9]*"$'\n'"orphans-restore$" "… whose 1.1 delete run it restores, and records in the new history"
# ---- ALTER EXTENSION UPDATE from 1.2 -------------------------------------------------------------
# A fresh 1.2 (its own install script), updated by omero_upgrade--1.2--$extversion.sql alone.
fixture sp_up12
as omero_owner sp_up12 -c "CREATE EXTENSION omero_upgrade VERSION '1.2'" \
  -c "SELECT count(*) FROM omero_orphans_delete(dry_run => false)" >/dev/null
ext_catalog sp_up12 | diff - "$t/cat.sp_clean" > "$t/cat.12.diff"
ok $((! $?)) "a fresh 1.2 differs from a fresh $extversion before the update (the comparison can fail): $(grep -c '^[<>]' "$t/cat.12.diff") line(s)"
like "$(cat "$t/cat.12.diff")" "jobs" "… among them omero_colors_convert's jobs"
out=$(as omero_owner sp_up12 -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the owner updates 1.2 to $extversion: $out"
is "$(sq sp_up12 -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'")" "$extversion" "… now at $extversion"
catalog_is sp_up12 sp_clean "an updated 1.2 is exactly a fresh $extversion (same objects, definitions, grants)"
out=$(as omero_owner sp_up12 -c "SELECT omero_orphans_restore(1)" 2>&1)
like "$out" "^[1-9][0-9]*$" "… whose 1.2 delete run it restores"
# ---- ALTER EXTENSION UPDATE from 1.3 -------------------------------------------------------------
# A fresh 1.3 (its own install script), updated by omero_upgrade--1.3--$extversion.sql alone.
fixture sp_up13
as omero_owner sp_up13 -c "CREATE EXTENSION omero_upgrade VERSION '1.3'" \
  -c "SELECT count(*) FROM omero_orphans_delete(dry_run => false)" >/dev/null
ext_catalog sp_up13 | diff - "$t/cat.sp_clean" > "$t/cat.13.diff"
ok $((! $?)) "a fresh 1.3 differs from a fresh $extversion before the update (the comparison can fail): $(grep -c '^[<>]' "$t/cat.13.diff") line(s)"
like "$(cat "$t/cat.13.diff")" "omero_orphans_runs" "… among them omero_orphans_runs()"
out=$(as omero_owner sp_up13 -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the owner updates 1.3 to $extversion: $out"
is "$(sq sp_up13 -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'")" "$extversion" "… now at $extversion"
catalog_is sp_up13 sp_clean "an updated 1.3 is exactly a fresh $extversion (same objects, definitions, grants)"
out=$(as omero_owner sp_up13 -c "SELECT run_id || ' ' || status FROM omero_orphans_runs()" 2>&1)
is "$out" "1 deleted" "… whose 1.3 delete run it lists"
fixture sp_up11_legacy
su sp_up11_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC" -c "CREATE EXTENSION omero_upgrade VERSION '1.1'"
plant mallory sp_up11_legacy
acl_snapshot sp_up11_legacy > "$t/acl.sp_up11_legacy"
out=$(su sp_up11_legacy -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the superuser updates 1.1 among mallory's plants (legacy public): $out"
nothing_gained "superuser 1.1 update among mallory's plants" sp_up11_legacy "$out"
catalog_is sp_up11_legacy sp_clean_su "… and the result is exactly a fresh superuser $extversion"

# A dump of a 1.0 database restores as the current version (pg_dump names no version), state
# included, and the OMERO owner can use that state after a superuser's restore.
fixture sp_dump10
as omero_owner sp_dump10 -c "CREATE EXTENSION omero_upgrade VERSION '1.0'" \
  -c "SELECT count(*) FROM omero_orphans_delete(dry_run => false)" >/dev/null
pg_dump -Fc -f "$t/sp_dump10.dump" sp_dump10
createdb -O omero_owner -T template0 sp_rs10
pg_restore -d sp_rs10 "$t/sp_dump10.dump"
ok $? "a dump of a 1.0 database restores (as the superuser)"
is "$(sq sp_rs10 -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'") $(sq sp_rs10 -c "SELECT count(*) FROM omero_upgrade.orphan_archive")" \
   "$extversion $(sq sp_dump10 -c "SELECT count(*) FROM omero_upgrade.orphan_archive")" "… as $extversion, with its archived orphans"
catalog_is sp_rs10 sp_clean_su "… and the extension is exactly a fresh superuser install's"
out=$(as omero_owner sp_rs10 -c "SELECT omero_orphans_restore(1)" 2>&1)
like "$out" "^[1-9][0-9]*$" "… whose state the OMERO owner (the database's owner) may use: restored $out"

# Then with every plant, by the owner (its own install) and by mallory (the superuser's install).
fixture sp_up_owner
as omero_owner sp_up_owner -c "CREATE EXTENSION omero_upgrade VERSION '1.0'"
plant omero_owner sp_up_owner
acl_snapshot sp_up_owner > "$t/acl.sp_up_owner"
out=$(as omero_owner sp_up_owner -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the owner updates 1.0 among the owner's plants: $out"
nothing_gained "owner update among the owner's plants" sp_up_owner "$out"
catalog_is sp_up_owner sp_clean "… and the result is exactly a fresh $extversion"
fixture sp_up_legacy
su sp_up_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC" -c "CREATE EXTENSION omero_upgrade VERSION '1.0'"
plant mallory sp_up_legacy
acl_snapshot sp_up_legacy > "$t/acl.sp_up_legacy"
out=$(su sp_up_legacy -c "ALTER EXTENSION omero_upgrade UPDATE" 2>&1)
ok $? "the superuser updates 1.0 among mallory's plants (legacy public): $out"
nothing_gained "superuser update among mallory's plants" sp_up_legacy "$out"
catalog_is sp_up_legacy sp_clean_su "… and the result is exactly a fresh $extversion"

# ---- pg_dump / pg_restore ------------------------------------------------------------------------
# sp_owner holds the extension (installed by the superuser), the owner's plants and state rows;
# its dump re-creates the extension before the plants, so restore also into databases planted
# beforehand: a database pre-created for the owner and planted by it, a legacy one planted by mallory.
as omero_owner sp_owner -c "SET search_path = pg_catalog" \
  -c "INSERT INTO omero_upgrade.orphan_run (id, status, batch_size) VALUES (1, 'deleted', 10)" \
  -c "INSERT INTO omero_upgrade.color_runs (direction, method, scope) VALUES ('argb_to_rgba', 'tx', '{\"all\": true}')"
pg_dump -Fc -f "$t/sp_owner.dump" sp_owner
ok $? "pg_dump of a database holding the extension, its state and the plants"
pg_dump -Fc -f "$t/sp_clean_su.dump" sp_clean_su
restore_check() {   # LABEL DB RESTORE_AS REFERENCE_DB DUMP
  local label=$1 db=$2 role=$3 ref=$4 dump=$5
  acl_snapshot "$db" > "$t/acl.$db.pre"
  out=$(pg_restore -U "$role" -d "$db" "$dump" 2>&1)
  ok $? "$label: pg_restore as $role: $(echo "$out" | head -3)"
  # The restored objects are new; what existed before restoring must be unchanged.
  acl_snapshot "$db" > "$t/acl.now"
  LC_ALL=C comm -23 <(LC_ALL=C sort "$t/acl.$db.pre") <(LC_ALL=C sort "$t/acl.now") > "$t/acl.lost"
  ok "$([ ! -s "$t/acl.lost" ]; echo $?)" "$label: no owner or ACL that existed before the restore changed"
  [ -s "$t/acl.lost" ] && diag "$(head -20 "$t/acl.lost")"
  roles_snapshot > "$t/roles.now"
  diff -u "$t/roles.base" "$t/roles.now" > "$t/roles.diff"
  ok $? "$label: no role gained an attribute or a membership"
  is "$(sq "$db" -c "SELECT count(*) FROM public.plant_log" 2>&1)" "0" "$label: no planted object ran"
  unlike "$out" "PLANTED" "$label: … and none warned"
  catalog_is "$db" "$ref" "$label: the extension is exactly a clean install's"
}
createdb -O omero_owner -T template0 sp_rs_super
restore_check "restore as the superuser into a new database" sp_rs_super postgres sp_clean_su "$t/sp_owner.dump"
is "$(sq sp_rs_super -c "SELECT (SELECT count(*) FROM omero_upgrade.orphan_run) || ' ' || (SELECT count(*) FROM omero_upgrade.color_runs)")" "1 1" \
  "… with the state rows"
createdb -O omero_owner -T template0 sp_rs_owner
restore_check "restore as the owner into its new database" sp_rs_owner omero_owner sp_clean "$t/sp_owner.dump"
createdb -O omero_owner -T template0 sp_rs_preplanted
plant omero_owner sp_rs_preplanted
restore_check "restore as the superuser into a database the owner planted beforehand" sp_rs_preplanted postgres sp_clean_su "$t/sp_clean_su.dump"
createdb -O omero_owner -T template0 sp_rs_legacy
sq sp_rs_legacy -c "GRANT CREATE ON SCHEMA public TO PUBLIC"
plant mallory sp_rs_legacy
restore_check "restore as the superuser into a legacy database mallory planted" sp_rs_legacy postgres sp_clean_su "$t/sp_clean_su.dump"

# ---- the lint: no unqualified name in the install or upgrade scripts ------------------------------
out=$(lint check "$install_script" "${upgrade_scripts[@]}" 2>&1)
ok $? "no unqualified function, operator, type or relation in the install and upgrade scripts${out:+: $(echo "$out" | head -20)}"
# Its positive controls: the released 1.0 (format() as reported) and small snippets of each rule.
out=$(lint check "$frozen_10" 2>&1)
like "$out" "omero_upgrade--1.0.sql:[0-9]+: unqualified function call or type format" "the lint finds 1.0's unqualified format()"
like "$out" "unqualified operator \|\|" "… its ||"
like "$out" "without SET search_path" "… its plpgsql function without a pinned search_path"
lint_snippet() {   # SQL EXPECTED_REGEX NAME
  printf '%s\n' "$1" > "$t/snippet.sql"
  like "$(lint check "$t/snippet.sql" 2>&1)" "$2" "lint: $3"
}
body() { printf 'CREATE FUNCTION @extschema@.f() RETURNS pg_catalog.void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$ BEGIN %s END $$;' "$1"; }
lint_snippet "$(body "EXECUTE format('x %I', 'y');")" "unqualified function call or type format" "a call in a plpgsql body"
lint_snippet "$(body "PERFORM 1 WHERE 'a' IN ('a', 'b');")" "IN \(…\) resolves an operator" "IN (…)"
lint_snippet "$(body "PERFORM 'a' || 'b';")" "unqualified operator \|\|" "an operator"
lint_snippet "$(body "PERFORM 1 OPERATOR(public.=) 1;")" "only pg_catalog operators are trusted" "OPERATOR(public.=)"
lint_snippet "$(body "PERFORM 1 WHERE 1 IS DISTINCT FROM 2;")" "DISTINCT FROM resolves =" "IS DISTINCT FROM"
lint_snippet "$(body "PERFORM 1 FROM pg_class;")" "unqualified relation pg_class" "a relation"
lint_snippet "SELECT x::regclass FROM omero_upgrade.t;" "unqualified type regclass" "a cast"
lint_snippet 'CREATE FUNCTION @extschema@.f() RETURNS pg_catalog.int4 LANGUAGE sql AS $$ SELECT 1 $$;' \
  "without SET search_path" "a sql function without SET search_path"
lint_snippet "SELECT pg_catalog.format('%I', 'x') OPERATOR(pg_catalog.||) 'y'::pg_catalog.text; -- format( in a comment" \
  "^$" "qualified calls, operators and types, comments and strings: nothing to report"

# ---- the frozen and upgrade scripts are kept by git -----------------------------------------------
git_() { git -c safe.directory='*' -C "$OU_SRC" "$@"; }
if git_ rev-parse --git-dir >/dev/null 2>&1; then
  ignored=""
  for f in "$OU_SRC"/extension/omero_upgrade--*.sql; do
    [ "$(basename "$f")" = "omero_upgrade--$extversion.sql" ] && continue
    git_ check-ignore --no-index -q "extension/$(basename "$f")" && ignored+=" $(basename "$f")"
  done
  is "$ignored" "" "git ignores no committed extension script (only the generated omero_upgrade--$extversion.sql)"
  ok "$(git_ check-ignore --no-index -q "extension/omero_upgrade--$extversion.sql"; echo $?)" "… and ignores the generated one"
else
  ok 0 "# SKIP not a git checkout: the .gitignore check needs one"
fi

for db in sp_clean sp_clean_su sp_report sp_owner sp_legacy sp_up_clean sp_up_clean_su sp_up_owner sp_up_legacy sp_up11 sp_up12 sp_up13 sp_up11_legacy sp_dump10 sp_rs10 \
          sp_rs_super sp_rs_owner sp_rs_preplanted sp_rs_legacy; do
  dropdb --if-exists "$db"
done
psql -X -q -d postgres -c "DROP ROLE omero_owner" -c "DROP ROLE mallory"
done_testing
