#!/usr/bin/env bash
# Tests of the netlayer-sim command itself: exit codes, replay, determinism across fresh
# processes, the timeline file. Usage: netlayer_sim_test.sh path/to/netlayer-sim
set -uo pipefail
sim=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check NAME EXPECTED_RC COMMAND... ; output in $work/out
  local name=$1 want=$2; shift 2
  "$@" >"$work/out" 2>&1
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, wanted $want"; sed 's/^/    /' "$work/out" | tail -20
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
contains() {  # contains NAME TEXT
  if ! grep -qF -- "$2" "$work/out"; then
    echo "FAIL $1: output lacks '$2'"; sed 's/^/    /' "$work/out" | tail -20
    failures=$((failures + 1))
  fi
}

check "help" 0 "$sim" --help
contains "help" "check-determinism"
check "no subcommand is bad usage" 2 "$sim"
check "unknown scenario is bad usage" 2 "$sim" run no-such-scenario --seed 1
contains "unknown scenario" "known: rpc-faults, reconnect-backoff, smac-stress, tls-rpc"
check "bad seed range is bad usage" 2 "$sim" sweep all --seeds 9..3
check "list" 0 "$sim" list
contains "list" "reconnect-backoff"

check "run passes" 0 "$sim" run rpc-faults --seed 2 --trace "$work/t.txt" --trace-json "$work/t.jsonl" --timeline "$work/t.html"
contains "run passes" "PASS rpc-faults seed=2"
hash=$(grep -o 'trace hash: [0-9a-f]*' "$work/out" | cut -d' ' -f3)
[ -s "$work/t.txt" ] && [ -s "$work/t.jsonl" ] || { echo "FAIL trace files are empty"; failures=$((failures + 1)); }
grep -q '"kind":"connect"' "$work/t.jsonl" || { echo "FAIL JSON trace has no connect event"; failures=$((failures + 1)); }
grep -q '<svg' "$work/t.html" && grep -q '"title":"rpc-faults seed 2"' "$work/t.html" ||
  { echo "FAIL timeline lacks its drawing or data"; failures=$((failures + 1)); }
if grep -qE '(src|href)="https?:' "$work/t.html"; then
  echo "FAIL timeline loads something from the network"; failures=$((failures + 1))
fi

check "replay gives the same hash" 0 "$sim" run rpc-faults --seed 2
contains "replay gives the same hash" "trace hash: $hash"

check "a planted bug fails with a replay line" 1 "$sim" sweep smac-stress --seeds 1..6 --plant drop-first-byte-of-split-frame
# Replay commands name the binary as it was started, so they run as printed.
contains "a planted bug fails with a replay line" "replay: $sim run smac-stress --seed"
line=$(grep -m1 -o "replay: $sim run smac-stress --seed [0-9]* --plant [a-z-]*" "$work/out" | sed 's/^replay: //')
check "the replay command reproduces the failure" 1 $line --timeline "$work/fail.html"
contains "the replay command reproduces the failure" "FAIL smac-stress"
grep -q 'invariant failed' "$work/fail.html" || { echo "FAIL the failing timeline does not mark the invariant"; failures=$((failures + 1)); }

check "a crashing run is reported and the sweep goes on" 1 "$sim" sweep smac-stress --seeds 1..5 --jobs 2 --plant abort
contains "a crashing run is reported and the sweep goes on" "FAIL smac-stress seed 5: the run crashed (signal 6)"
contains "a crashing run is reported and the sweep goes on" "0 passed, 5 failed"

# Seven built-in scenarios (lock is the seventh).
check "sweep passes" 0 "$sim" sweep all --seeds 1..4 --jobs 2
contains "sweep passes" "28 passed, 0 failed"
check "check-determinism in fresh processes" 0 "$sim" check-determinism all --seeds 7..8
contains "check-determinism in fresh processes" "14 passed, 0 failed"

# Histories (docs/HISTORY.md): run --history writes the clients' history, check-history checks it.
check "run --history" 0 "$sim" run objstore --seed 1 --history "$work/h.jsonl"
contains "run --history" "history: $work/h.jsonl"
check "check-history of a passing run" 0 "$sim" check-history objstore "$work/h.jsonl"
contains "check-history of a passing run" "transactions: ok"
check "a history plant fails the run" 1 "$sim" run objstore --seed 1 --plant cache-unverified-on-reconnect --history "$work/p.jsonl"
check "check-history finds its stale read" 1 "$sim" check-history objstore "$work/p.jsonl"
contains "check-history finds its stale read" "(a stale read)"
check "check-history: unknown model" 2 "$sim" check-history no-such-model "$work/h.jsonl"
check "check-history: no such file" 2 "$sim" check-history objstore "$work/none.jsonl"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all netlayer-sim checks passed"
