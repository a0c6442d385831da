#!/usr/bin/env bash
# netlayer-sim shrink: a planted bug found by a sweep shrinks to a tape of at most a handful of
# faults, and the shrunk tape replays to the same invariant and the same trace hash every time.
# Usage: shrink_test.sh path/to/netlayer-sim
set -uo pipefail
sim=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
plant=keep-calls-on-close
"$sim" sweep rpc-faults --seeds 1..10 --plant $plant --jobs 1 >sweep.out 2>&1
seed=$(sed -n 's/^FAIL rpc-faults seed \([0-9]*\):.*/\1/p' sweep.out | head -1)
invariant=$(sed -n 's/^FAIL rpc-faults seed [0-9]*: //p' sweep.out | head -1)
[ -n "$seed" ] || { echo "FAIL: the sweep found no failing seed"; cat sweep.out; exit 1; }
"$sim" shrink rpc-faults --seed "$seed" --plant $plant --out min.tape --max-runs 100 >shrink.out 2>&1
rc=$?
[ "$rc" = 0 ] || { echo "FAIL: shrink exited $rc"; cat shrink.out; exit 1; }
grep -q "^replay: .* run rpc-faults --seed $seed --plant $plant --tape min.tape --timeline out.html" shrink.out ||
  { echo "FAIL: no replay command"; cat shrink.out; exit 1; }
faults=$(grep -c '"p":' min.tape)
[ "$faults" -le 5 ] || { echo "FAIL: $faults decisions left"; cat min.tape; exit 1; }
hashes=""
for i in 1 2 3; do
  "$sim" run rpc-faults --seed "$seed" --plant $plant --tape min.tape >run$i.out 2>&1
  [ $? = 1 ] || { echo "FAIL: the shrunk replay did not fail"; cat run$i.out; exit 1; }
  grep -qF "invariant: $invariant" run$i.out || { echo "FAIL: another invariant"; cat run$i.out; exit 1; }
  hashes="$hashes $(sed -n 's/^trace hash: \([0-9a-f]*\).*/\1/p' run$i.out)"
done
[ "$(echo $hashes | tr ' ' '\n' | sort -u | wc -l)" = 1 ] || { echo "FAIL: hashes differ:$hashes"; exit 1; }
echo "seed $seed shrank to $faults decisions; hash$hashes"
echo "all shrink checks passed"
