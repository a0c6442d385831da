#!/usr/bin/env bash
# netlayer-bench runs that once failed or flooded the output; exit status and output only, speed
# is never checked.
#   - The scale group past the rpc server's default max_sessions (1024): the bench configures
#     its child server for the figure's connections, so all 1100 are served (with the default
#     the 1025th was refused: "rpc handshake: UNAVAILABLE: connection closed: peer closed").
#   - The rpc-faults scenario figure: its deliberate faults (a reply one byte over its 64 KiB
#     frame limit, resets) log warnings that the bench keeps quiet unless NETLAYER_LOG_LEVEL
#     asks for them.
# Usage: bench_cli_test.sh path/to/netlayer-bench
set -uo pipefail
bench=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# 1100 client connections in the bench, 1100 in the server child: each process needs ~1200
# descriptors (the bench raises its soft limit to the hard one).
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1400 ]; then
  echo "skipping the scale check: RLIMIT_NOFILE hard limit is $hard"
else
  "$bench" --filter scale/asio/1100 --scale-connections 1100 --reps 1 --seconds 0.2 \
    --json "$work/scale.json" >"$work/scale.out" 2>"$work/scale.err"
  rc=$?
  [ "$rc" = 0 ] || fail "scale/asio/1100: exit status $rc: $(grep -m1 ERROR "$work/scale.out")"
  python3 - "$work/scale.json" <<'PY' || fail "scale/asio/1100: not measured (see above)"
import json, sys
doc = json.load(open(sys.argv[1]))
figures = {f["id"]: f for f in doc["figures"]}
f = figures.get("scale/asio/1100")
assert f is not None, sorted(figures)
assert f["error"] is None, f["error"]
assert len(f["samples"]) == 1 and f["samples"][0] > 0, f["samples"]
ratios = [r for r in doc["ratios"] if r["figure"] == "scale/asio/1100" and r.get("reference")]
assert len(ratios) == 1 and ratios[0]["reference"] == 11000 and ratios[0]["target"] == 0.99, ratios
PY
  if grep -q "refusing the connection" "$work/scale.err"; then
    fail "scale/asio/1100: the server refused connections: $(grep -m1 refusing "$work/scale.err")"
  fi
fi

"$bench" --filter sim/rpc-faults/seeds-per-second --reps 1 --seconds 0.1 \
  >"$work/faults.out" 2>"$work/faults.err"
rc=$?
[ "$rc" = 0 ] || fail "sim/rpc-faults: exit status $rc"
if grep -q "\[warning\]" "$work/faults.err"; then
  fail "sim/rpc-faults: the scenario's warnings reached the output: $(grep -m1 '\[warning\]' "$work/faults.err")"
fi
NETLAYER_LOG_LEVEL=warn "$bench" --filter sim/rpc-faults/seeds-per-second --reps 1 --seconds 0.1 \
  >"$work/loud.out" 2>"$work/loud.err"
grep -q "could not be sent" "$work/loud.err" ||
  fail "sim/rpc-faults: NETLAYER_LOG_LEVEL=warn shows no warning of the oversized reply"

if [ "$failures" = 0 ]; then
  echo "all netlayer-bench cli checks passed"
else
  echo "$failures netlayer-bench cli check(s) failed"
  exit 1
fi
