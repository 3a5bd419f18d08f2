#!/usr/bin/env bash
# Orphan annotations: our scan and our archived delete against the official-style single DELETE
# (29 chained NOT IN sub-selects, written here as the official delete-ns-orphans rule describes
# it), on the bench fixture (1,000,090 annotations, 3,071,240 links), in one run:
#   - scan:   count(*) of omero_orphans_scan() vs the official WHERE clause (best of 2 each);
#   - delete: omero_orphans_delete(false), and with fast => true, vs the official DELETE, each on
#             its own copy of the database (CREATE DATABASE … TEMPLATE), then a check that all
#             left the same rows.
# Both sides run with work_mem = 256MB: the official NOT IN needs it to hash the 2.3M children of
# imageannotationlink; at the 4MB default that sub-select is re-scanned for every candidate row.
# That default case is shown too, with the official scan stopped after $OFFICIAL_TIMEOUT seconds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
db=omero_bench
bench_db "$db" OMERO5.3__1
# As autovacuum would have done on a live database (visibility map for index-only scans); both sides see the same.
q "$db" -c "VACUUM ANALYZE"
q "$db" -c "CREATE EXTENSION IF NOT EXISTS omero_upgrade"
export PGOPTIONS="-c work_mem=256MB"

tables="annotation channel dataset detector dichroic experimenter experimentergroup fileset filter folder
        image instrument lightpath lightsource namespace node objective originalfile planeinfo
        plateacquisition plate project reagent roi screen session shape well"
where="discriminator IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/', '/basic/term/',
                         '/basic/time/', '/basic/text/comment/')
   AND (ns IS NULL OR ns = '' OR ns LIKE 'openmicroscopy.org/%')"
for t in $tables; do where+=$'\n'"   AND id NOT IN (SELECT child FROM ${t}annotationlink)"; done
where+=$'\n'"   AND id NOT IN (SELECT parent FROM annotationannotationlink)"

n_official=$(q "$db" -c "SELECT count(*) FROM annotation WHERE $where")
n_ours=$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")
echo "bench: $(q "$db" -c "SELECT count(*) FROM annotation") annotations; orphans: official rule $n_official, omero_orphans_scan $n_ours" >&2
[ "$n_official" = "$n_ours" ] || { echo "bench: the two scans disagree" >&2; exit 1; }

plain=$(best_of 2 "$db" "SELECT count(*) FROM annotation WHERE $where")
ours=$(best_of 2 "$db" "SELECT count(*) FROM omero_orphans_scan()")
ratio "orphans scan ($n_ours of 1M annotations, work_mem 256MB)" "$plain" "$ours"

copies="official ours fast"
for c in $copies; do
  q postgres -c "DROP DATABASE IF EXISTS ${db}_orphans_$c"
  q postgres -c "CREATE DATABASE ${db}_orphans_$c TEMPLATE $db"
done
plain=$(time_sql "${db}_orphans_official" "DELETE FROM annotation WHERE $where")
ours=$(time_sql "${db}_orphans_ours" "SET client_min_messages = warning; SELECT * FROM omero_orphans_delete(false)")
fast=$(time_sql "${db}_orphans_fast" "SET client_min_messages = warning; SELECT * FROM omero_orphans_delete(false, fast => true)")
ratio "orphans delete with archive ($n_ours rows, work_mem 256MB)" "$plain" "$ours"
# Where the official DELETE spends its time: PostgreSQL's foreign-key triggers (which the default
# delete pays too; only fast skips them) against the rest. On a copy, rolled back.
q postgres -c "CREATE DATABASE ${db}_orphans_explain TEMPLATE $db"
q "${db}_orphans_explain" -c "EXPLAIN (ANALYZE) DELETE FROM annotation WHERE $where" |
  awk '/^Trigger for constraint/ { n++; for (i = 1; i <= NF; i++) if ($i ~ /^time=/) { sub("time=", "", $i); t += $i } }
       /^Execution Time/ { x = $3 }
       END { printf "bench: official DELETE %.1fs, of which %d foreign-key triggers %.1fs (%.0f%%): a delete keeping them is at most %.2fx faster\n", x / 1000, n, t / 1000, 100 * t / x, x / t }' >&2
q postgres -c "DROP DATABASE ${db}_orphans_explain"
ratio "orphans delete with archive, fast => true ($n_ours rows, work_mem 256MB)" "$plain" "$fast"
left="SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM annotation"
a=$(q "${db}_orphans_official" -c "$left")
for c in ours fast; do
  b=$(q "${db}_orphans_$c" -c "$left")
  archived=$(q "${db}_orphans_$c" -c "SELECT count(*) FROM omero_upgrade.orphan_archive")
  echo "bench: rows left: official $a, $c $b; archived $archived" >&2
  [ "$a" = "$b" ] && [ "$archived" = "$n_ours" ] || { echo "bench: the deletes removed different sets" >&2; exit 1; }
done
for c in $copies; do q postgres -c "DROP DATABASE ${db}_orphans_$c"; done

# At the server's default work_mem (no PGOPTIONS), with the official scan cut off.
unset PGOPTIONS
OFFICIAL_TIMEOUT=${OFFICIAL_TIMEOUT:-60}
ours=$(best_of 2 "$db" "SELECT count(*) FROM omero_orphans_scan()")
t0=$(date +%s.%N)
if psql -X -q -d "$db" -c "SET statement_timeout = '${OFFICIAL_TIMEOUT}s'" -c "SELECT count(*) FROM annotation WHERE $where" >/dev/null 2>&1; then
  plain=$(echo "$(date +%s.%N) - $t0" | bc -l)
  ratio "orphans scan at default work_mem ($(q "$db" -c 'SHOW work_mem'))" "$plain" "$ours"
else
  printf 'ratio orphans scan at default work_mem (%s): >%.0fx (official stopped after %ss, ours %.3fs)\n' \
    "$(q "$db" -c 'SHOW work_mem')" "$(echo "$OFFICIAL_TIMEOUT / $ours" | bc -l)" "$OFFICIAL_TIMEOUT" "$ours"
fi
