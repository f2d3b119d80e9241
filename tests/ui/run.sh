#!/bin/sh
# tests/ui/run.sh - the web UI tests (tests/ui/*.test.mjs) with Node's test runner, after setup.sh
# has installed what is missing. TRIB names the agent binary (default build/trib). The runner's TAP
# summary ("# pass N", "# fail N", "# skipped N") is what tests/run.sh counts.
set -eu
cd "$(dirname "$0")"
./setup.sh
exec node --test --test-concurrency=1 --test-reporter=tap ui.test.mjs scale.test.mjs
