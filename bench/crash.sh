#!/bin/bash
# bench/crash.sh - kill -9 during a burst of publishes, then restart: the on-call check of
# docs/deploy.md's durability claims on two real agents (payments, growth) on loopback.
#
#   bench/crash.sh [TRIB]          TRIB: the binary (default build/trib); CRASH_PORT=N: first of
#                                  the 6 ports used (default 29470); CLIENTS (16), SECONDS_BURST (3)
#
# Round 1: CLIENTS clients each publish products and append a 3-record batch to each through the
# HTTP API; payments (the owner) is killed with SIGKILL mid-burst and restarted. Every publish
# answered 2xx must then be on payments and on growth, every batch answered 201 readable whole
# (3 records: nothing half-stored), and the restart log must say the stop was unclean.
# Round 2: the same burst, growth (the receiving peer) killed mid-burst and restarted: it must
# catch up to payments' catalog head. Figures are printed; exit 1 on any loss. Not in `make test`
# (fixed ports, tens of seconds). Stops every process it started and removes its dir, also on
# Ctrl-C; bounded: every wait has a deadline, the whole run at most about 2 minutes.
set -u
TRIB=$(realpath "${1:-build/trib}")
P0=${CRASH_PORT:-29470}
CLIENTS=${CLIENTS:-16}
BURST=${SECONDS_BURST:-3}
DIR=$(mktemp -d /tmp/trib-crash.XXXXXX)
pids=()
fail=0

cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { echo $(($(date +%s%N) / 1000000)); }
bad() { echo "crash: FAIL: $*"; fail=1; }

# start NAME DOMAIN IDX [SEED]: starts an agent in the background; its pid in ${NAME}_pid
start() {
  local name=$1 dom=$2 i=$3 seed=${4:-}
  "$TRIB" agent --data "$DIR/$name" --domain "$dom" --listen 127.0.0.1:$((P0 + i)) \
    --http 127.0.0.1:$((P0 + 10 + i)) --link-listen 127.0.0.1:$((P0 + 20 + i)) \
    ${seed:+--seed "$seed"} 2>>"$DIR/$name.log" </dev/null &
  eval "${name}_pid=$!"
  pids+=($!)
  disown $!   # no "Killed" lines: the kills are the point
  local end=$(($(ms) + 15000))
  until curl -sf "http://127.0.0.1:$((P0 + 10 + i))/v1/status" >/dev/null; do
    [ "$(ms)" -lt $end ] || { echo "crash: $name did not answer within 15 s; see $DIR/$name.log"; exit 1; }
    sleep 0.1
  done
}

# client URL TOKEN C OUT: publishes c<C>-p<i> and appends 3 records to it until killed or refused
client() {
  local url=$1 tok=$2 c=$3 out=$4 i=0 code body
  while :; do
    i=$((i + 1))
    body="{\"name\":\"c$c-p$i\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\",\"title\":\"t\","
    body+="\"owners\":{\"business\":\"a@b.c\",\"technical\":\"a@b.c\"},\"classification\":\"public\","
    body+="\"schema\":[{\"name\":\"k\",\"logicalType\":\"string\",\"required\":true}]}"
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $tok" \
      -H 'Content-Type: application/json' --data "$body" "$url/v1/products/payments/c$c-p$i")
    case $code in 2*) echo "put c$c-p$i" >>"$out" ;; 503) continue ;; *) return ;; esac
    code=$(printf '{"k":"a"}\n{"k":"b"}\n{"k":"c"}\n' | curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $tok" -H 'Content-Type: application/x-ndjson' --data-binary @- \
      "$url/v1/products/payments/c$c-p$i/records")
    case $code in 2*) echo "rec c$c-p$i" >>"$out" ;; *) return ;; esac
  done
}

