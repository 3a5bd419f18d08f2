#!/usr/bin/env bash
# Shape colour conversion against the official way (a plpgsql function and one UPDATE over the
# shapes, our own text), on copies of the bench fixture (2M shapes), all in one run:
#   full:   CALL omero_colors_convert by batches (method 'batch': what it does while OMERO runs)
#           and by default with the database to itself (method 'auto': the one-pass rewrite, as
#           with the server stopped), both journaled, against the official UPDATE over all shapes;
#   subset: 1% of the ROIs (ours, journal included) against the official UPDATE restricted to
#           the same number of ROIs: on the original table (empty journal), and reversed after the
#           full conversions (our journal then holds every shape); the plans of our real statements
#           (auto_explain, as NOTICEs) must not scan the shape table.
# Every copy starts from the same template; results are compared with each other at the end.
# COLORS_ONLY=batches runs only every shape by batches: the official UPDATE, jobs => 1 and
# jobs => 2, COLORS_RUNS rounds (min/median/max), e.g.
#   BENCH=colors COLORS_ONLY=batches COLORS_RUNS=3 make bench
# COLORS_ONLY=subset-after-full runs only that part (the official and our full conversion by
# batches, then the two reverses and the plans of ours), e.g.
#   BENCH=colors COLORS_ONLY=subset-after-full make bench
# BENCH_SHAPES=10000000: first grows a copy of the template to that many shapes (copies of its
# shapes under new ids, in the same ROIs), and runs everything on it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmpl=omero_bench
bench_db "$tmpl" OMERO5.3__1
if [ -n "${BENCH_SHAPES:-}" ]; then
  big=omero_bench_${BENCH_SHAPES}
  if [ "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$big'")" = 0 ]; then
    echo "bench colors: growing a copy of $tmpl to $BENCH_SHAPES shapes…" >&2
    q postgres -c "CREATE DATABASE $big TEMPLATE $tmpl" >/dev/null
    # Every column copied, but new ids and ROI positions (shape(roi, roi_index) is unique).
    cols=$(q "$big" -c "SELECT string_agg(CASE attname WHEN 'id' THEN 's.id + g.k * m.top' WHEN 'roi_index'
                          THEN 's.roi_index + g.k * 100000' ELSE 's.' || quote_ident(attname) END, ', ' ORDER BY attnum)
                          FROM pg_attribute WHERE attrelid = 'shape'::regclass AND attnum > 0 AND NOT attisdropped")
    q "$big" -c "ALTER TABLE shape DISABLE TRIGGER ALL" \
      -c "INSERT INTO shape SELECT $cols FROM (SELECT max(id) AS top, count(*) AS n FROM shape) m
            CROSS JOIN generate_series(1, ceil($BENCH_SHAPES::numeric / m.n)::int - 1) g(k)
            JOIN shape s ON s.id <= m.top AND (g.k * m.n + s.id) <= $BENCH_SHAPES" \
      -c "ALTER TABLE shape ENABLE TRIGGER ALL" >/dev/null
  fi
  tmpl=$big
fi
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

only=${COLORS_ONLY:-}
case "$only" in ""|subset-after-full|batches) ;; *) echo "bench colors: unknown COLORS_ONLY=$only (subset-after-full, batches)" >&2; exit 2 ;; esac

