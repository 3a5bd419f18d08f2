# Minimal TAP for bash test scripts (test/tool/*.t, run by prove). Source it, then:
#   ok COND_EXIT_STATUS "name"      is "$got" "$want" "name"      like "$got" "regex" "name"
#   unlike "$got" "regex" "name"    diag "text"                   done_testing
# Each test runs with the environment of test/with-cluster.sh (PGHOST, PGPORT, OU_TMP, …).
_tap_n=0
_tap_failed=0
ok() {
  local status=$1 name=$2
  _tap_n=$((_tap_n + 1))
  if [ "$status" -eq 0 ]; then echo "ok $_tap_n - $name"; else echo "not ok $_tap_n - $name"; _tap_failed=$((_tap_failed + 1)); fi
}
is() {
  local got=$1 want=$2 name=$3
  if [ "$got" == "$want" ]; then ok 0 "$name"; else ok 1 "$name"; diag "got:  '$got'"; diag "want: '$want'"; fi
}
like() {
  local got=$1 re=$2 name=$3
  if [[ $got =~ $re ]]; then ok 0 "$name"; else ok 1 "$name"; diag "got:  '${got:0:2000}'"; diag "want match: $re"; fi
}
unlike() {
  local got=$1 re=$2 name=$3
  if [[ $got =~ $re ]]; then ok 1 "$name"; diag "got:  '${got:0:2000}'"; diag "want no match: $re"; else ok 0 "$name"; fi
}
diag() { echo "# $*" | sed '2,$s/^/# /'; }
done_testing() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# Project helpers.
OU_SRC=${OU_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TOOL=$OU_SRC/tool/omero-upgrade
# A fresh OMERO-shaped database: fixture_db NAME [omero-fixture options…]
fixture_db() { "$OU_SRC/test/fixture/omero-fixture" "$@" >/dev/null; }
# psql on a database, quiet, tuples only, errors stop it.
q() { local db=$1; shift; psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# A fresh scratch dir below $OU_TMP, writable by the server user too.
scratch() { local d; d=$(mktemp -d "$OU_TMP/t.XXXXXX"); chmod 777 "$d"; echo "$d"; }
# Cumulative statistics (pg_stat_user_tables and friends): before PostgreSQL 15 a backend sends
# them to the stats collector asynchronously, so a reading made just after the command may not
# show it yet. q_stats DB WANT SQL... polls (new session each time, up to 10 s) until the query
# prints WANT, then prints what it last read (so `is` still reports a real mismatch).
q_stats() {
  local db=$1 want=$2 got i; shift 2
  for i in $(seq 1 50); do
    got=$(q "$db" "$@")
    [ "$got" = "$want" ] && break
    sleep 0.2
  done
  printf '%s\n' "$got"
}
