#!/usr/bin/env bash
# Site SQL steps (db upgrade --site-sql DIR, run --site-sql DIR) on databases upgraded by the
# sample scripts: DIR's *.sql files in name order after the official hops, each once across
# reruns, each in its own transaction as the OMERO user, recorded with its SHA-256 (in
# omero_upgrade.site_sql when the extension is installed, else in a private file beside the
# server directory); a file changed after it was applied is refused with both checksums (nothing
# runs); a new file is applied alone; a failing file is rolled back and not recorded; a file that
# ends its own transaction is refused, so is one with a psql include (\i, \ir); --dry-run lists what would run and changes nothing; the
# caller's search_path does not reach the files.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_ss LOGIN" postgres
version() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
nl=$'\n'

# ---- with the extension: records in omero_upgrade.site_sql -------------------------------------------------
fixture_db ss_db --version OMERO5.3__1 --owner omero_ss
q ss_db -c "CREATE EXTENSION omero_upgrade"
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 ss_db omero_ss
ou() { "$TOOL" --server-dir "$srv" "$@"; }
site=$t/site
mkdir -p "$site"
printf '%s\n' "ALTER TABLE externalinfo ALTER COLUMN lsid TYPE text;" > "$site/010_lsid.sql"
printf '%s\n' "CREATE TABLE site_notes (id int8 PRIMARY KEY, note text);" "INSERT INTO site_notes VALUES (1, 'added once');" \
  "CREATE TABLE site_path AS SELECT current_setting('search_path') AS p;" > "$site/020_notes.sql"
echo "not sql: ignored" > "$site/README.txt"

out=$(ou db upgrade --site-sql "$site" --dry-run 2>&1); rc=$?
is "$rc" 3 "--dry-run: exit 3 (not there yet: a hop and site files pending)"
like "$out" "would apply 010_lsid.sql \(sha256 $(sha "$site/010_lsid.sql")\)" "… lists the first site file with its SHA-256"
like "$out" "would apply 020_notes.sql" "… and the second"
like "$out" "would run: psql .*OMERO5.3__1.sql.*${nl}would run: psql -X -q -1 -v ON_ERROR_STOP=1 -U omero_ss -f $site/010_lsid.sql" "… and how each would run, after the hop"
unlike "$out" "README" "… only *.sql files"
is "$(version ss_db) $(q ss_db -c "SELECT count(*) FROM omero_upgrade.site_sql") $(q ss_db -c "SELECT to_regclass('site_notes') IS NULL")" \
  "OMERO5.3__1 0 t" "… and changes nothing"

# The caller's search_path puts a schema of its own first: the files must not see it.
q ss_db -c "CREATE SCHEMA ss_elsewhere AUTHORIZATION omero_ss"
out=$(PGOPTIONS="-c search_path=ss_elsewhere,public" ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 0 "db upgrade --site-sql: exit 0"
[ "$rc" -eq 0 ] || diag "$out"
like "$out" "OMERO5.3__1 → OMERO5.4__0.*${nl}.*site SQL 010_lsid.sql: applying.*${nl}.*site SQL 020_notes.sql: applying" \
  "… the official hop first, then the site files in name order"
is "$(version ss_db)" "OMERO5.4__0" "… the database is upgraded"
is "$(q ss_db -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'externalinfo'::regclass AND attname = 'lsid'")" \
  "text" "… externalinfo.lsid widened to text by 010_lsid.sql"
is "$(q ss_db -c "SELECT string_agg(file_name || ' ' || sha256 || ' ' || db_role || ' ' || db_version || ' ' || (os_user IS NOT NULL) || ' ' || (host IS NOT NULL), ',' ORDER BY file_name) FROM omero_upgrade.site_sql")" \
  "010_lsid.sql $(sha "$site/010_lsid.sql") omero_ss OMERO5.4__0 true true,020_notes.sql $(sha "$site/020_notes.sql") omero_ss OMERO5.4__0 true true" \
  "… each recorded once with its SHA-256, the OMERO user, the version, the OS user and host"
is "$(q ss_db -c "SELECT p FROM site_path")" "public, pg_catalog, pg_temp" \
  "the files run with OMERO's schema, pg_catalog, pg_temp as search_path, not the caller's (PGOPTIONS)"
is "$(q ss_db -c "SELECT relnamespace::regnamespace || ' ' || relowner::regrole FROM pg_class WHERE relname = 'site_notes'")" "public omero_ss" \
  "… so their tables are in OMERO's schema, owned by the OMERO database user"

out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 0 "again: exit 0"
like "$out" "already applied 010_lsid.sql.*skipped" "… the applied files are skipped"
is "$(q ss_db -c "SELECT count(*) FROM site_notes") $(q ss_db -c "SELECT count(*) FROM omero_upgrade.site_sql")" "1 2" \
  "… nothing runs twice"

printf '%s\n' "INSERT INTO site_notes VALUES (3, 'third');" > "$site/030_more.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 0 "a new file: exit 0"
like "$out" "site SQL 030_more.sql: applying" "… it is applied"
unlike "$out" "(010_lsid|020_notes).sql: applying" "… alone"
is "$(q ss_db -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM site_notes")" "1,3" "… once"

