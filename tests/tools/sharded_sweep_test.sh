#!/usr/bin/env bash
# Sharded sweeps: seeds 1..2000 of mini-sim's cheap "ticks" scenario in 4 shards, merged, must
# report exactly what the unsharded sweep reports (counts, simulated time, combined hash, every
# failure with its replay command); merge must refuse shard sets that do not belong together.
# Usage: sharded_sweep_test.sh path/to/mini-sim
set -uo pipefail
sim=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
expect_rc() {  # expect_rc NAME WANT COMMAND...; output in $work/out
  local name=$1 want=$2; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$name: exit $rc, wanted $want"; sed 's/^/    /' "$work/out" "$work/err" | tail -20
  else
    echo "ok   $name"
  fi
}
# The summary that sweep and merge share: everything after their first line.
summary() { tail -n +2 "$1"; }

for plant in "" lose-a-tick; do
  p=(); [ -n "$plant" ] && p=(--plant "$plant")
  want=0; [ -n "$plant" ] && want=1
  expect_rc "unsharded sweep ${plant:-(no plant)}" $want "$sim" sweep ticks --seeds 1..2000 --jobs 2 "${p[@]}" --json "$work/all.json"
  cp "$work/out" "$work/all.out"
  for k in 1 2 3 4; do
    expect_rc "shard $k/4 ${plant:-(no plant)}" $want "$sim" sweep ticks --seeds 1..2000 --jobs 2 "${p[@]}" --shard $k/4 --json "$work/s$k.json"
    grep -q "shard $k/4: seeds $(( (k - 1) * 500 + 1 ))..$(( k * 500 )) of 1..2000" "$work/out" || fail "shard $k/4 ran the wrong slice: $(head -1 "$work/out")"
  done
  # Merge in a shuffled order: the summary must not depend on it.
  expect_rc "merge ${plant:-(no plant)}" $want "$sim" merge "$work/s3.json" "$work/s1.json" "$work/s4.json" "$work/s2.json"
  if ! diff <(summary "$work/all.out") <(summary "$work/out") >"$work/diff"; then
    fail "merged shards differ from the unsharded sweep:"; cat "$work/diff"
  fi
  if [ -n "$plant" ]; then
    grep -q "^FAIL ticks seed [0-9]*: every tick ran" "$work/out" || fail "merge lists no failure"
    grep -q "  replay: $sim run ticks --seed [0-9]* --plant lose-a-tick" "$work/out" || fail "merge lacks the replay commands"
    # The JSON names every failure with its replay command, counts and the build id.
    python3 - "$work/all.json" <<'PY' || fail "the --json file lacks what it promises"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["runs"] == 2000 and j["failed"] == len(j["failures"]) > 0, j["failed"]
assert all(f["replay"].endswith("--plant lose-a-tick") for f in j["failures"])
assert len(j["build_id"]) == 16 and j["simulated_ns"] > 0 and j["wall_seconds"] >= 0
PY
    # The first failure's replay command, run as printed, fails the same way.
    replay=$(grep -m1 -o "replay: .*" "$work/all.out" | sed 's/^replay: //')
    expect_rc "a failure's replay command reproduces it" 1 $replay
    grep -q "FAIL ticks seed" "$work/out" || fail "the replay did not fail the same way"
  fi
done

expect_rc "merge refuses a missing shard" 2 "$sim" merge "$work/s1.json" "$work/s2.json" "$work/s3.json"
grep -q "missing shard" "$work/err" || fail "no 'missing shard' message"
expect_rc "merge refuses overlapping shards" 2 "$sim" merge "$work/s1.json" "$work/s1.json" "$work/s3.json" "$work/s4.json"
sed 's/"build_id": "[0-9a-f]*"/"build_id": "0000000000000000"/' "$work/s4.json" >"$work/other-build.json"
expect_rc "merge refuses shards of another build" 2 "$sim" merge "$work/s1.json" "$work/s2.json" "$work/s3.json" "$work/other-build.json"
grep -q "differ in build_id" "$work/err" || fail "no build id message"
"$sim" sweep ticks --seeds 1..1000 --jobs 2 --shard 4/4 --json "$work/other-range.json" >/dev/null 2>&1
expect_rc "merge refuses shards of another seed range" 2 "$sim" merge "$work/s1.json" "$work/s2.json" "$work/s3.json" "$work/other-range.json"
expect_rc "bad --shard is bad usage" 2 "$sim" sweep ticks --seeds 1..10 --shard 5/4

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all sharded sweep checks passed"
