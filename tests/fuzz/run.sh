#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: builds the libFuzzer targets with clang (AddressSanitizer +
# UndefinedBehaviorSanitizer + libFuzzer) in their own build directory and runs each for SECONDS
# (default 20) of fuzzing, starting from the checked-in corpus (tests/fuzz/corpus/<target>/).
# Exits non-zero if a target finds a crash; the crashing input is left in
# $BUILD/artifacts/ (copy it into tests/fuzz/corpus/<target>/ to make it a regression test run by
# fuzz_corpus_test). Installs clang and libclang-rt-14-dev with tools/install-packages.sh if missing.
#
# Environment: NETLAYER_FUZZ_BUILD_DIR (default build/fuzz), NETLAYER_FUZZ_JOBS (build jobs).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
build=${NETLAYER_FUZZ_BUILD_DIR:-build/fuzz}
jobs=${NETLAYER_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
targets=(smac_decoder envelope handshake session tls)

tools/install-packages.sh clang libclang-rt-14-dev

flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNETLAYER_FUZZ=ON -DNETLAYER_BUILD_TOOLS=OFF \
    -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]/%/_fuzz}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  echo "=== fuzzing $t for ${seconds}s"
  # The working corpus grows in $build; the checked-in seeds are read only.
  if ! "$build/tests/rpc/${t}_fuzz" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
       -timeout=10 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
       "$corpus" "tests/fuzz/corpus/$t" 2>"$build/$t.log"; then
    echo "FAILED: $t found a crash (log: $build/$t.log, input: $build/artifacts/$t-*)"
    tail -40 "$build/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
