#!/usr/bin/env bash
# The GoogleTest glue end to end: the summary line, NETLAYER_JOBS giving the same result in
# worker processes (under the guard), and a planted failure's printed replay line, run as
# printed, failing the same way. Usage: scenario_gtest_check.sh path/to/scenario_gtest_test
set -uo pipefail
bin=$1
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
summary() { grep -o '\[ scenario \] ticks: .*' | sed 's/ ([0-9]* runs, [0-9]* jobs\{0,1\})//'; }

one=$("$bin" --gtest_filter=GlueTest.Ticks 2>&1) || fail "one process: $one"
two=$(NETLAYER_JOBS=2 "$bin" --gtest_filter=GlueTest.Ticks 2>&1) || fail "two jobs: $two"
echo "$two" | grep -q "(300 runs, 2 jobs), 0 failed" || fail "no summary line with 2 jobs: $two"
[ "$(echo "$one" | summary)" = "$(echo "$two" | summary)" ] || fail "jobs change the result: $one / $two"

out=$(NETLAYER_JOBS=2 NETLAYER_PLANT=lose-a-tick "$bin" --gtest_filter=GlueTest.Ticks 2>&1) &&
  fail "the planted bug was not caught"
echo "$out" | grep -q "planted lose-a-tick, [1-9][0-9]* failed" || fail "no failing summary: $out"
replay=$(echo "$out" | grep -m1 -o 'replay: .*' | sed 's/^replay: *//')
echo "$replay" | grep -q "^NETLAYER_PLANT=lose-a-tick NETLAYER_SEED=[0-9]* $bin --gtest_filter=GlueTest.Ticks$" ||
  fail "replay line: '$replay'"
hash=$(echo "$out" | grep -m1 -o 'FAIL ticks seed=[0-9]* hash=[0-9a-f]*')
again=$(env $replay 2>&1) && fail "the replay passed: $again"
echo "$again" | grep -qF "$hash" || fail "the replay did not reproduce '$hash': $again"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all scenario gtest checks passed"
