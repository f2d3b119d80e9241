#!/bin/sh
# `make demo`: a three-team federation on loopback. Starts the payments, growth and listening
# nodes (growth and listening join through payments as their seed), publishes each team's example
# products on its own node with sample records, shows that every node lists every product with
# the same signer and seq, searches the catalog, and reads payments' data through the growth node.
# Finally a live subscription through the listening node to a payments product.
# Stops every node at the end, on error, or on Ctrl-C; leaves nothing behind.
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

fail() {
  echo "demo: $*" >&2
  for l in "$work"/*.log; do echo "== $l" >&2; tail -n 20 "$l" >&2; done
  exit 1
}
# Ports below the ephemeral range (32768-60999, which outgoing connections also take): from a
# start derived from the PID in 20000-31999 (or DEMO_PORT, e.g. DEMO_PORT=26000 make demo on a
# machine whose ports are shared out), stepping by one, skipping any port a TCP socket of this
# machine already uses (/proc/net/tcp{,6}). Pure shell: no python3, no ss. A port taken between
# this check and the node's bind is retried by start() with new ports.
case ${DEMO_PORT:-} in
  '') next_port=$((20000 + $$ % 12000)) ;;
  *[!0-9]* | 0*) echo "demo: DEMO_PORT='$DEMO_PORT' is not a port number (digits, no leading 0)" >&2; exit 2 ;;
  *) next_port=$DEMO_PORT
     [ "$next_port" -ge 1024 ] && [ "$next_port" -lt 32768 ] ||
       { echo "demo: DEMO_PORT=$DEMO_PORT: pick a port in 1024-32767 (above, the kernel hands ports to outgoing connections)" >&2; exit 2; } ;;
esac
port_used() { # PORT
  awk -v h="$(printf '%04X' "$1")" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == h) { f = 1; exit } }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pick_port() { # pick_port VAR: sets VAR (no subshell, so the next pick moves on)
  while port_used "$next_port"; do next_port=$((next_port + 1)); done
  [ "$next_port" -lt 32768 ] || fail "no free port below 32768 from ${DEMO_PORT:-$((20000 + $$ % 12000))}"
  eval "$1=\$next_port"
  next_port=$((next_port + 1))
}
# until CMD...: polls the condition every 50 ms for up to 10 s.
until_ok() {
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 400 ] && fail "timed out waiting for: $*"
    sleep 0.05
  done
}
# Commands are shown in bold on a terminal; redirected to a file or a pipe, as plain text.
if [ -t 1 ]; then bold=$(printf '\033[1m'); plain=$(printf '\033[0m'); else bold=; plain=; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
on() { # on TEAM trib ARGS...: runs the CLI against TEAM's node, showing the command as a user types it
  team=$1; shift; shift
  eval "url=\$HTTP_$team"
  # each team's own admin token (DATA/admin.token, written at first start): writes need it; shown,
  # so a command copied from the output runs as it did here
  step "TRIB_TOKEN=\$(cat $work/$team/admin.token) trib --node $url $*"
  TRIB_TOKEN=$(cat "$work/$team/admin.token") "$TRIB" --node "$url" "$@"
}

start() { # start TEAM [SEED]: a node on two fresh ports; new ports when one turns out taken
  team=$1
  for attempt in 1 2 3 4 5; do
    pick_port http; pick_port peer
    eval "HTTP_$team=http://127.0.0.1:$http; PEER_$team=127.0.0.1:$peer"
    echo "== starting the $team node: peer 127.0.0.1:$peer, http 127.0.0.1:$http${2:+, seed $2} (log $work/$team.log)"
    "$TRIB" agent --data "$work/$team" --domain "$team" --listen "127.0.0.1:$peer" --http "127.0.0.1:$http" \
      ${2:+--seed "$2"} 2>"$work/$team.log" &
    pid=$!
    if until_up "$pid" "http://127.0.0.1:$http/v1/status"; then
      pids="$pids $pid"
      return
    fi
    wait "$pid" 2>/dev/null || true
    why=$(grep -iE 'cannot listen|in use' "$work/$team.log") || fail "the $team node exited at start"
    echo "== a port was taken meanwhile (${why##* error }); again with new ports"
    rm -rf "$work/$team"
  done
  fail "the $team node found no free ports in 5 attempts"
}
until_up() { # until_up PID URL: 0 once URL answers, 1 when PID exits first; fails after 10 s
  i=0
  until curl -fsS -o /dev/null "$2" 2>/dev/null; do
    kill -0 "$1" 2>/dev/null || return 1
    i=$((i + 1)); [ $i -gt 200 ] && { kill "$1" 2>/dev/null; fail "timed out waiting for $2"; }
    sleep 0.05
  done
}
all_alive() { # all_alive URL: the node lists three members, all alive
  [ "$(curl -fsS "$1/v1/members" | grep -o '"state": *"alive"' | wc -l)" -eq 3 ]
}
has_product() { curl -fsS -o /dev/null "$1/v1/products/$2"; }

start payments
start growth "$PEER_payments"
start listening "$PEER_payments"
for t in payments growth listening; do eval "until_ok all_alive \$HTTP_$t"; done
on payments trib members

# Writes need a write/admin token of the product's own domain: each node wrote its admin token to
# DATA/admin.token (0600) at first start. Without one, and with another team's, the node refuses.
step "trib --node $HTTP_payments publish examples/settled-transactions.yaml   # no token"
TRIB_TOKEN= "$TRIB" --node "$HTTP_payments" publish examples/settled-transactions.yaml \
  && fail "a publish without a token was accepted"
step "TRIB_TOKEN=\$(cat $work/growth/admin.token) trib --node $HTTP_payments publish examples/settled-transactions.yaml"
TRIB_TOKEN=$(cat "$work/growth/admin.token") "$TRIB" --node "$HTTP_payments" publish \
  examples/settled-transactions.yaml && fail "growth's token published for payments"

publish() { # publish TEAM PRODUCT: the manifest and its sample records, on the team's own node
  on "$1" trib publish "examples/$2.yaml"
  on "$1" trib put "$1/$2" "examples/$2.ndjson"
}
publish payments settled-transactions
publish payments payment-disputes
publish growth growth-experiments
publish growth signup-funnel
publish listening listening-history
publish listening track-plays

echo
echo "== waiting until every node holds all six products (gossip; usually well under a second)"
for t in payments growth listening; do
  eval "url=\$HTTP_$t"
  for id in payments/settled-transactions payments/payment-disputes growth/growth-experiments \
            growth/signup-funnel listening/listening-history listening/track-plays; do
    until_ok has_product "$url" "$id"
  done
done
on listening trib products
on growth trib show payments/settled-transactions
on payments trib status
on listening trib status
on growth trib products finance
on growth trib products --domain payments --status active
on growth trib get payments/settled-transactions --from 1 --limit 3

# A live subscription through the listening node to a payments product: the two existing records
# from seq 9, then two new disputes (opened today) appended on the payments node arrive as they
# are written.
# payment-disputes is confidential: the listening team's token alone is refused by the owner (a
# grant is needed), while a read token the payments admin issues to its analyst reads it through
# the listening node -- the owner checks the token the relay forwards.
step "trib --node $HTTP_listening get payments/payment-disputes --limit 1   # listening's own token"
TRIB_TOKEN=$(cat "$work/listening/admin.token") "$TRIB" --node "$HTTP_listening" get payments/payment-disputes \
  --limit 1 && fail "a confidential product was served without a grant"
step "export TRIB_TOKEN=\$(trib --node $HTTP_payments token issue --sub analyst@payments --kind read --ttl 1h)"
analyst=$(TRIB_TOKEN=$(cat "$work/payments/admin.token") TRIB_NODE=$HTTP_payments "$TRIB" token issue \
  --sub analyst@payments --kind read --ttl 1h) || fail "token issue failed"
step "trib --node $HTTP_listening subscribe payments/payment-disputes --from 9 > sub.ndjson &"
TRIB_TOKEN=$analyst "$TRIB" --node "$HTTP_listening" subscribe payments/payment-disputes --from 9 \
  >"$work/sub.ndjson" 2>&1 &
sub=$!
pids="$sub $pids"
lines() { [ "$(wc -l <"$work/sub.ndjson")" -ge "$1" ]; }
until_ok lines 2
today=$(date -u +%Y-%m-%d)
cat >"$work/more.ndjson" <<EOF
{"dispute_id":"dsp-0510","txn_id":"txn_001370","reason_code":"4853","stage":"retrieval","amount_minor":3120,"currency":"EUR","opened_on":"$today","resolved_on":null,"evidence":[]}
{"dispute_id":"dsp-0511","txn_id":"txn_001407","reason_code":"10.4","stage":"chargeback","amount_minor":8990,"currency":"USD","opened_on":"$today","resolved_on":null,"evidence":["receipt.pdf","chat-log.txt"]}
EOF
on payments trib put payments/payment-disputes "$work/more.ndjson"
until_ok lines 4
step "cat sub.ndjson   # seq 9 and 10, then the two new disputes (11, 12), delivered live"
cat "$work/sub.ndjson"
kill -INT "$sub" 2>/dev/null || true
echo
# A listening analyst asks for access through listening's node; payments decides on its own node;
# the owner then serves her, through any node, only the fields it granted.
step "export TRIB_TOKEN=\$(trib --node $HTTP_listening token issue --sub ana@listening --kind read --ttl 8h)"
ana=$(TRIB_TOKEN=$(cat "$work/listening/admin.token") "$TRIB" --node "$HTTP_listening" token issue \
  --sub ana@listening --kind read --ttl 8h) || fail "token issue failed"
step "trib --node $HTTP_listening access request payments/payment-disputes --purpose \"chargeback study\" --fields dispute_id,stage --days 30"
req=$(TRIB_TOKEN=$ana "$TRIB" --node "$HTTP_listening" access request payments/payment-disputes \
  --purpose "chargeback study" --fields dispute_id,stage --days 30 --json |
  sed -n 's/.*"id": *"\(req-[0-9a-f]*\)".*/\1/p' | head -n 1)
[ -n "$req" ] || fail "the access request was not made"
echo "request $req"
pending() { TRIB_TOKEN=$(cat "$work/payments/admin.token") "$TRIB" --node "$HTTP_payments" access pending --json | grep -q "$req"; }
until_ok pending
on payments trib access pending
on payments trib access grant "$req" --days 30
# Wait until listening holds the grant (its entry comes by gossip), so 'access mine' below shows it
# granted; not by reading as ana, which the audit below would list as a read nobody was shown.
granted() { TRIB_TOKEN=$ana "$TRIB" --node "$HTTP_listening" access mine --json | grep -q '"grant-'; }
until_ok granted
step "trib --node $HTTP_listening get payments/payment-disputes --limit 2   # as ana: only dispute_id and stage"
TRIB_TOKEN=$ana "$TRIB" --node "$HTTP_listening" get payments/payment-disputes --limit 2 || fail "the granted read failed"
step "trib --node $HTTP_listening access mine"
TRIB_TOKEN=$ana "$TRIB" --node "$HTTP_listening" access mine || fail "access mine failed"
on payments trib audit --limit 3
echo
# The web UI (DESIGN §15) of each node: on a terminal the nodes stay up until Ctrl-C.
echo "== the web UI: payments $HTTP_payments/  growth $HTTP_growth/  listening $HTTP_listening/"
if [ -t 0 ] && [ -t 1 ]; then
  echo "== open one in a browser; Ctrl-C stops the three nodes"
  # Ctrl-C is how this part ends: a normal end (exit 0), not an error make reports ("Error 130")
  trap 'echo; echo "== stopping the three nodes"; exit 0' INT
  while :; do sleep 3600; done
fi
echo "== demo done: every node lists every team's products; stopping the three nodes"
