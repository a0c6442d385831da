#!/usr/bin/env bash
# The main job: a seeded scenario sweep with netlayer-sim (a core demo until it exists).
set -euo pipefail
build=${1:-build/release}
if [ -x "$build/tools/netlayer-sim" ]; then
  exec "$build/tools/netlayer-sim" sweep all --seeds "${NETLAYER_SEEDS:-1..200}"
fi
exec "$build/tools/netlayer-core-demo"
