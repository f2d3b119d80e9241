#!/usr/bin/env bash
# docs/check-docs.sh - runs the ```sh blocks of a guide as written, in order, as a new user would.
#
#   docs/check-docs.sh [FILE.md]...        default: docs/operators.md docs/federation.md
#
# Each file runs on its own: a fresh temporary HOME (so `~/fed-demo` is new), `build/trib` first on
# the PATH (`make build/trib` first), REPO set to this checkout, `set -e` (the first failing command
# stops it and is named). Every agent a file starts is stopped when it ends, whatever happens.
# The guides use fixed ports (7470.., 7570..); DOCS_PORT_OFFSET=N adds N to every 127.0.0.1:7xxx
# port when those are taken (e.g. DOCS_PORT_OFFSET=20000 on a shared machine). Takes about 30 s;
# not part of `make test` (fixed ports). Keeps the temporary dir when a file fails (KEEP=1: always).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$REPO/build/trib" ] || { echo "check-docs: build/trib is missing: run make build/trib" >&2; exit 2; }
[ $# -gt 0 ] || set -- "$REPO/docs/operators.md" "$REPO/docs/federation.md"
OFFSET=${DOCS_PORT_OFFSET:-0}
fails=0

for md in "$@"; do
    tmp=$(mktemp -d /tmp/check-docs.XXXXXX)
    script=$tmp/blocks.sh
    {
        echo 'set -e'
        # stop every agent this guide started, also when a block fails
        echo 'trap '\''s=$?; for p in $(jobs -p); do kill $p 2>/dev/null || true; done; wait; exit $s'\'' EXIT'
        awk -v f="$md" '
            /^```sh[[:space:]]*$/ { inb = 1; printf "echo \"--- %s:%d\" >&2\n", f, NR; next }
            /^```/ && inb        { inb = 0; next }
            inb                  { print }' "$md" |
        if [ "$OFFSET" != 0 ]; then
            perl -pe 's/127\.0\.0\.1:(7\d\d\d)\b/"127.0.0.1:".($1+'"$OFFSET"')/ge'
        else
            cat
        fi
    } > "$script"
    echo "check-docs: $md in $tmp" >&2
    start=$(date +%s)
    (cd "$tmp" && HOME=$tmp PATH="$REPO/build:$PATH" REPO=$REPO bash -x "$script") > "$tmp/out.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        echo "check-docs: FAIL $md (exit $rc after $(( $(date +%s) - start )) s); the last lines:" >&2
        tail -n 25 "$tmp/out.log" >&2
        echo "check-docs: everything in $tmp/out.log" >&2
    else
        echo "check-docs: ok $md ($(( $(date +%s) - start )) s)" >&2
        [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"
    fi
done
exit $((fails > 0))