# Every shape by batches (what runs while OMERO is up): the official UPDATE, our CALL with
# jobs => 1 and with jobs => 2 (two background workers), each on a fresh copy, COLORS_RUNS times
# (default 1) in turn; min/median/max of the ratios against the official UPDATE of the same round.
stats() { sort -g | awk '{a[NR] = $1} END {printf "min %.2fx, median %.2fx, max %.2fx over %d run(s)", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR], NR}'; }
by_batches() {
  local runs=${COLORS_RUNS:-1} r j1=() j2=() t_o t_1 t_2 s_o s_1 s_2
  for r in $(seq "$runs"); do
    copy cb_b_off
    q cb_b_off -c "$official_fn" >/dev/null
    t_o=$(time_sql cb_b_off "$(official_update TRUE)")
    copy cb_b_1
    t_1=$(time_sql cb_b_1 "CALL omero_colors_convert('argb_to_rgba', method => 'batch')")
    copy cb_b_2
    t_2=$(time_sql cb_b_2 "CALL omero_colors_convert('argb_to_rgba', method => 'batch', jobs => 2)")
    s_o=$(q cb_b_off -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape")
    s_1=$(q cb_b_1 -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape")
    s_2=$(q cb_b_2 -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape")
    j_1=$(q cb_b_1 -c "SELECT md5(string_agg(concat_ws('|', lo_id, hi_id, shape_ids, fill_before, stroke_before), ';' ORDER BY lo_id)) FROM omero_upgrade.color_journal")
    j_2=$(q cb_b_2 -c "SELECT md5(string_agg(concat_ws('|', lo_id, hi_id, shape_ids, fill_before, stroke_before), ';' ORDER BY lo_id)) FROM omero_upgrade.color_journal")
    if [ "$s_o" != "$s_1" ] || [ "$s_o" != "$s_2" ] || [ "$j_1" != "$j_2" ]; then
      echo "bench colors: CHECK FAILED: by batches, jobs => 1 and jobs => 2 and the official UPDATE differ" >&2
      exit 1
    fi
    printf 'bench colors: by batches, round %d: official %.2fs, jobs 1 %.2fs (%.2fx), jobs 2 %.2fs (%.2fx), jobs 2 vs jobs 1 %.2fx\n' \
      "$r" "$t_o" "$t_1" "$(echo "$t_o / $t_1" | bc -l)" "$t_2" "$(echo "$t_o / $t_2" | bc -l)" "$(echo "$t_1 / $t_2" | bc -l)" >&2
    j1+=("$(echo "$t_o / $t_1" | bc -l)")
    j2+=("$(echo "$t_o / $t_2" | bc -l)")
    for d in cb_b_off cb_b_1 cb_b_2; do q postgres -c "DROP DATABASE $d" >/dev/null; done
  done
  echo "bench colors: check: by batches, jobs => 1, jobs => 2 and the official UPDATE give the same colours, both journals the same" >&2
  ratio "colors full conversion by batches, jobs => 1 (last round)" "$t_o" "$t_1"
  ratio "colors full conversion by batches, jobs => 2 (last round)" "$t_o" "$t_2"
  echo "ratio colors by batches jobs => 1 vs official: $(printf '%s\n' "${j1[@]}" | stats)"
  echo "ratio colors by batches jobs => 2 vs official: $(printf '%s\n' "${j2[@]}" | stats)"
}
if [ "$only" = batches ]; then
  by_batches
  exit 0
fi
# The plans of every statement a subset conversion runs (auto_explain, sent back as NOTICEs), on
# another 1% of the ROIs: none may read the whole shape table. $1: database, $2: direction; $3
# "analyze": also print the journal lookup of the ROI statement as run (EXPLAIN ANALYZE).
check_plans() {
  local plans analyze=off
  [ -n "${3:-}" ] && analyze=on
  plans=$(psql -X -q -d "$1" -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
            -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_level = notice" \
            -c "SET auto_explain.log_analyze = $analyze" -c "SET auto_explain.log_buffers = $analyze" \
            -c "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 100 = 9);
                BEGIN CALL omero_colors_convert('$2', roi_ids => ids); END \$\$" 2>&1 >/dev/null)
  if grep -q 'Seq Scan on shape' <<<"$plans"; then
    echo "bench colors: WARNING: a statement of the $2 subset on $1 scans the whole shape table:" >&2
    grep -B30 'Seq Scan on shape' <<<"$plans" | head -60 >&2
  else
    echo "bench colors: the $2 subset on $1 ran $(grep -c 'Query Text' <<<"$plans") statements, none scanning shape" >&2
  fi
  if [ -n "${3:-}" ]; then
    echo "bench colors: the journal lookup and the update of the $2 subset on $1 (EXPLAIN ANALYZE, as run):" >&2
    awk '/Query Text: WITH ids AS MATERIALIZED/ {p = 1} p && /CTE ins/ {p = 0} p' <<<"$plans" |
      grep -E 'Execution Time|actual time=[0-9.]+\.\.[0-9.]+ rows=1 loops=1\)$|CTE (ids|k|a|w)$|Bitmap Heap Scan on shape|(Index|Bitmap Index) Scan on (shape|color_journal)|Index Cond: \(\(lo_id|Bitmap Heap Scan on color_journal|color_journal_pick|Sort \(|Update on shape|Tid Scan|TID Cond|Heap Blocks|Buffers' |
      sed 's/^/    /' | cut -c1-160 >&2
  fi
}

if [ "$only" != subset-after-full ]; then
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
check_plans cb_sub argb_to_rgba
fi

# Full conversion, three ways, each on a fresh copy.
copy cb_off
q cb_off -c "$official_fn" >/dev/null
t_off=$(time_sql cb_off "$(official_update TRUE)")
copy cb_ours
t_ours=$(time_sql cb_ours "CALL omero_colors_convert('argb_to_rgba', method => 'batch')")
if [ "$only" != subset-after-full ]; then
copy cb_ours2
t_ours2=$(time_sql cb_ours2 "CALL omero_colors_convert('argb_to_rgba', method => 'batch', jobs => 2)")
copy cb_rw
t_rw=$(time_sql cb_rw "CALL omero_colors_convert('argb_to_rgba')")
[ "$(q cb_rw -c "SELECT method FROM omero_upgrade.color_runs")" = rewrite ] ||
  { echo "bench colors: CHECK FAILED: the default CALL did not take the one-pass rewrite" >&2; exit 1; }
# The same rewrite with PostgreSQL's parallel index builds off (the caller's 0 is raised by ours:
# a session whose max_parallel_workers is 0 caps them at 0).
copy cb_rw0
t_rw0=$(PGOPTIONS="-c max_parallel_workers=0 -c max_parallel_maintenance_workers=0" time_sql cb_rw0 "CALL omero_colors_convert('argb_to_rgba')")
q postgres -c "DROP DATABASE cb_rw0" >/dev/null
fi

# 1% subsets reversed after the full conversions: the official reverse restricted to ROIs % 100 = 7
# (after the official full conversion), ours on ROIs % 100 = 8 (after our CALL: the journal holds
# every shape, and the subset's originals come back from it). Both tables vacuumed first, as
# autovacuum would have after converting every row.
q cb_off -c "VACUUM ANALYZE shape" -c "CHECKPOINT" >/dev/null
q cb_ours -c "VACUUM ANALYZE shape" -c "CHECKPOINT" >/dev/null
q cb_off -c "CREATE FUNCTION bench_rgba_to_argb(c int4) RETURNS int4 LANGUAGE plpgsql AS \$\$
  BEGIN RETURN ((c & 255) << 24) | ((c >> 8) & 16777215); END \$\$" >/dev/null
t_off_rev=$(time_sql cb_off "UPDATE shape SET fillcolor = CASE WHEN fillcolor IS NOT NULL THEN bench_rgba_to_argb(fillcolor) END,
                                strokecolor = CASE WHEN strokecolor IS NOT NULL THEN bench_rgba_to_argb(strokecolor) END
                           WHERE (fillcolor IS NOT NULL OR strokecolor IS NOT NULL) AND roi IN (SELECT id FROM roi WHERE id % 100 = 7)")
t_our_rev=$(time_sql cb_ours "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 100 = 8);
  BEGIN CALL omero_colors_convert('rgba_to_argb', roi_ids => ids); END \$\$")
check_plans cb_ours rgba_to_argb analyze
# Back to the originals, exactly (ROIs % 100 = 8 and 9): compared with the template.
sub_sum() { q "$1" -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape WHERE roi % 100 IN (8, 9)"; }
if [ "$(sub_sum cb_ours)" = "$(sub_sum "$tmpl")" ]; then
  echo "bench colors: check: the reversed subsets hold their exact original colours" >&2
else
  echo "bench colors: CHECK FAILED: the reversed subsets differ from the originals" >&2
  exit 1
fi

if [ "$only" = subset-after-full ]; then
  ratio "colors 1% ROI subset reversed after a full conversion (journal of every shape) vs restricted UPDATE" "$t_off_rev" "$t_our_rev"
  for d in cb_off cb_ours; do q postgres -c "DROP DATABASE $d" >/dev/null; done
  exit 0
fi
# Same colours everywhere?
# (ROIs % 100 in 7, 8, 9 were reversed above, each in one copy only.)
sum() { q "$1" -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor), ';' ORDER BY id)) FROM shape WHERE roi % 100 NOT IN (7, 8, 9)"; }
s_off=$(sum cb_off); s_ours=$(sum cb_ours); s_rw=$(sum cb_rw); s_ours2=$(sum cb_ours2)
if [ "$s_off" = "$s_ours" ] && [ "$s_off" = "$s_rw" ] && [ "$s_off" = "$s_ours2" ]; then
  echo "bench colors: check: the four full conversions give the same colours" >&2
else
  echo "bench colors: CHECK FAILED: the full conversions differ ($s_off $s_ours $s_rw)" >&2
  exit 1
fi
journal=$(q cb_ours -c "SELECT pg_size_pretty(pg_total_relation_size('omero_upgrade.color_journal')) || ' in ' || count(*) || ' chunks' FROM omero_upgrade.color_journal")
echo "bench colors: journal of the full batch conversion: $journal" >&2

ratio "colors full conversion, CALL with the database to itself (auto: one-pass rewrite, journal)" "$t_off" "$t_rw"
ratio "colors full conversion, CALL by batches of 50000 while OMERO could run (journal)" "$t_off" "$t_ours"
ratio "colors full conversion, CALL by batches of 50000, jobs => 2 (two background workers)" "$t_off" "$t_ours2"
ratio "colors one-pass rewrite against our batches" "$t_ours" "$t_rw"
ratio "colors one-pass rewrite, parallel index builds against none" "$t_rw0" "$t_rw"
ratio "colors 1% ROI subset, CALL (journal) vs restricted UPDATE" "$t_off_sub" "$t_our_sub"
ratio "colors 1% ROI subset reversed after a full conversion (journal of every shape) vs restricted UPDATE" "$t_off_rev" "$t_our_rev"
for d in cb_sub cb_off cb_ours cb_ours2 cb_rw; do q postgres -c "DROP DATABASE $d" >/dev/null; done
