#!/usr/bin/env bash
# netlayer-sim explore (the `explore` preset's build): a repeatable exploration (--seed, --runs)
# of rpc-faults with a planted bug finds it, writes a choice file, prints the one command that
# replays it, and that command fails the same way in a fresh process; the same --seed and --runs
# find the same choices again.
# Usage: explore_test.sh path/to/netlayer-sim
set -uo pipefail
sim=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
plant=keep-calls-on-close
explore() {
  "$sim" explore rpc-faults --plant $plant --seed 7 --runs 400 --corpus "$1" >"$1.out" 2>"$1.err"
}
explore a
rc=$?
[ $rc = 1 ] || { cat a.out a.err; fail "explore exited $rc, not 1 (a finding)"; }
replay=$(sed -n 's/^  replay:  //p' a.out | head -1)
[ -n "$replay" ] || { cat a.out; fail "no replay command"; }
invariant=$(sed -n 's/^  the replay, in a fresh process: fails "\(.*\)", trace hash.*/\1/p' a.out)
[ -n "$invariant" ] || { cat a.out; fail "the replay did not fail"; }
grep -q "^explore rpc-faults-$plant: .* findings 1" a.out || { cat a.out; fail "no summary"; }
$replay >replay.out 2>/dev/null
[ $? = 1 ] || fail "the printed replay did not fail"
grep -qF "  invariant: $invariant" replay.out || { cat replay.out; fail "the replay failed differently"; }
explore b
cmp -s a/finding-1.choices b/finding-1.choices || fail "the same --seed and --runs found other choices"
echo "all explore checks passed"
