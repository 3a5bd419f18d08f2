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
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; return 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
bare="" ours="" par=""
for i in $(seq "$runs"); do
  rm -rf "$w"/bare.pgdump "$w"/bk "$w"/bkj
  # Alternate the order, so that neither side always runs on a warmer cache or a quieter machine.
  if [ $((i % 2)) = 1 ]; then
    bare=$(min "$bare" "$(secs pg_dump -Fc -f "$w/bare.pgdump" "$db")")
    ours=$(min "$ours" "$(secs "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bk")")
  else
    ours=$(min "$ours" "$(secs "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bk")")
    bare=$(min "$bare" "$(secs pg_dump -Fc -f "$w/bare.pgdump" "$db")")
  fi
  par=$(min "$par" "$(secs "$tool" -q --server-dir "$w/srv" backup --backup-dir "$w/bkj" --jobs 2)")
done
size=$(stat -c %s "$w/bare.pgdump")
echo "bench: $db $(q "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database()))"), dump $((size / 1048576)) MiB, best of $runs" >&2
printf 'ratio backup+verify / bare pg_dump -Fc (time, goal <= 1.10): %.2fx (pg_dump %.2fs, ours %.2fs)\n' \
  "$(echo "$ours / $bare" | bc -l)" "$bare" "$ours"
printf 'ratio backup --jobs 2 (directory) / bare pg_dump -Fc (time): %.2fx (pg_dump %.2fs, ours %.2fs)\n' \
  "$(echo "$par / $bare" | bc -l)" "$bare" "$par"
rm -rf "$w"
