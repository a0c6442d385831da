#!/usr/bin/env bash
# examples/scenario/check.sh BUILD_DIR: installs BUILD_DIR into a scratch prefix, builds this
# outside project against it with find_package(netlayer), and walks the workflow of
# docs/SCENARIOS.md: tests pass; a sweep with the planted bug catches it; the failing seed's
# printed replay command, run as printed, fails with the same hash; run --timeline and
# check-determinism on the scenario.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
work="$build/example-scenario-check"
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
"$src/../../tests/support/configure-outside.sh" "$build" "$src" "$work/build" "$work/prefix"
cmake --build "$work/build" >/dev/null
cd "$work/build"
step() { echo "--- $*"; }

step "kv_test (guarded, default seeds)"
./kv_test --gtest_brief=1 | grep -E '^\[ scenario \]|PASSED'

step "kv_test with the planted bug must fail, with its own replay line"
if NETLAYER_PLANT=lose-on-resize NETLAYER_SEEDS=1..4 ./kv_test --gtest_filter=KvScenario.Seeds >test.out 2>&1; then
  echo "the planted bug survived kv_test"; exit 1
fi
grep -m1 'replay: *NETLAYER_PLANT=lose-on-resize NETLAYER_SEED=[0-9]* ./kv_test --gtest_filter=KvScenario.Seeds' test.out

step "sweep with the planted bug must catch it"
if ./kv-sim sweep kv --seeds 1..6 --plant lose-on-resize >sweep.out 2>sweep.err; then
  echo "the planted bug survived the sweep"; cat sweep.out; exit 1
fi
grep -q "an acknowledged update is never lost" sweep.out
replay=$(grep -m1 -o 'replay: .*' sweep.out | sed 's/^replay: //')
echo "printed: $replay"
case "$replay" in "./kv-sim run kv --seed "*" --plant lose-on-resize") ;; *) echo "bad replay"; exit 1;; esac

step "the replay command, run as printed, reproduces the failure and its hash"
if $replay >replay1.out; then echo "the replay passed"; exit 1; fi
if $replay >replay2.out; then echo "the second replay passed"; exit 1; fi
grep -q "invariant: an acknowledged update is never lost" replay1.out
h1=$(grep -o 'trace hash: [0-9a-f]*' replay1.out); h2=$(grep -o 'trace hash: [0-9a-f]*' replay2.out)
[ -n "$h1" ] && [ "$h1" = "$h2" ] || { echo "hashes differ: $h1 / $h2"; exit 1; }
echo "$h1"

step "the sweep without the bug passes"
./kv-sim sweep kv --seeds 1..4 2>/dev/null | tail -1 | grep -x "4 passed, 0 failed"

step "run --timeline"
./kv-sim run kv --seed 3 --timeline t.html | grep -q "PASS kv seed=3"
grep -q '<svg' t.html && grep -q '"title":"kv seed 3"' t.html

step "check-determinism in fresh processes"
./kv-sim check-determinism kv --seeds 1..2 | tail -1 | grep -x "2 passed, 0 failed"

step "explore: a repeatable exploration finds the planted bug (a package built with preset explore), or exits 2 saying what to install"
set +e
./kv-sim explore kv --plant lose-on-resize --seed 1 --runs 200 --corpus explore-kv >explore.out 2>explore.err
rc=$?
set -e
case $rc in
  1) grep -q '^FINDING 1 ' explore.out
     replay=$(sed -n 's/^  replay:  //p' explore.out | head -1)
     if $replay >explore-replay.out 2>/dev/null; then echo "the explore replay passed"; exit 1; fi
     grep -q "invariant: an acknowledged update is never lost" explore-replay.out ;;
  2) grep -q "explore needs libFuzzer" explore.err ;;
  *) echo "explore exited $rc"; cat explore.out explore.err; exit 1 ;;
esac

echo "example scenario ok"
