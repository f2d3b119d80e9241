#!/bin/sh
# Installs the Debian packages Tributary needs to build and test, only when something is missing.
# Usage: deploy/deps.sh PACKAGE...   (called by `make deps` and, once, by every build)
# Not root: prints the command to run instead.
set -eu
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
  echo "tributary: missing packages:$missing" >&2
  echo "tributary: run as root: $cmd" >&2
  exit 1
fi
echo "tributary: installing$missing" >&2
sh -c "$cmd" >&2
