#!/bin/bash
# bench/run.sh - `make bench`: runs the benchmarks and writes their report to stdout and to
# BUILD/bench/report.txt. Usage: bench/run.sh ABSOLUTE_BUILD_DIR (the Makefile passes it after
# building BUILD/trib and BUILD/bench/*). Installs what the benchmarks need when missing (serf
# for the federation comparison, nftables for wire byte counters) through deploy/deps.sh.
# Each program stops every process it started and removes its temp dirs, also on Ctrl-C.
# Figures come from one run on whatever machine this is: they are printed, never asserted.
set -u -o pipefail
BUILD=${1:?usage: bench/run.sh ABSOLUTE_BUILD_DIR}
cd "$(dirname "$0")/.." || exit 1
./deploy/deps.sh serf nftables || exit 1
mkdir -p "$BUILD/bench"
REPORT=$BUILD/bench/report.txt
status=0

report() {
  echo "Tributary benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "Machine: $(nproc) cores, $(uname -sr), serf $(serf version 2>/dev/null | head -1)"
  echo "Shared and noisy: every figure and ratio below comes from this one run; none is a unit test."
  echo
  "$BUILD/bench/fed" "$BUILD/trib" ${FED_N:-} || { echo "federation benchmark FAILED (exit $?)"; status=1; }
  # issue 9 item 1: every node publishing at once (FED_CONC="N PER", also "20 500" where the machine allows)
  "$BUILD/bench/fed" "$BUILD/trib" concurrent ${FED_CONC:-10 1000} || { echo "concurrent-publisher benchmark FAILED (exit $?)"; status=1; }
  # issue 9 item 5: a node joining a catalog of DOMAINS x PER entries (FED_CATCHUP)
  "$BUILD/bench/fed" "$BUILD/trib" catchup ${FED_CATCHUP:-100 1000} || { echo "catch-up benchmark FAILED (exit $?)"; status=1; }
  "$BUILD/bench/data" "$BUILD/trib" "$BUILD/bench" || { echo "data benchmark FAILED (exit $?)"; status=1; }
  "$BUILD/bench/publish" "$BUILD/trib" || { echo "publish benchmark FAILED (exit $?)"; status=1; }
  "$BUILD/bench/http_conns" "$BUILD/trib" || { echo "HTTP idle connections benchmark FAILED (exit $?)"; status=1; }
  echo
  echo "== Search (issue 4): bench/search =="
  if [ -x "$BUILD/bench/search" ]; then
    "$BUILD/bench/search" || { echo "search benchmark FAILED (exit $?)"; status=1; }
  else
    echo "  not built (bench/search.c is not there yet)"
  fi
  return $status
}

report | tee "$REPORT"
rc=$?
echo "(report written to $REPORT)" >&2
exit $rc
