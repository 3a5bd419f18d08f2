#!/usr/bin/env bash
# Shape colour conversion against the official way (a plpgsql function and one UPDATE over the
# shapes, our own text), on copies of the bench fixture (2M shapes), all in one run:
#   full:   CALL omero_colors_convert (batches, journal) and omero_colors_rewrite (one-pass
#           rewrite, journal) against the official UPDATE over all shapes;
#   subset: 1% of the ROIs (ours, journal included) against the official UPDATE restricted to
#           the same number of ROIs; and a check that the subset never scans the whole table.
# Every copy starts from the same template; results are compared with each other at the end.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmpl=omero_bench
bench_db "$tmpl" OMERO5.3__1
q "$tmpl" -c "VACUUM ANALYZE shape" >/dev/null
strategy=""
[ "$(q postgres -c "SELECT current_setting('server_version_num')::int >= 150000")" = t ] && strategy="STRATEGY FILE_COPY"
copy() {
  q postgres -c "DROP DATABASE IF EXISTS $1" >/dev/null
  q postgres -c "CREATE DATABASE $1 TEMPLATE $tmpl $strategy" >/dev/null
  q "$1" -c "CREATE EXTENSION omero_upgrade" -c "CHECKPOINT" >/dev/null
}
official_fn="CREATE FUNCTION bench_argb_to_rgba(c int4) RETURNS int4 LANGUAGE plpgsql AS \$\$
DECLARE a int4; BEGIN
  a := (c >> 24) & 255;
  IF a = 0 THEN a := 255; END IF;
  RETURN ((c & 16777215) << 8) | a;
END \$\$"
official_update() {  # WHERE clause: "TRUE" for every shape, or a restriction
  echo "UPDATE shape SET fillcolor = CASE WHEN fillcolor IS NOT NULL THEN bench_argb_to_rgba(fillcolor) END,
                         strokecolor = CASE WHEN strokecolor IS NOT NULL THEN bench_argb_to_rgba(strokecolor) END
         WHERE (fillcolor IS NOT NULL OR strokecolor IS NOT NULL) AND ($1)"
}
shapes=$(q "$tmpl" -c "SELECT count(*) FROM shape")
echo "bench colors: $shapes shapes" >&2

# 1% subsets: ROIs with id % 100 = 7 (official) and = 8 (ours), the same size.
copy cb_sub
q cb_sub -c "$official_fn" >/dev/null
sub7=$(q cb_sub -c "SELECT count(*) FROM shape WHERE roi % 100 = 7")
sub8=$(q cb_sub -c "SELECT count(*) FROM shape WHERE roi % 100 = 8")
echo "bench colors: subsets of $sub7 and $sub8 shapes" >&2
t_off_sub=$(time_sql cb_sub "$(official_update "roi IN (SELECT id FROM roi WHERE id % 100 = 7)")")
q cb_sub -c "CHECKPOINT" >/dev/null
t_our_sub=$(time_sql cb_sub "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 100 = 8);
  BEGIN CALL omero_colors_convert('argb_to_rgba', roi_ids => ids); END \$\$")
# The subset's queries use the shape(roi) and primary key indexes, never a scan of the table.
plan=$(q cb_sub -c "EXPLAIN SELECT id FROM shape WHERE roi = ANY((SELECT array_agg(id) FROM roi WHERE id % 100 = 8)::int8[])"
       q cb_sub -c "EXPLAIN SELECT id, fillcolor FROM shape WHERE id = ANY(ARRAY(SELECT generate_series(1000, 51000, 50))::int8[])")
if grep -q 'Seq Scan on shape' <<<"$plan"; then
  echo "bench colors: WARNING: a subset query scans the whole shape table:" >&2; echo "$plan" >&2
else
  echo "bench colors: subset plans use indexes only (no scan of shape)" >&2
fi

# Full conversion, three ways, each on a fresh copy.
copy cb_off
q cb_off -c "$official_fn" >/dev/null
t_off=$(time_sql cb_off "$(official_update TRUE)")
copy cb_ours
t_ours=$(time_sql cb_ours "CALL omero_colors_convert('argb_to_rgba')")
copy cb_rw
t_rw=$(time_sql cb_rw "SELECT omero_colors_rewrite('argb_to_rgba')")

# Same colours everywhere?
sum() { q "$1" -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape"; }
s_off=$(sum cb_off); s_ours=$(sum cb_ours); s_rw=$(sum cb_rw)
if [ "$s_off" = "$s_ours" ] && [ "$s_off" = "$s_rw" ]; then
  echo "bench colors: check: the three full conversions give the same colours" >&2
else
  echo "bench colors: CHECK FAILED: the full conversions differ ($s_off $s_ours $s_rw)" >&2
  exit 1
fi
journal=$(q cb_ours -c "SELECT pg_size_pretty(pg_total_relation_size('omero_upgrade.color_journal'))")
echo "bench colors: journal of the full batch conversion: $journal" >&2

ratio "colors full conversion, CALL (batches of 50000, journal)" "$t_off" "$t_ours"
ratio "colors full conversion, rewrite fast path (journal)" "$t_off" "$t_rw"
ratio "colors rewrite fast path against our CALL" "$t_ours" "$t_rw"
ratio "colors 1% ROI subset, CALL (journal) vs restricted UPDATE" "$t_off_sub" "$t_our_sub"
for d in cb_sub cb_off cb_ours cb_rw; do q postgres -c "DROP DATABASE $d" >/dev/null; done
