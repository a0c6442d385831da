#!/usr/bin/env bash
# docs/sweep/: the many-machine sweep recipes, checked as far as one machine can. The YAML files
# parse, name `sweep ... --shard K/N --json` with N matching their shard count, and end with
# `merge`; their shard commands, run here (the matrix / JOB_COMPLETION_INDEX substituted, mini-sim
# for the tool), produce files that merge; the GNU parallel script runs its local mode.
# Usage: sweep_recipes_test.sh path/to/mini-sim
set -uo pipefail
sim=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
docs=$(cd "$(dirname "$0")/../../docs/sweep" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# Extract each recipe's shard command and merge command with PyYAML.
python3 - "$docs" "$work" <<'PY' || fail "the YAML recipes do not hold what they should"
import sys, yaml, re, os
docs, work = sys.argv[1], sys.argv[2]
gh = yaml.safe_load(open(os.path.join(docs, "github-actions.yml")))
shards = gh["jobs"]["sweep"]["strategy"]["matrix"]["shard"]
assert shards == list(range(1, len(shards) + 1)), shards
assert str(gh["env"]["SHARDS"]) == str(len(shards)), gh["env"]
runs = [s["run"] for s in gh["jobs"]["sweep"]["steps"] if "run" in s and "sweep" in s["run"]]
assert len(runs) == 1 and "--shard ${{ matrix.shard }}/$SHARDS" in runs[0] and "--json" in runs[0], runs
merges = [s["run"] for s in gh["jobs"]["merge"]["steps"] if "run" in s and " merge " in s["run"]]
assert len(merges) == 1, merges
assert gh["jobs"]["merge"]["needs"] == "sweep"
open(os.path.join(work, "gh-shard.sh"), "w").write(runs[0].replace("${{ matrix.shard }}", "$K") + "\n")
open(os.path.join(work, "gh-merge.sh"), "w").write(merges[0] + "\n")

jobs = list(yaml.safe_load_all(open(os.path.join(docs, "k8s-indexed-job.yaml"))))
sweep, merge = jobs
assert sweep["kind"] == "Job" and sweep["spec"]["completionMode"] == "Indexed"
c = sweep["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
assert env["SHARDS"] == str(sweep["spec"]["completions"]), (env, sweep["spec"])
cmd = c["args"][0]
assert "JOB_COMPLETION_INDEX" in cmd and '--shard "$k/$SHARDS"' in cmd and "--json" in cmd, cmd
mc = merge["spec"]["template"]["spec"]["containers"][0]
assert " merge " in mc["args"][0]
open(os.path.join(work, "k8s-shard.sh"), "w").write(cmd.replace("/results/", "") + "\n")
open(os.path.join(work, "k8s-merge.sh"), "w").write(mc["args"][0].replace("/results/", "") + "\n")
PY

export SIM=$sim SCENARIO=ticks SEEDS=1..400 SHARDS=4
for recipe in gh k8s; do
  mkdir -p "$work/$recipe"
  for k in 1 2 3 4; do
    (cd "$work/$recipe" && K=$k JOB_COMPLETION_INDEX=$((k - 1)) sh "$work/$recipe-shard.sh" >/dev/null 2>&1)
    [ -s "$work/$recipe/shard-$k.json" ] || fail "$recipe shard $k wrote no JSON"
  done
  out=$(cd "$work/$recipe" && sh "$work/$recipe-merge.sh" 2>&1) || fail "$recipe merge: $out"
  echo "$out" | grep -qx "400 passed, 0 failed" || fail "$recipe merge summary: $out"
  echo "ok   $recipe recipe"
done

mkdir -p "$work/parallel"
out=$(OUT="$work/parallel" SWEEP_HOSTS= "$docs/parallel-ssh.sh" 2>&1) || fail "parallel-ssh.sh (local): $out"
echo "$out" | grep -qx "400 passed, 0 failed" || fail "parallel-ssh.sh summary: $out"
echo "ok   parallel-ssh recipe"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all sweep recipe checks passed"
