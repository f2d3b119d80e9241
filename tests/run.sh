#!/bin/sh
# Runs every Criterion test binary given, then the web UI tests when UI_TESTS names their script
# (tests/ui/run.sh), then prints a summary for the whole suite: each binary's time and counts,
# every skipped test with its reason, and one closing line. Skips are read from Criterion's TAP
# report (--tap=FILE; its synthesis line has no skip count), pass/fail/crash from the synthesis
# line; the UI tests' counts from Node's TAP summary. Exit status 1 when a test failed or crashed,
# a sanitizer reported in a binary's output (make asan), or a binary printed no synthesis.
# VALGRIND=1 runs them under valgrind (Criterion needs --trace-children=yes; the agents the
# tests start are traced too, system tools such as ip, rm and shells are not).
set -u
pass=0; fail=0; skip=0; rc=0
rows=$(mktemp); skips=$(mktemp)
trap 'rm -f "$rows" "$skips"' EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # MS -> seconds, one decimal
t_suite=$(now_ms)
for t in "$@"; do
  name=$(basename "$t")
  echo "== $name"
  out=$(mktemp); tap=$(mktemp)
  t0=$(now_ms)
  if [ "${VALGRIND:-}" = 1 ]; then
    valgrind --quiet --error-exitcode=99 --trace-children=yes --leak-check=full \
      --trace-children-skip='*/ip,*/rm,*/sh,*/bash,*/dash,*/env,*/sleep,*/curl,*/nft' \
      "$t" --jobs=1 --tap="$tap" 2>&1 | tee "$out"
  else
    "$t" --tap="$tap" ${CRITERION_ARGS:-} 2>&1 | tee "$out"
  fi
  ms=$(($(now_ms) - t0))
  # tee hides the test's exit code; read the synthesis line instead.
  line=$(grep -a 'Synthesis: Tested:' "$out" | tail -n 1)
  # A sanitizer's report (make asan) fails the binary even when its tests passed: a leak is
  # reported as a test process exits, after Criterion counted the test.
  san=$(grep -ac 'ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:' "$out")
  # TAP: "ok - suite::test  # SKIP reason" for a test that called cr_skip_test (or is disabled).
  s=$(grep -ac '^ok - .*# SKIP' "$tap")
  sed -n 's/^ok - \(.*[^ ]\) *# SKIP \(.*\)$/  skipped \1: \2/p' "$tap" >>"$skips"
  rm -f "$out" "$tap"
  if [ -z "$line" ]; then
    echo "!! $name printed no synthesis (crashed?)"
    printf '  %-24s %7s s  no synthesis (crashed?)\n' "$name" "$(secs $ms)" >>"$rows"
    fail=$((fail+1)); rc=1; continue
  fi
  p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
  f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
  c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
  pass=$((pass+${p:-0})); fail=$((fail+${f:-0})); skip=$((skip+s))
  if [ "${f:-0}" -gt 0 ] || [ "${c:-0}" -gt 0 ] || [ "$san" -gt 0 ]; then rc=1; fi
  [ "$san" -gt 0 ] && fail=$((fail+1))
  printf '  %-24s %7s s  %d passed, %d failed, %d skipped%s\n' "$name" "$(secs $ms)" "${p:-0}" "${f:-0}" "$s" \
    "$([ "$san" -gt 0 ] && echo ", $san sanitizer report(s)")" >>"$rows"
done
# The web UI tests (Node's test runner, real Chromium) when UI_TESTS names their script
# (tests/ui/run.sh): counted from the runner's TAP summary like a binary's synthesis line.
if [ -n "${UI_TESTS:-}" ]; then
  echo "== ui (node --test)"
  out=$(mktemp)
  t0=$(now_ms)
  "$UI_TESTS" 2>&1 | tee "$out"
  ms=$(($(now_ms) - t0))
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -n 1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -n 1)
  c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$out" | tail -n 1)
  s=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$out" | tail -n 1)
  sed -n 's/^ok [0-9]* - \(.*[^ ]\) *# SKIP \(.*\)$/  skipped ui::\1: \2/p' "$out" >>"$skips"
  rm -f "$out"
  if [ -z "$p" ]; then
    echo "!! ui tests printed no summary (setup failed?)"
    printf '  %-24s %7s s  no summary (setup failed?)\n' "ui (node --test)" "$(secs $ms)" >>"$rows"
    fail=$((fail+1)); rc=1
  else
    f=$((${f:-0} + ${c:-0}))
    pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+${s:-0}))
    [ "$f" -gt 0 ] && rc=1
    printf '  %-24s %7s s  %d passed, %d failed, %d skipped\n' "ui (node --test)" "$(secs $ms)" "$p" "$f" "${s:-0}" >>"$rows"
  fi
fi

echo
echo "== time per test binary"
cat "$rows" "$skips"
echo "tests: $pass passed, $fail failed, $skip skipped in $(secs $(($(now_ms) - t_suite))) s"
exit $rc
