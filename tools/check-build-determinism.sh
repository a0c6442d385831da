#!/usr/bin/env bash
# Determinism across build types: every built-in scenario's trace hash for the same seed must be
# the same from a Debug and a Release netlayer-sim (DESIGN.md §9: "the same seed gives the same
# trace, in a fresh process, in Debug and Release"). A difference means some decision depends on
# optimisation (uninitialised memory, pointer order, floating point): a bug to fix at its cause.
#
#   tools/check-build-determinism.sh DEBUG_SIM RELEASE_SIM [SEEDS]   (SEEDS default 1..5)
set -euo pipefail
debug=${1:?usage: $0 DEBUG_NETLAYER_SIM RELEASE_NETLAYER_SIM [A..B]}
release=${2:?usage: $0 DEBUG_NETLAYER_SIM RELEASE_NETLAYER_SIM [A..B]}
range=${3:-1..5}
first=${range%..*}
last=${range#*..}
# Scenario lines only: a scenario's "--plant NAME" lines are not scenarios.
mapfile -t scenarios < <("$release" list | awk 'NF && $1 !~ /:$/ && $1 !~ /^-/ {print $1}')
[ "${#scenarios[@]}" -gt 0 ] || { echo "no scenarios listed by $release" >&2; exit 1; }
hash_of() {  # BINARY SCENARIO SEED -> the trace hash (a failing run still prints one)
  "$1" run "$2" --seed "$3" 2>/dev/null | sed -n 's/^trace hash: \([0-9a-f]*\).*/\1/p' | head -n1
}
bad=0
runs=0
for s in "${scenarios[@]}"; do
  for ((seed = first; seed <= last; seed++)); do
    d=$(hash_of "$debug" "$s" "$seed" || true)
    r=$(hash_of "$release" "$s" "$seed" || true)
    runs=$((runs + 1))
    if [ -z "$d" ] || [ "$d" != "$r" ]; then
      echo "DIFFERENT: $s seed $seed: debug '${d:-none}' release '${r:-none}'"
      bad=$((bad + 1))
    fi
  done
done
echo "debug vs release: $runs runs of ${#scenarios[@]} scenarios, $bad different"
[ "$bad" -eq 0 ]
