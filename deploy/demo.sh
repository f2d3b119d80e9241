#!/bin/sh
# `make demo`: starts a node on a temporary data dir, publishes the example products, appends
# sample records, and shows what a user sees. Stops the node at the end or on Ctrl-C.
# Usage: deploy/demo.sh PATH/TO/trib
set -eu
TRIB=${1:-build/trib}
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/trib-demo-XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { # a free loopback port
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + $$ % 20000))
}
wait_up() { # URL
  i=0
  until curl -fsS "$1/v1/status" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "node at $1 did not come up; its log:"; cat "$work"/*.log; exit 1; }
    sleep 0.05
  done
}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

HTTP=$(port); PEER=$(port)
export TRIB_NODE="http://127.0.0.1:$HTTP"
echo "== starting the payments team's node (data in $work/payments, log in $work/payments.log)"
"$TRIB" agent --data "$work/payments" --domain payments --http "127.0.0.1:$HTTP" --listen "127.0.0.1:$PEER" \
  2>"$work/payments.log" &
pids="$!"
wait_up "$TRIB_NODE"

step trib publish examples/settled-transactions.yaml
"$TRIB" publish examples/settled-transactions.yaml
step trib publish examples/payment-disputes.yaml
"$TRIB" publish examples/payment-disputes.yaml
step trib put payments/settled-transactions examples/settled-transactions.ndjson
"$TRIB" put payments/settled-transactions examples/settled-transactions.ndjson
step trib put payments/payment-disputes examples/payment-disputes.ndjson
"$TRIB" put payments/payment-disputes examples/payment-disputes.ndjson
step trib products
"$TRIB" products
step trib show payments/settled-transactions
"$TRIB" show payments/settled-transactions
step trib get payments/settled-transactions --from 1 --limit 5
"$TRIB" get payments/settled-transactions --from 1 --limit 5
step trib status
"$TRIB" status
echo
echo "== the node's log:"
cat "$work/payments.log"
echo "== demo done; stopping the node"
