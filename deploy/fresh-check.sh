#!/bin/bash
# deploy/fresh-check.sh - `make fresh-check`: proves the README's promise that `make demo` and
# `make test` work on a bare Debian 12 machine as root with only `make` installed first. Builds a
# minimal Debian 12 root (`debootstrap --variant=minbase bookworm`, from the mirror apt uses here;
# cached as build/fresh/base, so a rerun skips it), copies it to build/fresh/root, copies the
# working tree in (the files git knows, tracked or not ignored; never build/), installs only
# `make`, then runs `make demo` and `make test` in a chroot and prints how long each step took and
# its exit status. Logs: build/fresh/*.log. Exit status 0 only when both commands passed.
# The chroot's mounts (/, /proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp) live in a private mount
# namespace of this script and are unmounted on every exit, failure or Ctrl-C; nothing mounts on
# the host. Where network namespaces do not work (a container), test_netns reports a skip.
# Must not: run in CI (it needs root, the network and minutes), touch anything outside build/fresh.
# Usage: deploy/fresh-check.sh            (root; FRESH_MIRROR=URL overrides the Debian mirror)
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
CACHE=$REPO/build/fresh
BASE=$CACHE/base
ROOT=$CACHE/root
SRC=/root/tributary                       # the tree's place inside the root
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "fresh-check: $*" >&2; }
die() { say "$*"; exit 1; }

# ---------------------------------------------------------------- inside the private mount namespace
# `fresh-check.sh --inside`: mounts, runs the steps in the chroot, unmounts (trap). Prints one
# result line per step on stdout: "STEP SECONDS STATUS".
mounts=()
umount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
      say "could not unmount ${mounts[i]}"
  done
  mounts=()
}
mnt() { # mnt TARGET MOUNT-ARGS...: mounts and remembers it for umount_all
  local t=$1; shift
  mkdir -p "$t" && mount "$@" "$t" && mounts+=("$t")
}
# step NAME COMMAND: runs COMMAND by sh in the chroot (stdin /dev/null, a clean environment, every
# signal at its default: a `make fresh-check &` or nohup would otherwise pass SIGINT ignored down to
# the tests, unlike a user's terminal); prints "NAME SECONDS STATUS".
step() {
  local name=$1 cmd=$2 t0 t1 rc
  say "== $name: $cmd (log build/fresh/$name.log)"
  t0=$(date +%s.%N)
  env -i --default-signal HOME=/root PATH=$PATH_IN LANG=C.UTF-8 TERM=dumb ${EXTRA_ENV:-} \
    chroot "$ROOT" /bin/sh -c "cd $SRC && $cmd" </dev/null 2>&1 | tee "$CACHE/$name.log" >&2
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  echo "$name $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') $rc"
  return "$rc"
}
if [[ ${1:-} == --inside ]]; then
  trap umount_all EXIT
  trap 'exit 130' INT TERM
  mount --make-rprivate / || die "cannot make the mount namespace private"
  # The root itself a mount point, as on a real machine: `ip netns exec` remounts / (rslave) and
  # fails on a plain directory, which would make test_netns skip here for no reason of its own.
  mnt "$ROOT" --bind "$ROOT" || die "cannot bind $ROOT onto itself"
  mnt "$ROOT/proc" -t proc proc || die "cannot mount /proc"
  mnt "$ROOT/sys" -t sysfs sysfs || die "cannot mount /sys"
  mnt "$ROOT/dev" --bind /dev || die "cannot bind /dev"
  mnt "$ROOT/dev/pts" -t devpts devpts -o newinstance,ptmxmode=0666 || die "cannot mount /dev/pts"
  mnt "$ROOT/dev/shm" -t tmpfs tmpfs -o mode=1777 || die "cannot mount /dev/shm"
  mnt "$ROOT/run" -t tmpfs tmpfs -o mode=0755 || die "cannot mount /run"
  mkdir -p "$ROOT/run/lock" && ln -s /dev/shm "$ROOT/run/shm"
  mnt "$ROOT/tmp" -t tmpfs tmpfs -o mode=1777 || die "cannot mount /tmp"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  # This machine's own network: where it reaches the internet through a TLS-inspecting egress with
  # its own CA (local certificates in /usr/local/share/ca-certificates), the root trusts the same
  # bundle for Node/npm (apt uses http). A machine on an ordinary network has none and needs none.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null && [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$ROOT/etc/ssl" && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-egress-ca.crt" &&
      EXTRA_ENV="NODE_EXTRA_CA_CERTS=/etc/ssl/host-egress-ca.crt"
  fi
  rc=0
  step install-make "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends make" ||
    exit 1
  step make-demo "make demo" || rc=1
  step make-test "make test" || rc=1
  exit $rc
