# Helpers for bench/*.sh (sourced). Timing is wall-clock, best of N runs, in one process per run.
OU_SRC=${OU_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
q() { local db=$1; shift; psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# seconds SQL…: wall time of running the SQL through psql (fractional seconds)
time_sql() {
  local db=$1 sql=$2 t0 t1
  t0=$(date +%s.%N)
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "$sql" >/dev/null 2>&1 || { echo "bench: failed: $sql" >&2; return 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
# best of N runs: best_of N DB SQL
best_of() {
  local n=$1 db=$2 sql=$3 best="" t
  for _ in $(seq "$n"); do
    t=$(time_sql "$db" "$sql") || exit 1
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
ratio() { printf 'ratio %s: %.2fx (plain SQL %.3fs, ours %.3fs)\n' "$1" "$(echo "$2 / $3" | bc -l)" "$2" "$3"; }
# A bench-scale fixture database, built once per run and shared by the benchmarks.
bench_db() {
  local name=${1:-omero_bench} version=${2:-OMERO5.3__1}; shift $(( $# < 2 ? $# : 2 ))
  if [ "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$name'")" = 0 ]; then
    echo "bench: building $name ($version, bench scale)…" >&2
    "$OU_SRC/test/fixture/omero-fixture" "$name" --version "$version" --scale bench "$@" >&2
  fi
}
