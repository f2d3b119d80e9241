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

# Runs one benchmark; one that stopped because a port of its block was taken after the block was
# checked free (another program bound it meanwhile) is run again on a new block, up to 3 times.
bench() {
  local what=$1 err rc try; shift
  err=$(mktemp)
  for try in 1 2 3; do
    "$@" 2> >(tee "$err" >&2); rc=$?
    wait
    [ $rc -eq 0 ] && break
    grep -qiE 'in use|cannot listen|no free block' "$err" || break
    echo "$what: a port was taken (try $try of 3); again on new ports" >&2
  done
  rm -f "$err"
  [ $rc -eq 0 ] || { echo "$what benchmark FAILED (exit $rc)"; status=1; }
}

report() {
  echo "Tributary benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "Machine: $(nproc) cores, $(uname -sr), serf $(serf version 2>/dev/null | head -1)"
  echo "Shared and noisy: every figure and ratio below comes from this one run; none is a unit test."
  echo
  # issue 9 item 6: idle traffic flat across N = 5, 10, 20, 30 and wire vs Serf at N = 20 (FED_N)
  bench "federation" "$BUILD/bench/fed" "$BUILD/trib" ${FED_N:-5 10 20 30}
  # issue 9 item 1: every node publishing at once (FED_CONC="N PER"), and the item's "also at N = 20 x 500
  # if the machine allows" (FED_CONC20; "" skips it): ~1 min of 20 agents
  bench "concurrent-publisher" "$BUILD/bench/fed" "$BUILD/trib" concurrent ${FED_CONC:-10 1000}
  [ -n "${FED_CONC20-20 500}" ] && bench "concurrent-publisher N=20" "$BUILD/bench/fed" "$BUILD/trib" concurrent ${FED_CONC20-20 500}
  # issue 9 item 5: a node joining a catalog of DOMAINS x PER entries (FED_CATCHUP)
  bench "catch-up" "$BUILD/bench/fed" "$BUILD/trib" catchup ${FED_CATCHUP:-100 1000}
  # issue 10: the same N nodes open and chartered, FED_CHARTER_ROUNDS rounds (join, publish reach-all; ratio chartered/open);
  # 9 rounds here: at 3 the median of membership alone swung 1.01-1.28x between runs on an idle machine
  FED_CHARTER_ROUNDS=${FED_CHARTER_ROUNDS:-9} bench "chartered" "$BUILD/bench/fed" "$BUILD/trib" chartered ${FED_CHARTER_N:-20}
  bench "data" "$BUILD/bench/data" "$BUILD/trib" "$BUILD/bench"
  # issue 9 item 7 groundwork: the data link (Noise IK; AESGCM or ChaChaPoly frames, as the CPU picks) beside plain TCP on loopback (LINK_MB, LINK_ROUNDS)
  bench "data link" "$BUILD/bench/link" ${LINK_MB:-100} ${LINK_ROUNDS:-3}
  # issue 9 item 1: an owner that served 60 data links at once gives the memory back once they idle (RssAnon)
  bench "link memory" "$BUILD/bench/linkmem" "$BUILD/trib"
  bench "publish" "$BUILD/bench/publish" "$BUILD/trib"
  # issue 12: publish with a compatibility check against 20 earlier versions beside one with none; COMBINED:
  # with the 50-rule policy set too, in the same run (target <= 1.5x); the change log fill at open
  bench "publish gate" "$BUILD/bench/gate" ${GATE_K:-50}
  bench "HTTP idle connections" "$BUILD/bench/http_conns" "$BUILD/trib"
  # issue 10 groundwork: verifying 1,000 domain certificates and 10,000 manifests at bootstrap
  bench "trust bootstrap" "$BUILD/bench/trust"
  # issue 10: a revocation submitted to one node reaches all N (REVOKE_N="N ROUNDS", 20 nodes by default)
  bench "revocation reach" "$BUILD/bench/revoke" "$BUILD/trib" ${REVOKE_N:-20 20}
  # issue 11 groundwork: token verification against the Ed25519 verify rate
  bench "token" "$BUILD/bench/token" 20000 "$BUILD/trib"
  # issue 11 items 4, 5: the grant lookup and field projection a confidential read adds on the owner
  bench "grants" "$BUILD/bench/grants" 10000
  # issue 12: publish with a 50-rule policy set beside none, and a re-check of 10,000 products (POLICY_N)
  bench "policy" "$BUILD/bench/policy" "$BUILD/trib"
  # loopcost: a member snapshot on the gossip loop (MEMBERS CERTS); a search with a token over restricted products
  bench "member snapshot" "$BUILD/bench/roster" 1000 10000
  bench "restricted search" "$BUILD/bench/hidden" 10000 2000 20
  # what people see at company scale: UI pages, searches, status, metrics, the compliance report and the
  # CLI over DOMAINS x PER realistic products (PEOPLE_SIZE="100 300"; "100 1000" is the 100,000 of issue 9)
  bench "people at scale" "$BUILD/bench/people" "$BUILD/trib" "$BUILD/bench" ${PEOPLE_SIZE:-100 300}
  echo
  # issue 9 item 8: N = 1,000 real replicas (tests/test_replicate_sim.c over tests/sim_net, simulated
  # clock), 10 publishers x 100 entries in 5 s, 1 % loss, beside the Serf/memberlist model (~2 min)
  echo "== Replication at N = ${REPLSIM_N:-1000}, simulated (issue 9 item 8): every replica's own code, simulated network =="
  local sim rc
  sim=$(REPLSIM_N=${REPLSIM_N:-1000} "$BUILD/tests/test_replicate_sim" --filter 'replicate_sim/thousand*' 2>&1); rc=$?
  grep '^scale:' <<<"$sim" | sed 's/^scale: /  /'
  if [ $rc -ne 0 ] || ! grep -q '^scale: N=' <<<"$sim"; then
    echo "replication simulation FAILED (exit $rc)"; grep -v '^scale' <<<"$sim" | tail -5; status=1
  fi
  echo
  echo "== Web UI (issue 13): time to first results with ${UI_PRODUCTS:-10000} products =="
  if ./tests/ui/setup.sh; then
    TRIB="$BUILD/trib" node tests/ui/bench.mjs || { echo "web UI benchmark FAILED (exit $?)"; status=1; }
  else
    echo "web UI benchmark FAILED: tests/ui/setup.sh could not install chromium or playwright-core"; status=1
  fi
  echo
  echo "== Search (issue 4): bench/search =="
  if [ -x "$BUILD/bench/search" ]; then
    "$BUILD/bench/search" || { echo "search benchmark FAILED (exit $?)"; status=1; }
  else
    echo "  not built (bench/search.c is not there yet)"
  fi
  echo
  echo "== Federation burst vs the gossip loop (durable commits off the loop): bench/fedcommit =="
  "$BUILD/bench/fedcommit" 500 3 2>/dev/null || { echo "fedcommit benchmark FAILED (exit $?)"; status=1; }
  return $status
}

report | tee "$REPORT"
rc=$?
echo "(report written to $REPORT)" >&2
exit $rc
