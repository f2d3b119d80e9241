#!/usr/bin/env bash
# deploy/netns.sh - runs an N-host Tributary federation on one machine, one `trib agent` per
# network namespace, all joined by a bridge on a private test subnet that exists only inside this
# machine (10.77.S.0/24, S = $TRIB_NETNS_SUBNET). Used by tests/test_netns.c for partition tests
# and by people who want to watch a federation split and heal. Needs root and `ip netns`.
# Must not: route, NAT or forward anything off the machine (the namespaces get no default route,
# only the bridge's /24), touch namespaces, links or processes it did not create, or leave
# anything behind after `down`.
#
# usage: deploy/netns.sh up N [--trib PATH] [--dir DIR] [--owner PID] [-- AGENT-ARGS...]
#        deploy/netns.sh down
#        deploy/netns.sh cut I J | heal I J      drop / restore all traffic between hosts I and J
#        deploy/netns.sh isolate I | rejoin I    cut / heal host I from every other host
#        deploy/netns.sh exec I CMD [ARGS...]    run CMD in host I's namespace
#        deploy/netns.sh addr I                  print host I's address (10.77.S.I)
#        deploy/netns.sh status                  namespaces, agents, cuts
# environment:
#   TRIB_NETNS_PREFIX  name prefix, [a-z][a-z0-9]{0,9}, default "trib": namespaces PREFIX-h1..hN,
#                      bridge PREFIX-br, veths PREFIX-v1..vN (use a unique one per parallel run)
#   TRIB_NETNS_SUBNET  third octet S of the test subnet 10.77.S.0/24, default 0
#   TRIB_ARGS          extra `trib agent` options for every host (word-split), e.g. fast timings
#   TRIB               the trib binary (default: build/trib of this repository); --trib wins
#   TRIB_NETNS_TIMEOUT seconds `up` waits for each agent's /v1/status (default 30)
#   TRIB_KEEP_LOGS     when set, `down` keeps DIR (data dirs and agent logs)
# Host I runs `trib agent --domain hI --data DIR/hI --listen 10.77.S.I:7470 --http 10.77.S.I:7480`
# and hosts 2..N seed from host 1. The bridge has 10.77.S.254 in the root namespace, so every
# host's HTTP API is reachable from here: curl http://10.77.S.I:7480/v1/status.
# Cuts are blackhole routes inside the namespaces; the bridge address stays reachable, so an
# observer in the root namespace still sees every side of a partition.
# Exit codes: 0 ok, 1 error, 2 usage, 77 this machine does not allow it (not root, no netns).
set -u

PREFIX=${TRIB_NETNS_PREFIX:-trib}
SUBNET=${TRIB_NETNS_SUBNET:-0}
PEER_PORT=7470
HTTP_PORT=7480
MAX_HOSTS=64
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

