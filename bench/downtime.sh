#!/usr/bin/env bash
# The offline window of a whole upgrade (server stop → server start), on two identical copies of
# the bench database (OMERO5.3__1, bench scale) and two identical sample server trees (stub
# bin/omero, the sample upgrade scripts, test/lib/sample-server.sh) upgraded to 5.6.3 / OMERO5.4__0:
#   (a) by hand, the guide's commands in its order: the precheck script and an unverified
#       `pg_dump -Fc` while the server is up, then web stop, admin stop, mv / unzip / ln / cp
#       config.xml, the hop script, the official-style orphan DELETE (bench/orphans.sh's) and the
#       official-style colour UPDATE of every shape (bench/colors.sh's), the cache cleared, the
#       upgrade check turned off, jvmcfg, admin start;
#   (b) `omero-upgrade run --orphans --colors all` (the same optional steps), its window read from
#       its own record (downtime.seconds: from the start of the stop to the end of the start);
#   (c) the same with --online: db-verify, the orphan delete and the colour conversion (by
#       batches) after the server start, with OMERO up.
# Prints each window, the ratio ours / by hand (goal <= 0.5), and where ours spends its window,
# step by step (from the run's state). Both sides run with work_mem = 256MB (the official NOT IN
# needs it: bench/orphans.sh). Each side's total (backup included) is printed too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# sample-server.sh is the tests' builder of server trees; it needs only q and PGHOST/PGPORT.
source "$OU_SRC/test/lib/sample-server.sh"
tool=$OU_SRC/tool/omero-upgrade
db=omero_bench
bench_db "$db" OMERO5.3__1
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: ratios are noisy)" >&2
export PGOPTIONS="-c work_mem=256MB"
w=$OU_TMP/bench-downtime
rm -rf "$w"; mkdir -p "$w"; chmod 777 "$w"
strategy=""
[ "$(q postgres -c "SELECT current_setting('server_version_num')::int >= 150000")" = t ] && strategy="STRATEGY FILE_COPY"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# One side's set-up: ROOT/OMERO.server -> OMERO.server-5.3.5 on database DB (a fresh copy of the
# bench database, with the extension as a site running the tool has it), running;
# ROOT/OMERO.server-5.6.3.zip the new release.
side() {
  local root=$1 d=$2
  q postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null
  q postgres -c "CREATE DATABASE $d TEMPLATE $db $strategy" >/dev/null
  q "$d" -c "CREATE EXTENSION omero_upgrade" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  mkdir -p "$root"
  make_sample_server "$root/OMERO.server-5.3.5" 5.3.5 "$d" "$PGUSER" "$root/data"
  ln -s OMERO.server-5.3.5 "$root/OMERO.server"
  mkdir -p "$root/data/BioFormatsCache/a/b" "$root/data/ManagedRepository"
  for i in $(seq 200); do echo memo > "$root/data/BioFormatsCache/a/b/img$i.tif.bfmemo"; done
  make_sample_server "$root/build/OMERO.server-5.6.3" 5.6.3
  rm "$root/build/OMERO.server-5.6.3/etc/grid/config.xml"
  make_server_zip "$root/build/OMERO.server-5.6.3" "$root/OMERO.server-5.6.3.zip"
  rm -r "$root/build"
  (cd "$root/OMERO.server" && bin/omero admin start >/dev/null)
}

# The official-style optional scripts (our own writing of what the official ones do, as in
# bench/orphans.sh and bench/colors.sh).
tables="annotation channel dataset detector dichroic experimenter experimentergroup fileset filter folder
        image instrument lightpath lightsource namespace node objective originalfile planeinfo
        plateacquisition plate project reagent roi screen session shape well"
orphans_sql="DELETE FROM annotation WHERE discriminator IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/',
  '/basic/term/', '/basic/time/', '/basic/text/comment/') AND (ns IS NULL OR ns = '' OR ns LIKE 'openmicroscopy.org/%')"
for t in $tables; do orphans_sql+=$'\n'"   AND id NOT IN (SELECT child FROM ${t}annotationlink)"; done
orphans_sql+=$'\n'"   AND id NOT IN (SELECT parent FROM annotationannotationlink);"
colors_sql="CREATE FUNCTION pg_temp.argb_to_rgba(c int4) RETURNS int4 LANGUAGE plpgsql AS \$\$
DECLARE a int4; BEGIN
  a := (c >> 24) & 255;
  IF a = 0 THEN a := 255; END IF;
  RETURN ((c & 16777215) << 8) | a;
END \$\$;
UPDATE shape SET fillcolor = CASE WHEN fillcolor IS NOT NULL THEN pg_temp.argb_to_rgba(fillcolor) END,
                 strokecolor = CASE WHEN strokecolor IS NOT NULL THEN pg_temp.argb_to_rgba(strokecolor) END
 WHERE (fillcolor IS NOT NULL OR strokecolor IS NOT NULL) AND (TRUE);"

