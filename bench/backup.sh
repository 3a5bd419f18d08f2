#!/usr/bin/env bash
# omero-upgrade backup (dump + verify + SHA-256 + sync + manifest) against a bare `pg_dump -Fc`
# of the same bench-scale database in the same run (goal: at most 1.1x its time), and
# `backup --jobs 2` (directory format, 2 parallel dumps) against it. Best of BENCH_RUNS (2) runs,
# interleaved. Prints time ratios ours / bare: below 1 means faster than the bare dump.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
db=omero_bench
bench_db "$db" OMERO5.3__1
runs=${BENCH_RUNS:-2}
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: ratios are noisy)" >&2
w=$OU_TMP/bench-backup
rm -rf "$w"; mkdir -p "$w/srv/etc/grid"
cat > "$w/srv/etc/grid/config.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<icegrid>
  <properties id="__ACTIVE__"><property name="omero.config.profile" value="default"/></properties>
  <properties id="default"><property name="omero.db.name" value="$db"/><property name="omero.db.user" value="$PGUSER"/></properties>
</icegrid>
XML
tool=$OU_SRC/tool/omero-upgrade
# secs CMD…: "wall cpu" seconds; cpu = user + system time of the client side (the tool and
# pg_dump), which other load on the shared machine disturbs far less than wall time.
secs() {
  local TIMEFORMAT='%R %U %S' r
  r=$( { time "$@" >/dev/null 2>&1; } 2>&1 ) || { echo "bench: failed: $*" >&2; return 1; }
  echo "$r" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}
bare="" ours="" par="" bare_cpu="" ours_cpu="" par_cpu=""
take() {  # take VAR CMD…: keeps the best wall time (and the cpu time of that run) in VAR, VAR_cpu
  local var=$1 r; shift
  r=$(secs "$@")
  if [ -z "${!var}" ] || [ "$(echo "${r% *} < ${!var}" | bc -l)" = 1 ]; then
    printf -v "$var" '%s' "${r% *}"; printf -v "${var}_cpu" '%s' "${r#* }"
  fi
}
for i in $(seq "$runs"); do
  rm -rf "$w"/bare.pgdump "$w"/bk "$w"/bkj
  # Alternate the order, so that neither side always runs on a warmer cache or a quieter machine.
  if [ $((i % 2)) = 1 ]; then
    take bare pg_dump -Fc -f "$w/bare.pgdump" "$db"
    take ours "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bk"
  else
    take ours "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bk"
    take bare pg_dump -Fc -f "$w/bare.pgdump" "$db"
  fi
  take par "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bkj" --jobs 2
done
size=$(stat -c %s "$w/bare.pgdump")
echo "bench: $db $(q "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database()))"), dump $((size / 1048576)) MiB, best of $runs" >&2
printf 'ratio backup+verify / bare pg_dump -Fc (wall time, goal <= 1.10): %.2fx (pg_dump %.2fs, ours %.2fs)\n' \
  "$(echo "$ours / $bare" | bc -l)" "$bare" "$ours"
printf 'ratio backup+verify / bare pg_dump -Fc (client cpu time): %.2fx (pg_dump %.2fs, ours %.2fs)\n' \
  "$(echo "$ours_cpu / $bare_cpu" | bc -l)" "$bare_cpu" "$ours_cpu"
printf 'ratio backup --jobs 2 (directory) / bare pg_dump -Fc (wall time): %.2fx (pg_dump %.2fs, ours %.2fs)\n' \
  "$(echo "$par / $bare" | bc -l)" "$bare" "$par"
rm -rf "$w"
