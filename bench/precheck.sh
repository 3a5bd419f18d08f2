#!/usr/bin/env bash
# omero_precheck() (with its one-pass SV5 scan) against the same checks done the way the
# official precheck scripts do them (plpgsql assertions; for SV5 a materialised view, an index
# and one lookup per row), on a bench-scale OMERO5.3__0 database grown to 1,000,000 original files.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
db=omero_bench_precheck
bench_db "$db" OMERO5.3__0
q "$db" -c "CREATE EXTENSION IF NOT EXISTS omero_upgrade"
n=$(q "$db" -c "SELECT count(*) FROM originalfile")
if [ "$n" -lt 1000000 ]; then
  # More managed-repository files, in the path layout OMERO uses: user_group/yyyy-mm/dd/hh-mm-ss.sss/
  q "$db" -c "
    INSERT INTO originalfile (id, permissions, repo, path, name, mimetype, hash, hasher, size, mtime, version,
                              creation_id, group_id, owner_id, update_id)
    SELECT 10000000 + i, -40, '8d0c57a3-9ab3-4bea-a014-828f07b5dfdb',
           'user_' || (i % 50) || '/2018-' || lpad((1 + i % 12)::text, 2, '0') || '/' || lpad((1 + i % 28)::text, 2, '0')
             || '/' || (i / 100) || '/',
           'plane_' || i || '.tif', 'image/tiff', md5(i::text), NULL, i, now(), 0, 2, 4, 2, 2
      FROM generate_series(1, 1000000 - $n) AS i;
    ANALYZE originalfile;"
fi
echo "bench: $(q "$db" -c "SELECT count(*) FROM originalfile") original files" >&2

# The plain-SQL way: the checks as the official scripts write them (our own text), in BEGIN … ROLLBACK.
cat > "$OU_TMP/precheck-plain.sql" <<'SQL'
BEGIN;
CREATE FUNCTION pg_temp.assert_version(v varchar, p int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE cv varchar; cp int;
BEGIN
    SELECT currentversion, currentpatch INTO STRICT cv, cp FROM dbpatch ORDER BY id DESC LIMIT 1;
    IF cv <> v OR cp <> p THEN RAISE EXCEPTION 'wrong OMERO database version for this upgrade script'; END IF;
END $$;
SELECT pg_temp.assert_version('OMERO5.3', 0);
CREATE FUNCTION pg_temp.assert_server(prereq int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n int; e text;
BEGIN
    SELECT setting::int INTO STRICT n FROM pg_settings WHERE name = 'server_version_num';
    SELECT pg_encoding_to_char(encoding) INTO STRICT e FROM pg_database WHERE datname = current_database();
    IF n < prereq THEN RAISE EXCEPTION 'PostgreSQL database server version too old'; END IF;
    IF e <> 'UTF8' THEN RAISE EXCEPTION 'OMERO database character encoding must be UTF8, not %', e; END IF;
END $$;
SELECT pg_temp.assert_server(90300);
CREATE MATERIALIZED VIEW bench_fp(id, repo, filepath) AS
    SELECT id, repo, regexp_split_to_array('/' || path || name || '/', '/+') FROM originalfile WHERE repo IS NOT NULL;
CREATE INDEX ON bench_fp (repo, filepath);
CREATE FUNCTION pg_temp.assert_no_duplicates() RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record; ids bigint[];
BEGIN
    FOR r IN SELECT * FROM bench_fp LOOP
        ids := ARRAY(SELECT id FROM bench_fp WHERE repo = r.repo AND filepath = r.filepath);
        IF array_length(ids, 1) > 1 THEN RAISE EXCEPTION 'duplicate original file paths with IDs %', ids; END IF;
    END LOOP;
END $$;
SELECT pg_temp.assert_no_duplicates();
SELECT 'YOUR DATABASE IS READY FOR UPGRADE TO VERSION OMERO5.4__0';
ROLLBACK;
SQL
plain_run() {
  local t0 t1
  t0=$(date +%s.%N)
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$OU_TMP/precheck-plain.sql" >/dev/null || return 1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
plain=""
for _ in 1 2 3; do
  t=$(plain_run) || { echo "bench: the plain-SQL precheck failed" >&2; exit 1; }
  if [ -z "$plain" ] || [ "$(echo "$t < $plain" | bc -l)" = 1 ]; then plain=$t; fi
done
ours=$(best_of 3 "$db" "SET client_min_messages = warning; SELECT omero_precheck('OMERO5.4__0')")
scan=$(best_of 3 "$db" "SELECT count(*) FROM omero_filename_trace_2017_sv5()")
ratio "precheck 5.3__0→5.4__0 with SV5 scan, 1M files (official-style / omero_precheck)" "$plain" "$ours"
ratio "SV5 scan alone (official-style precheck / omero_filename_trace_2017_sv5)" "$plain" "$scan"