# --- (a) by hand -------------------------------------------------------------------------------
a=$w/hand
side "$a" omero_bench_hand
p() { psql -X -q -v ON_ERROR_STOP=1 -d omero_bench_hand "$@" >/dev/null; }
ta0=$(now)
(cd "$a" && unzip -q -o OMERO.server-5.6.3.zip 'OMERO.server-5.6.3/sql/*' -d "$w/hand-pre")
p -f "$w/hand-pre/OMERO.server-5.6.3/sql/psql/OMERO5.4__0/OMERO5.3__1-precheck.sql"
pg_dump -Fc -f "$w/hand.pgdump" omero_bench_hand
ta1=$(now)
(
  cd "$a/OMERO.server"
  bin/omero web stop >/dev/null
  bin/omero admin stop >/dev/null
  cd ..
  mv OMERO.server OMERO.server-old
  unzip -q OMERO.server-5.6.3.zip
  ln -s OMERO.server-5.6.3 OMERO.server
  cp OMERO.server-old/etc/grid/config.xml OMERO.server/etc/grid
  cd OMERO.server
  psql -X -q -v ON_ERROR_STOP=1 -d omero_bench_hand -f sql/psql/OMERO5.4__0/OMERO5.3__1.sql >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d omero_bench_hand -c "$orphans_sql" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d omero_bench_hand -c "$colors_sql" >/dev/null
  rm -rf "$a/data/BioFormatsCache"
  bin/omero config set omero.upgrades.url '' >/dev/null
  bin/omero admin jvmcfg >/dev/null
  bin/omero admin start >/dev/null
)
ta2=$(now)
hand=$(secs "$ta1" "$ta2")
[ "$(q omero_bench_hand -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" = OMERO5.4__0 ] \
  || { echo "bench downtime: the hand upgrade did not reach OMERO5.4__0" >&2; exit 1; }

# --- (b), (c) omero-upgrade run ------------------------------------------------------------------
# ours SIDE EXTRA-FLAGS…: runs the tool on a fresh side; sets ours_window, ours_all, ours_state.
ours() {
  local side_dir=$w/$1 d=omero_bench_$1 t0 t1; shift
  side "$side_dir" "$d"
  t0=$(now)
  "$tool" -q --server-dir "$side_dir/OMERO.server" run --new-server "$side_dir/OMERO.server-5.6.3.zip" --orphans --colors all "$@" \
    >"$w/$d.log" 2>&1 || { echo "bench downtime: omero-upgrade run $* failed:" >&2; tail -20 "$w/$d.log" >&2; exit 1; }
  t1=$(now)
  ours_state=$side_dir/.omero-upgrade-run.json
  ours_window=$(jq -r '.downtime.seconds' "$ours_state")
  ours_all=$(secs "$t0" "$t1")
  [ "$(q "$d" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" = OMERO5.4__0 ] \
    || { echo "bench downtime: the run did not reach OMERO5.4__0" >&2; exit 1; }
  # The same work as by hand: the same annotations and shape colours are left.
  for x in "SELECT count(*) FROM annotation" "SELECT md5(string_agg(id || ':' || coalesce(fillcolor, 0) || ':' || coalesce(strokecolor, 0), ',' ORDER BY id)) FROM shape"; do
    [ "$(q omero_bench_hand -c "$x")" = "$(q "$d" -c "$x")" ] \
      || { echo "bench downtime: by hand and run $* left different data ($x)" >&2; exit 1; }
  done
  echo "bench downtime: run $*: window $(printf %.1f "$ours_window") s, all $(printf %.1f "$ours_all") s; where it goes (seconds; * = server down):" >&2
  jq -r '.steps[] | "  \(if .offline then "*" else " " end) \(.id): \(.seconds // 0 | . * 10 | round / 10)"' "$ours_state" >&2
}
ours ours
ours=$ours_window
ours online --online
online=$ours_window
echo "bench downtime: $(q "$db" -c "SELECT count(*) FROM shape") shapes, $(q "$db" -c "SELECT count(*) FROM annotation") annotations;" \
  "by hand: window $(printf %.1f "$hand") s, all $(printf %.1f "$(secs "$ta0" "$ta2")") s" >&2
printf 'ratio offline window, omero-upgrade run / by hand (goal <= 0.50): %.2fx (by hand %.1fs, ours %.1fs)\n' \
  "$(echo "$ours / $hand" | bc -l)" "$hand" "$ours"
printf 'ratio offline window, omero-upgrade run --online / by hand (goal <= 0.50): %.2fx (by hand %.1fs, ours %.1fs)\n' \
  "$(echo "$online / $hand" | bc -l)" "$hand" "$online"
for d in omero_bench_hand omero_bench_ours omero_bench_online; do
  (cd "$w/${d#omero_bench_}/OMERO.server" 2>/dev/null && bin/omero admin stop >/dev/null 2>&1) || true
  q postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null
done
rm -rf "$w"
