#!/usr/bin/env bash
# A sweep over a few machines with GNU parallel and ssh: shard k of N runs on whichever host is
# free, its JSON comes back (--return), then one merge here.
#   SIM=/opt/netlayer/bin/netlayer-sim SWEEP_HOSTS=8/box1,8/box2 SEEDS=1..20000 SHARDS=16 \
#     docs/sweep/parallel-ssh.sh
# SIM must be the same build at the same path on every host (merge checks the build id).
# SWEEP_HOSTS empty: the shards run here, two at a time (no ssh, no parallel needed).
# Exit status: merge's (0 all passed, 1 a failure, 2 shards that do not belong together).
set -uo pipefail
SIM=${SIM:-netlayer-sim}
SCENARIO=${SCENARIO:-all}
SEEDS=${SEEDS:-1..2000}
SHARDS=${SHARDS:-4}
SWEEP_HOSTS=${SWEEP_HOSTS:-}
OUT=${OUT:-.}

# The command for shard {} (GNU parallel's placeholder), the same on every host.
shard_command="\"$SIM\" sweep \"$SCENARIO\" --seeds \"$SEEDS\" --shard {}/$SHARDS --json shard-{}.json >shard-{}.log 2>&1"

cd "$OUT" || exit 2
rm -f shard-*.json
if [ -n "$SWEEP_HOSTS" ]; then
  parallel --sshlogin "$SWEEP_HOSTS" --return shard-{}.json --return shard-{}.log --cleanup \
    "$shard_command" ::: $(seq 1 "$SHARDS")
else
  seq 1 "$SHARDS" | xargs -P 2 -I{} sh -c "$shard_command"
fi
"$SIM" merge shard-*.json
