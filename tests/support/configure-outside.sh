#!/usr/bin/env bash
# tests/support/configure-outside.sh BUILD_DIR SRC_DIR OUT_DIR PREFIX: configures an outside
# project (SRC_DIR, into OUT_DIR) against netlayer installed from BUILD_DIR into PREFIX, with the
# compiler, build type and flags BUILD_DIR was configured with: a sanitized build's installed
# static libraries need their runtime (-fsanitize=...) in the outside project's link too.
set -euo pipefail
build=$1 src=$2 out=$3 prefix=$4
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n1; }
cmake -S "$src" -B "$out" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$(cache_value CMAKE_CXX_COMPILER)" \
  -DCMAKE_BUILD_TYPE="$(cache_value CMAKE_BUILD_TYPE)" \
  -DCMAKE_CXX_FLAGS="$(cache_value CMAKE_CXX_FLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(cache_value CMAKE_EXE_LINKER_FLAGS)" >/dev/null
