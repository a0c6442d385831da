#!/bin/sh
# objstore_log_test.sh BINARY: serve and client commands with --log-format json at debug level;
# every line they write on stderr must parse as one JSON object with the documented fields
# (time, level, logger, message; core/log.h, docs/OPERATIONS.md "Logs").
set -eu
bin=$1
dir=$(mktemp -d)
trap 'kill -9 $server 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir"/*.err 2>/dev/null; exit 1; }
export NETLAYER_LOG_LEVEL=debug
"$bin" --log-format json serve --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
server=$!
i=0
until grep -q '^listening on ' "$dir/serve.out"; do
  i=$((i + 1)); [ $i -lt 200 ] || fail "server did not start"
  sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$dir/serve.out")
"$bin" --log-format json put --server "$addr" k v >/dev/null 2>"$dir/put.err" || fail put
"$bin" --log-format json get --server "$addr" missing >/dev/null 2>"$dir/get.err" || true
"$bin" --log-format json get --server 127.0.0.1:1 k >/dev/null 2>"$dir/refused.err" || true
kill -HUP $server  # a reload's lines too (nothing to reload here)
i=0
until grep -q 'reload (SIGHUP)' "$dir/serve.err"; do
  i=$((i + 1)); [ $i -lt 200 ] || fail "no reload line"
  sleep 0.05
done
kill -TERM $server
wait $server || fail "server exit"
python3 - "$dir"/*.err <<'PY' || fail "a line is not JSON with the documented fields"
import json, sys
n = 0
for path in sys.argv[1:]:
    for line in open(path):
        o = json.loads(line)
        assert set(o) >= {"time", "level", "logger", "message"}, (path, line)
        assert o["time"].endswith("Z") and len(o["time"]) == 24, line
        n += 1
assert n >= 3, n
print("objstore json logs ok:", n, "lines")
PY