# ---- a changed file: refused, nothing runs -------------------------------------------------------------
old_sha=$(sha "$site/020_notes.sql")
echo "-- edited after it was applied" >> "$site/020_notes.sql"
printf '%s\n' "INSERT INTO site_notes VALUES (4, 'fourth');" > "$site/040_next.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "a file changed after it was applied: exit 1"
like "$out" "020_notes.sql was applied with sha256 $old_sha .* but now has sha256 $(sha "$site/020_notes.sql")" \
  "… both checksums shown"
is "$(q ss_db -c "SELECT count(*) FROM site_notes WHERE id = 4")" "0" "… and nothing ran (not even the new 040_next.sql)"
j=$(ou --json db upgrade --site-sql "$site" --dry-run); rc=$?
is "$rc $(jq -r '[.result.site_sql.changed, (.result.site_sql.files[] | select(.status == "changed") | .name)] | map(tostring) | join(" ")' <<<"$j")" \
  "1 1 020_notes.sql" "--dry-run --json refuses too (exit 1), naming the changed file"
sed -i '$d' "$site/020_notes.sql"

# ---- a failing file: rolled back, not recorded; fixed: applied ------------------------------------------
printf '%s\n' "CREATE TABLE site_half (x int);" "SELECT 1/0;" > "$site/050_bad.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "a failing site file: exit 1 (as a failing hop)"
like "$out" "the site SQL file $site/050_bad.sql failed.*division by zero" "… names the file and psql's error"
like "$out" "rolled back and nothing of it is recorded" "… says it was rolled back"
is "$(q ss_db -c "SELECT to_regclass('site_half') IS NULL") $(q ss_db -c "SELECT string_agg(file_name, ',' ORDER BY file_name) FROM omero_upgrade.site_sql")" \
  "t 010_lsid.sql,020_notes.sql,030_more.sql,040_next.sql" "… its table is gone (one transaction), the files before it are applied and recorded"
printf '%s\n' "CREATE TABLE site_half (x int);" > "$site/050_bad.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc $(q ss_db -c "SELECT to_regclass('site_half') IS NOT NULL")" "0 t" "fixed, it is applied (exit 0)"

# A file that commits on its own would not be one transaction with its record: refused.
printf '%s\n' "CREATE TABLE site_commit (x int);" "COMMIT;" > "$site/060_commit.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "a file that ends its own transaction: exit 1"
like "$out" "ended its own transaction" "… says so"
is "$(q ss_db -c "SELECT count(*) FROM omero_upgrade.site_sql WHERE file_name = '060_commit.sql'")" "0" "… and is not recorded"
rm "$site/060_commit.sql"

# A psql include would run a file that is not part of the checksum: refused before anything runs.
printf '%s\n' "INSERT INTO site_notes VALUES (7, 'seventh');" > "$site/070_ok.sql"
printf '%s\n' "INSERT INTO site_notes VALUES (8, 'eighth');" > "$site/inc_body.sql.txt"
printf '%s\n' "SELECT 1;" "  \\ir inc_body.sql.txt" > "$site/080_inc.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "a site file with a psql include (\\ir): exit 1"
like "$out" "080_inc.sql is refused: it includes another file \(line 2: +\\\\ir inc_body.sql.txt\)" "… naming the file and the line"
is "$(q ss_db -c "SELECT count(*) FROM site_notes WHERE id IN (7, 8)") $(q ss_db -c "SELECT count(*) FROM omero_upgrade.site_sql WHERE file_name IN ('070_ok.sql', '080_inc.sql')")" \
  "0 0" "… and nothing ran (not even the file before it)"
j=$(ou --json db upgrade --site-sql "$site" --dry-run); rc=$?
is "$rc $(jq -r '[.result.site_sql.refused, (.result.site_sql.files[] | select(.status == "refused") | .name)] | map(tostring) | join(" ")' <<<"$j")" \
  "1 1 080_inc.sql" "--dry-run --json refuses it too (exit 1), status refused"
printf '%s\n' "\\i $site/inc_body.sql.txt" > "$site/080_inc.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc" 1 "… \\i with an absolute path too: exit 1"
rm "$site/080_inc.sql"
out=$(ou db upgrade --site-sql "$site" 2>&1); rc=$?
is "$rc $(q ss_db -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM site_notes WHERE id >= 7")" "0 7" "without it, the other file is applied"

# An unprivileged role can neither read nor write the records.
psql -X -q -c "CREATE ROLE ss_nobody LOGIN" postgres
out=$(psql -X -q -U ss_nobody -d ss_db -c "INSERT INTO omero_upgrade.site_sql (file_name, sha256) VALUES ('x.sql', repeat('0', 64))" 2>&1)
like "$out" "permission denied" "an unprivileged role cannot forge a site SQL record"

