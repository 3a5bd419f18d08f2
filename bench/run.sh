#!/usr/bin/env bash
# Runs every benchmark (bench/*.sh, or those named in BENCH="precheck colors") on the throwaway
# cluster of test/with-cluster.sh. Each prints "ratio <what>: <x>" lines: ours against the plain-SQL
# way, measured on the same data in the same run.
set -euo pipefail
: "${OU_TMP:?run me through test/with-cluster.sh (make bench)}"
cd "$(dirname "$0")"
names=${BENCH:-$(for f in *.sh; do [ "$f" = run.sh ] || [ "$f" = lib.sh ] || basename "$f" .sh; done)}
for n in $names; do
  echo "== bench/$n.sh"
  bash "./$n.sh"
done