die() { echo "netns.sh: $*" >&2; exit 1; }
skip() { echo "netns.sh: skipped: $*" >&2; exit 77; }
usage() { sed -n '/^# usage:/,/^#        deploy\/netns.sh status/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "TRIB_NETNS_PREFIX '$PREFIX' must match [a-z][a-z0-9]{0,9}"
if ! [[ $SUBNET =~ ^[0-9]{1,3}$ ]] || ((SUBNET > 255)); then die "TRIB_NETNS_SUBNET '$SUBNET' must be 0..255"; fi

NET="10.77.$SUBNET"
BR="$PREFIX-br"
ns() { echo "$PREFIX-h$1"; }
veth() { echo "$PREFIX-v$1"; }
addr() { echo "$NET.$1"; }
MARK="tributary-netns"        # bridge alias prefix: marks the bridge as ours and records DIR

# ---------------------------------------------------------------- checks
need_root() {
  [[ $(id -u) == 0 ]] || skip "needs root (network namespaces, veths, a bridge)"
  command -v ip >/dev/null || skip "needs iproute2 ('ip')"
}

probe_netns() { # can this machine create namespaces, veths and a bridge?
  local p="$PREFIX-probe" ok=1
  ip netns del "$p" 2>/dev/null
  ip link del "$PREFIX-pb" 2>/dev/null
  if ! ip netns add "$p" 2>/dev/null; then
    skip "'ip netns add' is not allowed here (no CAP_SYS_ADMIN or no network namespaces)"
  fi
  ip netns exec "$p" ip link set lo up 2>/dev/null || ok=0
  if ((ok)) && ! ip link add "$PREFIX-pb" type bridge 2>/dev/null; then ok=0; fi
  ip link del "$PREFIX-pb" 2>/dev/null
  ip netns del "$p" 2>/dev/null
  ((ok)) || skip "'ip netns exec' or bridge creation is not allowed here"
}

host_index() { # validates I against the running federation, prints it
  local i=$1 n
  [[ $i =~ ^[0-9]+$ ]] || die "host '$i' is not a number"
  n=$(count_hosts)
  ((n > 0)) || die "no federation with prefix '$PREFIX' is up"
  ((i >= 1 && i <= n)) || die "host $i: the federation has hosts 1..$n"
  echo "$i"
}

our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-h[0-9]+\$" || true; }
count_hosts() { our_namespaces | wc -l; }
bridge_alias() { ip -o link show dev "$BR" 2>/dev/null | sed -n 's/.* alias \(.*\)$/\1/p'; }
bridge_subnet() { ip -o -4 addr show dev "$BR" 2>/dev/null | sed -n 's/.* inet 10\.77\.\([0-9]*\)\.254\/24.*/\1/p'; }

load_state() { # the subnet a running federation uses wins over the environment
  local s
  s=$(bridge_subnet)
  if [[ -n $s ]]; then SUBNET=$s; NET="10.77.$SUBNET"; fi
}

# ---------------------------------------------------------------- up
agent_alive() { [[ -f $DIR/h$1.pid ]] && kill -0 "$(cat "$DIR/h$1.pid")" 2>/dev/null; }

wait_up() { # I: polls the agent's /v1/status until 200, the agent dies, or the deadline
  local i=$1 deadline=$((SECONDS + ${TRIB_NETNS_TIMEOUT:-30}))
  while ((SECONDS <= deadline)); do
    agent_alive "$i" || { echo "netns.sh: agent h$i exited; its log:" >&2; tail -n 30 "$DIR/h$i.log" >&2; return 1; }
    curl --noproxy '*' -fsS -m 2 -o /dev/null "http://$(addr "$i"):$HTTP_PORT/v1/status" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "netns.sh: agent h$i did not answer /v1/status in ${TRIB_NETNS_TIMEOUT:-30}s; its log:" >&2
  tail -n 30 "$DIR/h$i.log" >&2
  return 1
}

cmd_up() {
  local n=${1:-} trib=${TRIB:-$ROOT/build/trib} owner="" extra=() i
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > MAX_HOSTS)); then echo "netns.sh: up N: N must be 1..$MAX_HOSTS" >&2; usage; fi
  shift
  DIR=${TRIB_NETNS_DIR:-/tmp/$PREFIX-netns}
  while (($#)); do
    case $1 in
      --trib) trib=${2:?--trib needs PATH}; shift 2 ;;
      --dir) DIR=${2:?--dir needs DIR}; shift 2 ;;
      --owner) owner=${2:?--owner needs PID}; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) echo "netns.sh: up: unknown option '$1'" >&2; usage ;;
    esac
  done
  need_root
  probe_netns
  command -v curl >/dev/null || die "needs curl (to wait for the agents' /v1/status)"
  [[ -x $trib ]] || die "trib binary '$trib' is missing or not executable (run make, or pass --trib PATH)"
  trib=$(cd "$(dirname "$trib")" && pwd)/$(basename "$trib")
  [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "--owner '$owner' is not a pid"
  ((${#DIR} <= 200)) || die "--dir path is longer than 200 characters"
  if (($(count_hosts) > 0)) || ip link show dev "$BR" >/dev/null 2>&1; then
    die "a federation with prefix '$PREFIX' is already up (run: TRIB_NETNS_PREFIX=$PREFIX $0 down)"
  fi
  # The test subnet must exist nowhere on this machine yet: only the default route may cover it.
  if ip -o route show to match "$NET.0/24" | grep -qv '^default' || [[ -n $(ip -o addr show to "$NET.0/24") ]]; then
    die "subnet $NET.0/24 is already in use on this machine (set TRIB_NETNS_SUBNET to another octet)"
  fi
  [[ ! -e $DIR || -f $DIR/.$MARK ]] || die "--dir $DIR exists and was not made by netns.sh"
  if ! mkdir -p "$DIR" || ! chmod 0700 "$DIR" || ! touch "$DIR/.$MARK"; then die "cannot create $DIR"; fi

  trap 'echo "netns.sh: up failed; cleaning up" >&2; cmd_down >/dev/null 2>&1; exit 1' ERR
  set -o errtrace -e
  ip link add "$BR" type bridge
  ip link set "$BR" alias "$MARK dir=$DIR"
  ip link set "$BR" type bridge nf_call_iptables 0 2>/dev/null || true # host firewalls don't see test traffic
  sysctl -qw "net.ipv6.conf.$BR.disable_ipv6=1" 2>/dev/null || true
  ip addr add "$NET.254/24" dev "$BR"
  ip link set "$BR" up
  for ((i = 1; i <= n; i++)); do
    ip netns add "$(ns "$i")"
    ip link add "$(veth "$i")" type veth peer name eth0 netns "$(ns "$i")"
    sysctl -qw "net.ipv6.conf.$(veth "$i").disable_ipv6=1" 2>/dev/null || true
    ip link set "$(veth "$i")" master "$BR" up
    ip netns exec "$(ns "$i")" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
    ip -n "$(ns "$i")" link set lo up
    ip -n "$(ns "$i")" addr add "$(addr "$i")/24" dev eth0
    ip -n "$(ns "$i")" link set eth0 up
  done
  # Beyond loopback an open-mode node needs a federation secret (there is no built-in one): one
  # random secret per run, shared by its hosts.
  local secret
  secret=${TRIB_FEDERATION_SECRET:-netns-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
  for ((i = 1; i <= n; i++)); do
    local args=(agent --data "$DIR/h$i" --domain "h$i" --listen "$(addr "$i"):$PEER_PORT"
      --http "$(addr "$i"):$HTTP_PORT" --federation-secret "$secret")
    ((i > 1)) && args+=(--seed "$(addr 1):$PEER_PORT")
    # shellcheck disable=SC2206 # TRIB_ARGS is word-split on purpose
    args+=(${TRIB_ARGS:-} "${extra[@]}")
    echo "h$i: ip netns exec $(ns "$i") $trib ${args[*]}" >>"$DIR/commands"
    ip netns exec "$(ns "$i")" setsid "$trib" "${args[@]}" </dev/null >>"$DIR/h$i.log" 2>&1 &
    echo $! >"$DIR/h$i.pid"
  done
  set +e +o errtrace
  trap - ERR
  for ((i = 1; i <= n; i++)); do
    wait_up "$i" || { cmd_down >/dev/null 2>&1; exit 1; }
  done
  if [[ -n $owner ]]; then # tear everything down when the owner (e.g. a test process) goes away
    # shellcheck disable=SC2016 # $1 and $2 are the inner script's arguments
    TRIB_NETNS_PREFIX=$PREFIX setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" down' \
      netns-watch "$owner" "$HERE/netns.sh" </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/watcher.pid"
  fi
  echo "netns.sh: $n hosts up on $NET.0/24 (prefix $PREFIX, data and logs in $DIR)"
  for ((i = 1; i <= n; i++)); do echo "  h$i  $(ns "$i")  http://$(addr "$i"):$HTTP_PORT  peer $(addr "$i"):$PEER_PORT"; done
}

# ---------------------------------------------------------------- down
cmd_down() {
  local spaces s p pids deadline dir alias
  need_root
  alias=$(bridge_alias)
  dir=""
  [[ $alias == "$MARK dir="* ]] && dir=${alias#"$MARK dir="}
  [[ -z $dir ]] && dir=${DIR:-${TRIB_NETNS_DIR:-/tmp/$PREFIX-netns}}
  if [[ -f $dir/watcher.pid ]]; then
    p=$(cat "$dir/watcher.pid")
    if [[ $p != "$$" ]] && grep -qa netns-watch "/proc/$p/cmdline" 2>/dev/null; then kill "$p" 2>/dev/null; fi
  fi
  spaces=$(our_namespaces)
  # SIGTERM first (agents leave the federation gracefully), then SIGKILL what is left.
  for s in $spaces; do
    for p in $(ip netns pids "$s" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
  done
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    pids=""
    for s in $spaces; do pids+=$(ip netns pids "$s" 2>/dev/null); done
    [[ -z $pids ]] && break
    sleep 0.1
  done
  for s in $spaces; do
    for p in $(ip netns pids "$s" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for s in $spaces; do ip netns del "$s" 2>/dev/null || echo "netns.sh: could not delete namespace $s" >&2; done
  # Deleting a namespace deletes its veth pair; remove any half-made one from a crashed `up`.
  for s in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$PREFIX-v[0-9]+\$"); do
    ip link del "$s" 2>/dev/null
  done
  ip link show dev "$BR" >/dev/null 2>&1 && ip link del "$BR"
  if [[ -f $dir/.$MARK ]]; then
    if [[ -n ${TRIB_KEEP_LOGS:-} ]]; then echo "netns.sh: kept $dir"; else rm -rf "$dir"; fi
  fi
  echo "netns.sh: prefix '$PREFIX' is down"
  return 0
}

# ---------------------------------------------------------------- partitions
route_cut() { # I J: blackhole J's address inside I's namespace
  ip -n "$(ns "$1")" route replace blackhole "$(addr "$2")/32" || die "cannot cut h$1 -> h$2"
}
route_heal() {
  ip -n "$(ns "$1")" route del blackhole "$(addr "$2")/32" 2>/dev/null || true
}

cmd_cut() {
  need_root; load_state
  local i j
  i=$(host_index "${1:-}") || exit 1; j=$(host_index "${2:-}") || exit 1
  ((i != j)) || die "cut: hosts must differ"
  route_cut "$i" "$j"; route_cut "$j" "$i"
}

cmd_heal() {
  need_root; load_state
  local i j
  i=$(host_index "${1:-}") || exit 1; j=$(host_index "${2:-}") || exit 1
  route_heal "$i" "$j"; route_heal "$j" "$i"
}

cmd_isolate() { # $1 = "cut" | "heal", $2 = I
  need_root; load_state
  local i j n
  i=$(host_index "${2:-}") || exit 1
  n=$(count_hosts)
  for ((j = 1; j <= n; j++)); do
    ((j == i)) && continue
    if [[ $1 == cut ]]; then route_cut "$i" "$j"; route_cut "$j" "$i"; else route_heal "$i" "$j"; route_heal "$j" "$i"; fi
  done
}

cmd_status() {
  need_root; load_state
  local n i p state
  n=$(count_hosts)
  ((n > 0)) || { echo "no federation with prefix '$PREFIX'"; return 0; }
  echo "prefix $PREFIX, subnet $NET.0/24, $n hosts, $(bridge_alias)"
  for ((i = 1; i <= n; i++)); do
    p=$(ip netns pids "$(ns "$i")" 2>/dev/null | tr '\n' ' ')
    state=$(ip -n "$(ns "$i")" route show type blackhole 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
    echo "  h$i $(addr "$i")  pids: ${p:-none}  cut from: ${state:-nothing}"
  done
}

cmd=${1:-}
(($#)) && shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  cut) (($# == 2)) || usage; cmd_cut "$@" ;;
  heal) (($# == 2)) || usage; cmd_heal "$@" ;;
  isolate) (($# == 1)) || usage; cmd_isolate cut "$1" ;;
  rejoin) (($# == 1)) || usage; cmd_isolate heal "$1" ;;
  exec)
    (($# >= 2)) || usage
    need_root; i=$(host_index "$1") || exit 1; shift
    exec ip netns exec "$(ns "$i")" "$@" ;;
  addr) (($# == 1)) || usage; load_state; i=$(host_index "$1") || exit 1; addr "$i" ;;
  status) cmd_status ;;
  *) usage ;;
esac
