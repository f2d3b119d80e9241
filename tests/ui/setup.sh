#!/bin/sh
# tests/ui/setup.sh - installs what the UI tests and the UI benchmark need, only when missing:
# Debian's chromium (deploy/deps.sh; never a browser download), node and npm when there is no node
# (Debian's; this machine has Node 20 from NodeSource), and the exact playwright-core and axe-core of
# package-lock.json by `npm ci` into tests/ui/node_modules (redone when the lockfile changes).
set -eu
cd "$(dirname "$0")"
../../deploy/deps.sh chromium
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  ../../deploy/deps.sh nodejs npm
fi
stamp=node_modules/.tributary-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "tributary: npm ci in tests/ui (playwright-core and axe-core from package-lock.json)" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >&2
  echo "$want" > "$stamp"
fi
