#!/bin/sh
# tests/ui/run.sh - the web UI tests (tests/ui/*.test.mjs) with Node's test runner, after setup.sh
# has installed what is missing. TRIB names the agent binary (default build/trib). One file at a
# time (each starts its own nodes; Debian 12's Node 18 has no --test-concurrency), then one TAP
# summary for all ("# pass N", "# fail N", "# cancelled N", "# skipped N"): what tests/run.sh counts.
set -eu
cd "$(dirname "$0")"
./setup.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
for f in ui.test.mjs a11y.test.mjs scale.test.mjs; do
  node --test --test-reporter=tap "$f" >"$out" 2>&1 || rc=1
  cat "$out"
  for k in pass fail cancelled skipped; do
    n=$(sed -n "s/^# $k \([0-9]*\)\$/\1/p" "$out" | tail -n 1)
    eval "sum_$k=\$(( \${sum_$k:-0} + ${n:-0} ))"
  done
done
echo "# all UI test files"
for k in pass fail cancelled skipped; do
  eval "echo \"# $k \${sum_$k:-0}\""
done
exit $rc