# burst ROUND VICTIM: CLIENTS clients for BURST s, VICTIM killed -9 at the end of it
burst() {
  local round=$1 victim=$2 cpids=() c
  local tok
  tok=$(cat "$DIR/a/admin.token")
  for c in $(seq "$CLIENTS"); do
    client "http://127.0.0.1:$((P0 + 10))" "$tok" "$round$c" "$DIR/acked.$round" &
    cpids+=($!)
  done
  sleep "$BURST"
  kill -9 "$victim"
  sleep 0.5
  for c in "${cpids[@]}"; do kill "$c" 2>/dev/null; done
  for c in "${cpids[@]}"; do wait "$c" 2>/dev/null; done
}

head_of() { curl -s "http://127.0.0.1:$1/v1/status" | sed -n 's/.*"payments":\([0-9]*\).*/\1/p'; }

start a payments 0
start b growth 1 "127.0.0.1:$P0"
end=$(($(ms) + 15000))   # publishing opens once payments compared its log with growth's
until curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((P0 + 10))/v1/products/payments/x" | grep -q 404 &&
  grep -q "publishing enabled" "$DIR/a.log"; do
  [ "$(ms)" -lt $end ] || break
  sleep 0.1
done

# ---- round 1: the owner killed
burst 1 "$a_pid"
puts=$(grep -c '^put' "$DIR/acked.1"); recs=$(grep -c '^rec' "$DIR/acked.1")
t0=$(ms)
start a payments 0
echo "crash: round 1: $CLIENTS clients, $puts publishes and $recs record batches answered 2xx before SIGKILL of payments; restarted in $(($(ms) - t0)) ms"
grep -q "did not stop cleanly" "$DIR/a.log" || bad "the restart log does not say the stop was unclean"
grep "did not stop cleanly" "$DIR/a.log" | sed 's/^/crash:   /'
missing=0; half=0
for p in $(sed -n 's/^put //p' "$DIR/acked.1"); do
  curl -sf -o /dev/null "http://127.0.0.1:$((P0 + 10))/v1/products/payments/$p" || missing=$((missing + 1))
done
for p in $(sed -n 's/^rec //p' "$DIR/acked.1"); do
  n=$(curl -s "http://127.0.0.1:$((P0 + 10))/v1/products/payments/$p/records" | grep -c '"k"')
  [ "$n" = 3 ] || half=$((half + 1))
done
[ $missing = 0 ] || bad "$missing acknowledged publishes missing on payments after restart"
[ $half = 0 ] || bad "$half acknowledged record batches not whole after restart"
want=$(head_of $((P0 + 10)))
end=$(($(ms) + 20000)); t0=$(ms)
until [ "$(head_of $((P0 + 11)))" = "$want" ]; do
  [ "$(ms)" -lt $end ] || { bad "growth at catalog seq $(head_of $((P0 + 11))), payments at $want after 20 s"; break; }
  sleep 0.1
done
echo "crash: round 1: payments at catalog seq $want, growth too after $(($(ms) - t0)) ms; missing $missing, half-stored $half"
gone=0
for p in $(sed -n 's/^put //p' "$DIR/acked.1"); do
  curl -sf -o /dev/null "http://127.0.0.1:$((P0 + 11))/v1/products/payments/$p" || gone=$((gone + 1))
done
[ $gone = 0 ] || bad "$gone acknowledged publishes missing on growth"

# ---- round 2: the receiving peer killed
burst 2 "$b_pid"
puts=$(grep -c '^put' "$DIR/acked.2")
t0=$(ms)
start b growth 1 "127.0.0.1:$P0"
want=$(head_of $((P0 + 10)))
end=$(($(ms) + 20000))
until [ "$(head_of $((P0 + 11)))" = "$want" ]; do
  [ "$(ms)" -lt $end ] || { bad "growth at catalog seq $(head_of $((P0 + 11))), payments at $want after 20 s"; break; }
  sleep 0.1
done
echo "crash: round 2: $puts publishes during it; growth killed, restarted and at payments' catalog seq $want in $(($(ms) - t0)) ms"
if [ $fail = 0 ]; then
  echo "crash: OK"
else
  trap - EXIT   # keep the logs
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  echo "crash: logs kept in $DIR"
fi
exit $fail