# ---- without the extension: a private file beside the server directory ------------------------------------
fixture_db ss_plain --version OMERO5.3__1 --owner omero_ss
srv2=$t/plain/OMERO.server
mkdir -p "$t/plain"
make_sample_server "$srv2" 5.6.3 ss_plain omero_ss
site2=$t/site2
mkdir -p "$site2"
printf '%s\n' "CREATE TABLE site_notes (id int8 PRIMARY KEY);" "INSERT INTO site_notes VALUES (1);" > "$site2/010_notes.sql"
out=$("$TOOL" --server-dir "$srv2" db upgrade --site-sql "$site2" 2>&1); rc=$?
is "$rc" 0 "no extension: db upgrade --site-sql, exit 0"
[ "$rc" -eq 0 ] || diag "$out"
rec=$t/plain/.omero-upgrade-site-sql.json
is "$(stat -c %a "$rec") $(jq -r --arg s "$(sha "$site2/010_notes.sql")" '.databases.ss_plain | map(.name + " " + (.sha256 == $s | tostring)) | join(",")' "$rec")" \
  "600 010_notes.sql true" "… recorded with its SHA-256 in a private (0600) file beside the server directory"
out=$("$TOOL" --server-dir "$srv2" db upgrade --site-sql "$site2" 2>&1); rc=$?
is "$rc $(q ss_plain -c "SELECT count(*) FROM site_notes")" "0 1" "… again: nothing runs twice"
echo "-- changed" >> "$site2/010_notes.sql"
out=$("$TOOL" --server-dir "$srv2" db upgrade --site-sql "$site2" 2>&1); rc=$?
is "$rc" 1 "… changed: refused (exit 1)"
like "$out" "010_notes.sql was applied with sha256 [0-9a-f]{64} .* but now has sha256 $(sha "$site2/010_notes.sql")" "… both checksums"

# ---- run --site-sql: listed by --dry-run, applied by db upgrade, seen by db verify -------------------------
run_template
r=$t/run
scenario "$r" ss_run
site3=$t/site3
mkdir -p "$site3"
printf '%s\n' "ALTER TABLE externalinfo ALTER COLUMN lsid TYPE text;" > "$site3/010_lsid.sql"
orun() { "$TOOL" --server-dir "$r/OMERO.server" run --new-server "$r/OMERO.server-5.6.3.zip" --site-sql "$site3" "$@"; }
out=$(orun --dry-run 2>&1); rc=$?
is "$rc" 0 "run --site-sql --dry-run: exit 0"
like "$out" "site SQL +$site3: 1 file\(s\), 1 to apply after the hops" "… the plan has the site SQL"
like "$out" "010_lsid.sql: would apply \(sha256 $(sha "$site3/010_lsid.sql")\)" "… each file with its SHA-256"
like "$out" "db upgrade --target OMERO5.4__0 --site-sql $site3" "… passed to db upgrade"
out=$(orun 2>&1); rc=$?
is "$rc" 0 "run --site-sql: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
is "$(q ss_run -c "SELECT file_name || ' ' || sha256 FROM omero_upgrade.site_sql")" "010_lsid.sql $(sha "$site3/010_lsid.sql")" \
  "… the site file applied after the hops and recorded"
like "$out" "schema +differs: 1 difference\(s\) from a fresh OMERO5.4__0 \(1 changed\)" \
  "… and db verify, after it, reports the column the site changed"
out=$(orun 2>&1); rc=$?
is "$rc" 0 "run --site-sql again: exit 0"
like "$out" "nothing to do" "… nothing to do: upgraded, and every site file applied"

# ---- a run of site SQL only (the installation already upgraded): rolled back like any run ----------------
printf '%s\n' "CREATE TABLE site_only (x int);" > "$site3/020_only.sql"
out=$(orun --dry-run 2>&1); rc=$?
unlike "$out" "nothing to do" "a new site file on an upgraded installation: not \"nothing to do\""
out=$(orun 2>&1); rc=$?
is "$rc" 0 "run of site SQL only: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
is "$(q ss_run -c "SELECT to_regclass('site_only') IS NOT NULL") $(q ss_run -c "SELECT count(*) FROM omero_upgrade.site_sql")" "t 2" \
  "… the site file applied and recorded (no hop)"
out=$("$TOOL" --server-dir "$r/OMERO.server" rollback --dry-run 2>&1)
like "$out" "applied site SQL .*020_only|site SQL \(1 file" "rollback --dry-run: the site SQL is a change of the database"
out=$("$TOOL" --server-dir "$r/OMERO.server" rollback 2>&1); rc=$?
is "$rc" 0 "… rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
into=$(jq -r .rollback.into "$r/.omero-upgrade-run.json")
is "$(q "$into" -c "SELECT to_regclass('site_only') IS NULL") $(q "$into" -c "SELECT string_agg(file_name, ',') FROM omero_upgrade.site_sql")" \
  "t 010_lsid.sql" "… the backup from before the run restored: without the site file's table and record"
like "$(grep -o '<property name="omero.db.name" value="[^"]*"' "$r/OMERO.server/etc/grid/config.xml")" "value=\"$into\"" \
  "… and the server uses it"

done_testing
