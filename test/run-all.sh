#!/usr/bin/env bash
# Runs every test against the throwaway cluster of test/with-cluster.sh:
#   1. the extension's pg_regress suite (test/sql/*.sql against test/expected/*.out)
#   2. the tool and end-to-end tests, test/tool/*.t (TAP, run by prove)
# and ends with the line "N passed, N failed" (exit status 1 when anything failed).
# Everything it writes goes to $OU_TMP, never into the checkout.
# Optional: TESTS="precheck colors" limits pg_regress (TESTS=- skips it), TAP="test/tool/10-check.t" limits prove (TAP=- skips it).
set -uo pipefail
: "${OU_TMP:?run me through test/with-cluster.sh}"
src=${OU_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"
PG_CONFIG=${PG_CONFIG:-pg_config}
pg_regress=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress
passed=0
failed=0
echo "run-all: testing on PostgreSQL $(psql -X -A -t -c 'SELECT version()')"

# 1. pg_regress, as the server user, output in its own temp dir. Its inputs are copied there
#    too: the server user may not be able to read a root-owned checkout.
if [ "${TESTS:-}" != "-" ]; then
outdir=$OU_TMP/regress
rsrc=$OU_TMP/regress-src
mkdir -p "$outdir" "$rsrc/test" && chmod 777 "$outdir"
cp -r test/sql test/expected test/fixture "$rsrc/test/" && chmod -R a+rX "$rsrc"
if [ -n "${TESTS:-}" ]; then
  tests=$TESTS
else
  tests=$(for f in test/sql/*.sql; do basename "$f" .sql; done)
fi
# shellcheck disable=SC2086
(cd "$rsrc" && $OU_RUNAS "$pg_regress" --inputdir=test --outputdir="$outdir" --bindir="$("$PG_CONFIG" --bindir)" \
  --dbname=omero_regress $tests) 2>&1 | tee "$OU_TMP/regress.log"
n_ok=$(grep -cE '^(ok|test|     ).* \.\.\. ok|^ok [0-9]+' "$OU_TMP/regress.log" || true)
n_bad=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+' "$OU_TMP/regress.log" || true)
if [ -f "$outdir/regression.diffs" ]; then
  echo "---- regression.diffs ----"
  head -c 20000 "$outdir/regression.diffs"
fi
if [ "$((n_ok + n_bad))" -eq 0 ]; then
  echo "pg_regress ran no test" >&2
  n_bad=1
fi
passed=$((passed + n_ok))
failed=$((failed + n_bad))
fi

# 2. TAP tests of the tool and end to end
shopt -s nullglob
if [ "${TAP:-}" = "-" ]; then taps=(); else taps=(${TAP:-test/tool/*.t}); fi
if [ ${#taps[@]} -gt 0 ]; then
  prove ${PROVE_FLAGS:-} --exec bash --timer "${taps[@]}" 2>&1 | tee "$OU_TMP/prove.log"
  t_total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$OU_TMP/prove.log" | tail -1)
  t_bad=$(sed -nE 's/.*Failed ([0-9]+)\/[0-9]+ subtests.*/\1/p' "$OU_TMP/prove.log" | awk '{s+=$1} END {print s+0}')
  # A script that died or planned wrong counts as one failure even when no subtest failed.
  t_died=$(grep -cE '^\S+\.t\s+\(Wstat: [1-9]|Bad plan|No plan found|Parse errors' "$OU_TMP/prove.log" || true)
  [ "$t_bad" -eq 0 ] && t_bad=$t_died
  t_total=${t_total:-0}
  [ "$t_bad" -gt "$t_total" ] && t_total=$t_bad
  passed=$((passed + t_total - t_bad))
  failed=$((failed + t_bad))
fi

echo "on PostgreSQL $(psql -X -A -t -c 'SHOW server_version' 2>/dev/null || echo '(server not answering)') (pg_config: $PG_CONFIG)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
