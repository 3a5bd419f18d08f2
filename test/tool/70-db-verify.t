#!/usr/bin/env bash
# db verify: the database's schema against the fresh schema of its version, built in a scratch
# database from the server's creation files (here the sample ones, test/lib/sample-server.sh
# "Sample versions": a fixture database upgraded by the sample scripts has exactly the schema
# the creation files of its new version build). It conforms after the sample upgrade along any
# chain; a dropped index, a retyped column, a replaced function body, an added table are each
# named (exit 1); the scratch database never outlives the command (success, differences, errors,
# Ctrl-C); a role without CREATEDB is told what to do; extensions are ignored; a hostile
# search_path changes nothing.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
# The OMERO user owns the database and, as usual, may not create databases.
psql -X -q -c "CREATE ROLE omero_vf LOGIN" -c "CREATE ROLE vf_creator LOGIN CREATEDB" postgres
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 vf_db omero_vf
ou() { "$TOOL" --server-dir "$srv" "$@"; }
ov() { ou --db-user postgres db verify "$@"; }   # as a superuser: may create the scratch database
scratches() { q postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'omero\_upgrade\_verify\_%'"; }
nl=$'\n'

# ---- conforming databases: upgraded by the sample scripts along each chain ---------------------------------
fixture_db vf_db --version OMERO5.2__0 --owner omero_vf
ou db upgrade >/dev/null 2>&1
is "$(q vf_db -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.4__0" \
  "the fixture at OMERO5.2__0 is upgraded by the sample scripts (via OMERO5.3__1) to OMERO5.4__0"
out=$(ov 2>&1); rc=$?
is "$rc" 0 "db verify: the upgraded database conforms (exit 0)"
like "$out" "database vf_db \(OMERO5.4__0\) against a fresh OMERO5.4__0 built from $srv/sql/psql/OMERO5.4__0" \
  "… says what it compares with what"
like "$out" "the database vf_db conforms to OMERO5.4__0: no difference; compared 7[0-9] tables, [0-9]+ columns, [0-9]+ constraints, [0-9]+ indexes, [0-9]+ sequences, [1-9][0-9]* triggers?, [1-9][0-9]* functions, 1 view, [1-9][0-9]* types" \
  "… and what it compared"
is "$(scratches)" 0 "… the scratch database is gone after success"
j=$(ov --json); rc=$?
is "$rc" 0 "--json: exit 0"
is "$(jq -r '[.status, .result.conforms, (.result.differences | length), .result.scratch_dropped] | map(tostring) | join(" ")' <<<"$j")" \
  "ok true 0 true" "--json: status ok, conforms, no difference, scratch database dropped"
is "$(jq -r '.result.compared | [.database.table, .database.index, .database.function] == [.fresh.table, .fresh.index, .fresh.function]' <<<"$j")" \
  "true" "--json: as many tables, indexes and functions on both sides"
like "$(jq -r '.result.compared.fresh.index' <<<"$j")" "^[1-9][0-9]{2,}$" "… a real catalog was read (hundreds of indexes)"
like "$(jq -r '.result.scratch_database' <<<"$j")" "^omero_upgrade_verify_[0-9]+_[0-9a-f]{8}$" "… in a scratch database of its own name"

fixture_db vf_b --version OMERO5.2__0 --owner omero_vf
ou --db-name vf_b db upgrade --target OMERO5.3__0 >/dev/null 2>&1
out=$(ov --db-name vf_b 2>&1); rc=$?
is "$rc" 0 "OMERO5.2__0 → OMERO5.3__0: conforms to the fresh OMERO5.3__0 (exit 0)"
like "$out" "built from $srv/sql/psql/OMERO5.3__0" "… its own version's creation files"
ou --db-name vf_b db upgrade >/dev/null 2>&1
out=$(ov --db-name vf_b 2>&1); rc=$?
is "$rc" 0 "… then → OMERO5.4__0 (the other chain): conforms too${rc/0/}"
[ "$rc" = 0 ] || diag "$out"
fixture_db vf_c --version OMERO5.3__1 --owner omero_vf
ou --db-name vf_c db upgrade >/dev/null 2>&1
out=$(ov --db-name vf_c 2>&1); rc=$?
is "$rc" 0 "OMERO5.3__1 → OMERO5.4__0: conforms (exit 0)"
[ "$rc" = 0 ] || diag "$out"
# Not upgraded: a fixture claiming OMERO5.3__1 lacks what the sample scripts add.
fixture_db vf_raw --version OMERO5.3__1 --owner omero_vf
out=$(ov --db-name vf_raw 2>&1); rc=$?
is "$rc" 1 "a fixture that only claims OMERO5.3__1 does not conform: exit 1"
like "$out" "(^|$nl)missing +index +public\.sample_omero5_3_1: fresh: CREATE INDEX sample_omero5_3_1 ON public\.annotation USING btree \(discriminator, ns\)" \
  "… naming what the upgrade scripts would have added"
like "$out" "(^|$nl)missing +function +public\.sample_annotation_kind\(d character varying\): only in the fresh schema" "… functions too"

# ---- each kind of drift, alone, then all at once -----------------------------------------------------------
saved_fn=$(q vf_db -c "SELECT pg_get_functiondef('ome_nextval(varchar)'::regprocedure)")
drift_index="DROP INDEX annotation_ns"
undo_index="CREATE INDEX annotation_ns ON annotation (ns)"
drift_column="ALTER TABLE experimenter ALTER COLUMN email TYPE text"
undo_column="ALTER TABLE experimenter ALTER COLUMN email TYPE varchar(255)"
drift_function=$'CREATE OR REPLACE FUNCTION ome_nextval(seq varchar) RETURNS int8 LANGUAGE plpgsql AS $fn$\nBEGIN\n    RETURN ome_nextval(seq, 2);\nEND;\n$fn$'
undo_function=$saved_fn
drift_table="CREATE TABLE site_notes (id int8 PRIMARY KEY, note text)"
undo_table="DROP TABLE site_notes"
line_index="(^|$nl)missing +index +public\.annotation_ns: fresh: CREATE INDEX annotation_ns ON public\.annotation USING btree \(ns\)($nl|$)"
line_column="(^|$nl)changed +column +public\.experimenter\.email: database text; fresh character varying\(255\)($nl|$)"
line_function="(^|$nl)changed +function +public\.ome_nextval\(seq character varying\): definitions differ from line [0-9]+: database \"RETURN ome_nextval\(seq, 2\);\", fresh \"RETURN ome_nextval\(seq, 1\);\"($nl|$)"
line_table="(^|$nl)extra +table +public\.site_notes: database: table \(2 columns, 1 constraint\)($nl|$)"
for k in index column function table; do
  drift=drift_$k undo=undo_$k line=line_$k
  q vf_db -c "${!drift}" >/dev/null
  out=$(ov 2>&1); rc=$?
  is "$rc" 1 "$k drift: exit 1"
  like "$out" "${!line}" "… named on its own line"
  like "$out" "does not conform to OMERO5.4__0: 1 difference\(s\)" "… and nothing else"
  is "$(scratches)" 0 "… the scratch database is gone after a failed verify"
  q vf_db -c "${!undo}" >/dev/null
done
out=$(ov 2>&1); rc=$?
is "$rc" 0 "every drift undone: conforms again"
[ "$rc" = 0 ] || diag "$out"

for k in index column function table; do drift=drift_$k; q vf_db -c "${!drift}" >/dev/null; done
out=$(ov 2>&1); rc=$?
is "$rc" 1 "all four drifts at once: exit 1"
for k in index column function table; do line=line_$k; like "$out" "${!line}" "… the $k is named"; done
like "$out" "4 difference\(s\) \(1 missing, 2 changed, 1 extra\)" "… four differences, by kind"
j=$(ov --json); rc=$?
is "$rc" 1 "--json: exit 1"
is "$(jq -r '[.status, .exit_code, .result.conforms] | map(tostring) | join(" ")' <<<"$j")" "problem 1 false" \
  "--json: status problem, not conforming"
is "$(jq -r '.result.differences[] | "\(.difference) \(.object) \(.name)"' <<<"$j" | tr '\n' '|')" \
  "extra table public.site_notes|changed column public.experimenter.email|missing index public.annotation_ns|changed function public.ome_nextval(seq character varying)|" \
  "--json: a structured list, by kind then name"
is "$(jq -r '.result.differences[] | select(.object == "index") | [.database, .fresh, .table] | map(tostring) | join("|")' <<<"$j")" \
  "null|CREATE INDEX annotation_ns ON public.annotation USING btree (ns)|public.annotation" \
  "… a missing object: its fresh definition, no database one, its table"
is "$(jq -r '.result.differences[] | select(.object == "function") | [(.database | test("ome_nextval\\(seq, 2\\)")), (.fresh | test("ome_nextval\\(seq, 1\\)"))] | map(tostring) | join(" ")' <<<"$j")" \
  "true true" "… a changed function: both whole definitions"
is "$(jq -r '.result.differences[] | select(.object == "table") | .contains | tojson' <<<"$j")" '{"column":2,"constraint":1}' \
  "… an extra table: what it holds"
for k in index column function table; do undo=undo_$k; q vf_db -c "${!undo}" >/dev/null; done

# White space is not a difference in function bodies.
q vf_db -c $'CREATE OR REPLACE FUNCTION ome_nextval(seq varchar) RETURNS int8 LANGUAGE plpgsql AS $fn$\n  BEGIN RETURN   ome_nextval(seq, 1);\n\n    END;$fn$' >/dev/null
out=$(ov 2>&1); rc=$?
is "$rc" 0 "a function body differing only in white space conforms"
q vf_db -c "$saved_fn" >/dev/null

# A schema of the site's own: one line for it and what it holds.
q vf_db -c "CREATE SCHEMA site" -c "CREATE TABLE site.t (x int)" -c "CREATE INDEX t_x ON site.t (x)" >/dev/null
out=$(ov 2>&1); rc=$?
is "$rc" 1 "a schema of the site's own: exit 1"
like "$out" "(^|$nl)extra +schema +site: database: schema \(1 table, 1 column, 1 index\)($nl|$)" "… one line for the schema and what it holds"
q vf_db -c "SET client_min_messages = warning" -c "DROP SCHEMA site CASCADE" >/dev/null

# ---- extensions are ignored: omero_upgrade's functions, its state schema and what runs leave there -------------
q vf_db -c "CREATE EXTENSION omero_upgrade" >/dev/null
q vf_db -c "SET client_min_messages = warning" -c "SELECT converted FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1}')" >/dev/null
like "$(q vf_db -c "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'omero_upgrade' AND d.deptype = 'e'")" \
  "^[1-9][0-9]+$" "(the extension is installed: dozens of objects)"
is "$(q vf_db -c "SELECT count(*) FROM omero_upgrade.color_journal")" 1 "(and its state schema holds a journal entry)"
out=$(ov 2>&1); rc=$?
is "$rc" 0 "with the omero_upgrade extension installed and used: still conforms"
[ "$rc" = 0 ] || diag "$out"

# ---- a hostile search_path: an operator of another schema would change the catalog queries -------------------
q vf_db -c "CREATE SCHEMA evil" \
  -c "CREATE FUNCTION evil.ne(name, name) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'" \
  -c "CREATE OPERATOR evil.<> (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.ne)" \
  -c "ALTER DATABASE vf_db SET search_path = evil, pg_catalog, public" >/dev/null
is "$(q vf_db -c "SELECT count(*) FROM pg_namespace n WHERE n.nspname <> 'x'")" "$(q vf_db -c "SELECT count(*) FROM pg_namespace")" \
  "(the hostile operator takes over name <> name on that database's default search_path)"
out=$(ov 2>&1); rc=$?
is "$rc" 1 "a hostile search_path: exit 1, because of the schema evil only"
like "$out" "(^|$nl)extra +schema +evil: database: schema \(1 function\)($nl|$)" "… which is named"
like "$out" "1 difference\(s\)" "… and nothing else: the catalog queries ran with search_path = pg_catalog, pg_temp"
q vf_db -c "SET client_min_messages = warning" -c "ALTER DATABASE vf_db RESET search_path" -c "DROP SCHEMA evil CASCADE" >/dev/null

# ---- who may create the scratch database --------------------------------------------------------------------
out=$(ou db verify 2>&1); rc=$?
is "$rc" 2 "as the OMERO user without CREATEDB: exit 2"
like "$out" "the role omero_vf may not create databases: db verify builds the fresh schema in a scratch database" \
  "… says why it cannot"
like "$out" "ALTER ROLE omero_vf CREATEDB" "… names the grant"
like "$out" "--db-user ROLE of a role that may" "… or another role"
is "$(scratches)" 0 "… and created nothing"
q vf_db -c "GRANT SELECT ON dbpatch TO vf_creator" >/dev/null
out=$(ou --db-user vf_creator db verify 2>&1); rc=$?
is "$rc" 2 "a role with CREATEDB that may not act as the OMERO user: exit 2"
like "$out" "the role vf_creator may not create the scratch database owned by the OMERO database user omero_vf" \
  "… says why (the scratch database belongs to the OMERO user, who runs the creation script)"
like "$out" "GRANT omero_vf TO vf_creator" "… and names the grant"
is "$(scratches)" 0 "… and left nothing behind"
q postgres -c "GRANT omero_vf TO vf_creator" >/dev/null
out=$(ou --db-user vf_creator db verify 2>&1); rc=$?
is "$rc" 0 "a role with CREATEDB and the OMERO user's rights, not a superuser, can verify"
[ "$rc" = 0 ] || diag "$out"

# The server directory's SQL runs as the OMERO user, never with the rights of --db-user postgres.
cp -a "$srv" "$t/hostile"
echo "COPY (SELECT 1) TO PROGRAM 'touch $t/pwned';" >> "$t/hostile/sql/psql/OMERO5.4__0/views.sql"
out=$(ov --new-server "$t/hostile" 2>&1); rc=$?
is "$rc" 2 "creation files that try a superuser's COPY TO PROGRAM, verified with --db-user postgres: exit 2"
like "$out" "permission denied|must be superuser|pg_execute_server_program" "… refused: the script ran as the OMERO user"
ok "$([ ! -e "$t/pwned" ]; echo $?)" "… and the program never ran"
is "$(scratches)" 0 "… the scratch database is gone"

# ---- where the creation files come from ------------------------------------------------------------------------
make_sample_server "$t/OMERO.server-5.3.5" 5.3.5 vf_db omero_vf
out=$(ov --new-server "$t/OMERO.server-5.3.5" 2>&1); rc=$?
is "$rc" 2 "--new-server without the database version's creation files: exit 2"
like "$out" "no creation files for OMERO5.4__0 in $t/OMERO.server-5.3.5: there is no sql/psql/OMERO5.4__0/" "… a clear error"
like "$out" "give --new-server DIR: a server directory of the release whose database version is OMERO5.4__0" "… and what to give"
cp -a "$srv" "$t/partial"
rm "$t/partial/sql/psql/OMERO5.4__0/views.sql"
out=$(ov --new-server "$t/partial" 2>&1); rc=$?
is "$rc" 2 "a version folder without views.sql: exit 2"
like "$out" "the creation files of OMERO5.4__0 in $t/partial/sql/psql/OMERO5.4__0 are incomplete: no views.sql" "… naming the missing file"
out=$(ov --new-server "$t/nowhere" 2>&1); rc=$?
is "$rc" 2 "--new-server that does not exist: exit 2"
fixture_db vf_old --version OMERO5.3__0 --unfinished --owner omero_vf
out=$(ov --db-name vf_old 2>&1); rc=$?
is "$rc" 1 "a half-applied upgrade (unfinished dbpatch row): exit 1"
like "$out" "has no finished time: an upgrade stopped half-way" "… explained"
out=$(ov --db-name postgres 2>&1); rc=$?
is "$rc" 2 "not an OMERO database: exit 2"

# A line `omero db script` could not format either (a lone %): refused before anything is built.
cp -a "$srv" "$t/percent"
echo "-- 100% wrong" >> "$t/percent/sql/psql/OMERO5.4__0/psql-header.sql"
out=$(ov --new-server "$t/percent" 2>&1); rc=$?
is "$rc" 2 "a lone % in psql-header.sql: exit 2"
like "$out" "psql-header.sql:[0-9]+: a % that is neither %% nor %\(KEY\)s" "… naming the file and line"
is "$(scratches)" 0 "… nothing was created"

# The creation script fails in the scratch database: the error, and the scratch database dropped.
cp -a "$srv" "$t/broken"
echo "CREATE TABLE broken_by_test (x no_such_type);" >> "$t/broken/sql/psql/OMERO5.4__0/views.sql"
out=$(ov --new-server "$t/broken" 2>&1); rc=$?
is "$rc" 2 "a creation script that fails: exit 2"
like "$out" "the creation script of OMERO5.4__0 \(assembled from $t/broken/sql/psql/OMERO5.4__0\) failed in the scratch database omero_upgrade_verify_[0-9]+_[0-9a-f]+ \(psql exit code 3\)" \
  "… says where"
like "$out" "type \"no_such_type\" does not exist" "… with psql's error"
like "$out" "\(the scratch database omero_upgrade_verify_[0-9]+_[0-9a-f]+ was dropped\)" "… and that the scratch database was dropped"
is "$(scratches)" 0 "… it really is gone"

# ---- Ctrl-C while the scratch database is being built ------------------------------------------------------
cp -a "$srv" "$t/slow"
sed -i 's/^BEGIN;$/BEGIN;\nSELECT pg_sleep(60);  -- a slow creation/' "$t/slow/sql/psql/OMERO5.4__0/psql-header.sql"
"$TOOL" --server-dir "$srv" --db-user postgres db verify --new-server "$t/slow" > "$t/int.out" 2>&1 &   # not a function: $! is the tool
vf=$!
busy() { q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'omero\_upgrade\_verify\_%' AND query LIKE '%pg_sleep%'"; }
for _ in $(seq 150); do [ "$(busy)" -ge 1 ] && break; sleep 0.1; done
is "$(busy)" 1 "the creation script runs in the scratch database (slowly)"
is "$(scratches)" 1 "… which exists meanwhile"
kill -INT "$vf"; wait "$vf"; rc=$?
is "$rc" 2 "Ctrl-C: exit 2"
like "$(cat "$t/int.out")" "interrupted \(Ctrl-C\)" "… says so"
like "$(cat "$t/int.out")" "\(the scratch database omero_upgrade_verify_[0-9]+_[0-9a-f]+ was dropped\)" "… and that it dropped the scratch database"
is "$(scratches)" 0 "… which is gone"
is "$(busy)" 0 "… with the session that built it"

# ---- a scratch database left by a killed run is named, never dropped by another run ------------------------
q postgres -c "CREATE DATABASE omero_upgrade_verify_1_deadbeef" >/dev/null
out=$(ov 2>&1); rc=$?
is "$rc" 0 "a leftover scratch database does not stop verify"
like "$out" "warning: the scratch database omero_upgrade_verify_1_deadbeef exists: left by a db verify that was killed" "… it is named"
is "$(scratches)" 1 "… and left alone (it might belong to a verify running now)"
q postgres -c "DROP DATABASE omero_upgrade_verify_1_deadbeef" >/dev/null

done_testing
