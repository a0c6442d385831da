#!/usr/bin/env bash
# tests/consumer/check.sh BUILD_DIR: installs BUILD_DIR into a scratch prefix, then configures,
# builds and runs the outside consumer against it with find_package(netlayer).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
work="$build/consumer-check"
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# The Host interface and the runtimes the consumer builds on are installed.
for header in core/host.h posix/runtime.h; do
  [ -f "$work/prefix/include/netlayer/$header" ] || { echo "not installed: netlayer/$header"; exit 1; }
done
"$src/../support/configure-outside.sh" "$build" "$src" "$work/build" "$work/prefix"
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
