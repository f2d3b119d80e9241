#!/bin/sh
# Runs every Criterion test binary given, then prints one closing line for the whole suite.
# VALGRIND=1 runs them under valgrind (Criterion needs --trace-children=yes; the agents the
# tests start are traced too, system tools such as ip, rm and shells are not).
set -u
pass=0; fail=0; skip=0; rc=0
for t in "$@"; do
  echo "== $(basename "$t")"
  out=$(mktemp)
  if [ "${VALGRIND:-}" = 1 ]; then
    valgrind --quiet --error-exitcode=99 --trace-children=yes --leak-check=full \
      --trace-children-skip='*/ip,*/rm,*/sh,*/bash,*/dash,*/env,*/sleep,*/curl,*/nft' \
      "$t" --jobs=1 2>&1 | tee "$out"; r=$?
  else
    "$t" ${CRITERION_ARGS:-} 2>&1 | tee "$out"; r=$?
  fi
  # tee hides the test's exit code; read the synthesis line instead.
  line=$(grep -a 'Synthesis: Tested:' "$out" | tail -n 1)
  rm -f "$out"
  if [ -z "$line" ]; then echo "!! $(basename "$t") printed no synthesis (crashed?)"; fail=$((fail+1)); rc=1; continue; fi
  p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
  f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
  c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
  s=$(echo "$line" | sed -n 's/.*Skipped: \([0-9]*\).*/\1/p')
  pass=$((pass+${p:-0})); fail=$((fail+${f:-0})); skip=$((skip+${s:-0}))
  [ "${f:-0}" -gt 0 ] || [ "${c:-0}" -gt 0 ] && rc=1
done
echo "tests: $pass passed, $fail failed, $skip skipped"
exit $rc
