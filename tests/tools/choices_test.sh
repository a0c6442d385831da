#!/usr/bin/env bash
# netlayer-sim --choices (sim/choices.h): a run is a function of its choice string.
#   - a seeded run's choices written out (--write-choices) replay to the same trace hash in a
#     fresh process, and so do the 8 bytes of the seed alone;
#   - a failing run's choice file replays to the same failure, drives --timeline, and shrinks.
# Usage: choices_test.sh path/to/netlayer-sim
set -uo pipefail
sim=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
hash_of() { sed -n 's/^trace hash: \([0-9a-f]*\).*/\1/p' "$1"; }

"$sim" run rpc-faults --seed 17 --write-choices s17.choices >seeded.out 2>/dev/null || fail "seed 17 failed"
"$sim" run rpc-faults --choices s17.choices >replay.out 2>/dev/null || fail "the choices of seed 17 failed"
printf '\0\0\0\0\0\0\0\021' >raw17
"$sim" run rpc-faults --choices raw17 >raw.out 2>/dev/null || fail "the raw bytes of seed 17 failed"
h=$(hash_of seeded.out)
[ -n "$h" ] || fail "no trace hash"; [ "$(hash_of replay.out)" = "$h" ] || fail "recorded choices diverged"
[ "$(hash_of raw.out)" = "$h" ] || fail "the seed's bytes diverged"
head -1 s17.choices | grep -qx netlayer-choices-1 || fail "not a choice file"

# A failing run: seed 3 of keep-calls-on-close, its choices recorded, replayed and shrunk.
plant=keep-calls-on-close
"$sim" sweep rpc-faults --seeds 1..10 --plant $plant --jobs 1 >sweep.out 2>&1
seed=$(sed -n 's/^FAIL rpc-faults seed \([0-9]*\):.*/\1/p' sweep.out | head -1)
[ -n "$seed" ] || fail "the sweep found no failing seed"
"$sim" run rpc-faults --seed "$seed" --plant $plant --write-choices f.choices >f.out 2>/dev/null
"$sim" run rpc-faults --choices f.choices --timeline t.html >g.out 2>/dev/null
[ $? = 1 ] || fail "the failing choices passed"
[ "$(hash_of f.out)" = "$(hash_of g.out)" ] || fail "the failing choices diverged"
grep -q "replay:    .* run rpc-faults --choices f.choices --plant $plant" g.out || fail "no replay line"
[ -s t.html ] || fail "no timeline"
"$sim" run smac-stress --choices f.choices >/dev/null 2>&1
[ $? = 2 ] || fail "choices of another scenario were accepted"
"$sim" shrink rpc-faults --choices f.choices --out f.tape --max-runs 40 >shrink.out 2>&1 ||
  { cat shrink.out; fail "shrink --choices"; }
grep -q "^replay: .* run rpc-faults --choices f.choices --tape f.tape" shrink.out || fail "no shrink replay"
"$sim" run rpc-faults --choices f.choices --tape f.tape >/dev/null 2>&1
[ $? = 1 ] || fail "the shrunk tape passed"
echo "all choices checks passed"