fi

# ---------------------------------------------------------------- outside: root, cache, copy
[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot and mounts); run: sudo make fresh-check"
command -v unshare >/dev/null && command -v chroot >/dev/null || die "needs unshare and chroot (util-linux, coreutils)"

mirror() { # the Debian mirror apt uses here (not the security one), else deb.debian.org
  local m
  [[ -n ${FRESH_MIRROR:-} ]] && { echo "$FRESH_MIRROR"; return; }
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }'
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }')
  m=$(echo "$m" | grep -E '^https?://' | grep -v security | grep '/debian/*$' | head -n 1)
  echo "${m:-http://deb.debian.org/debian}"
}

# Unmounts anything left under ROOT (a run killed hard leaves nothing: its namespace is gone,
# but be sure) and refuses to delete a root that still has a mount under it.
clear_root() {
  local m
  for m in $(awk -v r="$ROOT" 'index($2, r "/") == 1 || $2 == r { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  awk -v r="$ROOT" 'index($2, r "/") == 1 || $2 == r { found = 1 } END { exit !found }' /proc/mounts &&
    die "something is still mounted under $ROOT; not deleting it"
  rm -rf --one-file-system "$ROOT"
}

results=()
t_start=$(date +%s)
mkdir -p "$CACHE" || die "cannot create $CACHE"
if [[ -x $BASE/bin/sh ]]; then
  say "== debootstrap: cached in build/fresh/base (delete it to rebuild)"
  results+=("debootstrap(cached) 0.0 0")
else
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >&2 ||
      die "cannot install debootstrap"
  fi
  m=$(mirror)
  say "== debootstrap --variant=minbase bookworm from $m (log build/fresh/debootstrap.log)"
  rm -rf --one-file-system "$BASE.tmp"
  t0=$(date +%s.%N)
  debootstrap --variant=minbase bookworm "$BASE.tmp" "$m" >"$CACHE/debootstrap.log" 2>&1
  rc=$?
  results+=("debootstrap $(echo "$t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}') $rc")
  ((rc == 0)) || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (exit $rc)"; }
  mv "$BASE.tmp" "$BASE" || die "cannot move the new root to $BASE"
fi

say "== copying the root and the working tree"
clear_root
t0=$(date +%s.%N)
cp -a "$BASE" "$ROOT" || die "cannot copy $BASE to $ROOT"
mkdir -p "$ROOT$SRC"
git -C "$REPO" ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e $f && $f != build/* ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$ROOT$SRC" -xf - || die "cannot copy the working tree"
results+=("copy $(echo "$t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}') 0")

# The chroot steps, in a private mount namespace: its mounts vanish with it, whatever happens.
inner=$(unshare --mount --propagation private "$0" --inside)
rc=$?
mapfile -t lines <<<"$inner"
for l in "${lines[@]}"; do [[ -n $l ]] && results+=("$l"); done
# leave the root for inspection; the next run replaces it

echo
echo "fresh-check: bare Debian 12 (debootstrap minbase bookworm) + apt-get install make, then the README's commands"
printf '  %-22s %9s  %s\n' step seconds "exit status"
for r in "${results[@]}"; do
  read -r name secs st <<<"$r"
  printf '  %-22s %9s  %s\n' "$name" "$secs" "$st"
done
echo "  total $(($(date +%s) - t_start)) s; logs in build/fresh/; result: $( ((rc == 0)) && echo PASS || echo FAIL)"
exit $rc
