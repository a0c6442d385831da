#!/usr/bin/env bash
# The two set-up commands of README.md, on a fresh Debian 12 machine as root:
#   tools/setup.sh main   install what is missing, build (release), run the main job
#   tools/setup.sh test   install what is missing, build (debug, with AddressSanitizer +
#                         UndefinedBehaviorSanitizer), run every test
# Both are idempotent and incremental: a second run rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  main|test) ;;
  *) echo "usage: tools/setup.sh main|test" >&2; exit 2 ;;
esac

# Debian 12 packages the build and tests need (DESIGN.md §9).
packages=(cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libspdlog-dev libabsl-dev
          libbenchmark-dev libasio-dev libcli11-dev nlohmann-json3-dev libssl-dev
          libsqlite3-dev  # netlayer-bench's SQLite figures beside the durable objstore
          openssl   # openssl: the objstore TLS test makes its certificates with it
          python3 python3-yaml)  # the sweep and bench command-line tests read JSON and the
                                 # sweep recipes' YAML with them
if [ "$mode" = test ]; then
  # The optional metrics adapter (netlayer::metrics, serve --metrics) and promtool, which its
  # test validates the exposition with (docs/OPERATIONS.md, "Metrics").
  packages+=(prometheus-cpp-dev prometheus)
fi
if [ "$mode" = main ]; then
  # gRPC C++ for netlayer-bench's side-by-side figures (docs/PERFORMANCE.md); the bench builds
  # without them, leaving those figures out.
  packages+=(libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler)
fi
tools/install-packages.sh "${packages[@]}"

jobs=$(nproc 2>/dev/null || echo 2)
if [ "$mode" = main ]; then
  preset=release
else
  # A debug build with ASan + UBSan: every test runs once, with memory errors, leaks and
  # undefined behaviour caught (one build and one run instead of a plain and a sanitized one).
  preset=asan
fi
# Configure once; later runs only build what changed. Configure again when packages were
# installed since (optional parts such as the bench's gRPC figures are found at configure time).
stamp="build/$preset/.setup-configured"
if [ ! -f "build/$preset/build.ninja" ] || [ /var/lib/dpkg/status -nt "$stamp" ]; then
  cmake --preset "$preset"
  touch "$stamp"
fi
if [ "$mode" = main ]; then
  # The main job needs only the tools (the tests build with the second command).
  cmake --build --preset "$preset" -j "$jobs" --target netlayer-sim netlayer-bench
  exec tools/main-job.sh "build/$preset"
else
  cmake --build --preset "$preset" -j "$jobs"
  exec ctest --preset "$preset" -j "$jobs"
fi
