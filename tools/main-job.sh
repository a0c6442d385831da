#!/usr/bin/env bash
# The main job: a seeded sweep of every built-in scenario with netlayer-sim (release build).
# NETLAYER_SEEDS=a..b picks the seeds (default 1..200); NETLAYER_JOBS the worker processes.
set -euo pipefail
build=${1:-build/release}
exec "$build/tools/netlayer-sim" sweep all --seeds "${NETLAYER_SEEDS:-1..200}" \
  --jobs "${NETLAYER_JOBS:-$(nproc 2>/dev/null || echo 2)}"
