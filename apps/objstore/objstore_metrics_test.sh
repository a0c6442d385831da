#!/bin/sh
# objstore_metrics_test.sh BINARY: serve --metrics on loopback, make calls (a put, a get of a
# missing object, a watch that receives the put's invalidation, a silent connection the
# handshake timeout closes), scrape /metrics, validate it with `promtool check metrics` (Debian
# package prometheus; tools/setup.sh installs it) and check the counters moved by what the calls
# did (docs/OPERATIONS.md, "Metrics").
set -eu
bin=$1
if ! command -v promtool >/dev/null 2>&1; then
  echo "FAIL: promtool is missing: apt-get install prometheus (tools/setup.sh test installs it)"
  exit 1
fi
dir=$(mktemp -d)
server=
watch=
trap 'kill -9 $server $watch 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir"/*.err 2>/dev/null; exit 1; }
wait_for() {  # wait_for FILE PATTERN: until a line of FILE matches (the process writes it)
  i=0
  until grep -q "$2" "$1"; do
    i=$((i + 1)); [ $i -lt 400 ] || fail "no '$2' in $1"
    sleep 0.05
  done
}
"$bin" serve --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --handshake-timeout 2 \
  >"$dir/serve.out" 2>"$dir/serve.err" &
server=$!
wait_for "$dir/serve.out" '^listening on '
addr=$(sed -n 's/^listening on //p' "$dir/serve.out")
metrics=$(sed -n 's/^metrics on //p' "$dir/serve.out")
[ -n "$metrics" ] || fail "serve printed no 'metrics on ADDR'"

"$bin" watch --server "$addr" --count 1 >"$dir/watch.out" 2>"$dir/watch.err" &
watch=$!
wait_for "$dir/watch.out" '^watching epoch'
"$bin" put --server "$addr" k v >/dev/null 2>"$dir/put.err" || fail put
wait $watch || fail "watch exit"
watch=
"$bin" get --server "$addr" missing >/dev/null 2>"$dir/get.err" && fail "get of a missing object"
# A connection that never says hello: the server closes it at its handshake timeout (2 s: long
# enough that the real clients above say hello in time on a loaded machine).
python3 - "$addr" <<'PY' || fail "silent connection"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=30)
while s.recv(4096):  # the server's hello, then EOF when it gives up on ours
    pass
PY

python3 - "http://$metrics/metrics" "$dir/metrics.txt" <<'PY' || fail "scrape"
import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=30).read())
PY
promtool check metrics <"$dir/metrics.txt" >"$dir/promtool.err" 2>&1 ||
  fail "promtool check metrics: $(cat "$dir/promtool.err")"

python3 - "$dir/metrics.txt" <<'PY' || fail "counters"
import re, sys
samples = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line.strip())
    assert m, line
    labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
    samples[(m.group(1), labels)] = float(m.group(4))

def get(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)

def expect(what, got, want):
    if got != want:
        sys.exit(f"{what}: {got}, expected {want}")

S = dict(server="objstore")
expect("commits", get("netlayer_objstore_commits_total"), 1)
# The put's invalidation goes to every ready session, the committer's included (docs/OBJSTORE.md
# §2): the watcher and the put client.
expect("invalidations sent", get("netlayer_objstore_invalidations_sent_total"), 2)
expect("conflicts", get("netlayer_objstore_conflicts_total"), 0)
expect("commit calls OK", get("netlayer_rpc_server_calls_total", method="commit", code="OK", **S), 1)
expect("load NOT_FOUND", get("netlayer_rpc_server_calls_total", method="load", code="NOT_FOUND", **S), 2)
expect("commit latency count", get("netlayer_rpc_server_call_duration_seconds_count", method="commit", **S), 1)
expect("commit latency +Inf bucket", get("netlayer_rpc_server_call_duration_seconds_bucket", method="commit", le="+Inf", **S), 1)
# Sessions: the watch, the put, the get, the silent connection.
expect("sessions accepted", get("netlayer_rpc_server_sessions_accepted_total", **S), 4)
expect("handshake timeouts", get("netlayer_rpc_server_refusals_total", kind="handshake_timeout", **S), 1)
expect("handshake failures", get("netlayer_rpc_server_handshake_failures_total", reason="timeout", **S), 1)
expect("max_sessions refusals", get("netlayer_rpc_server_refusals_total", kind="max_sessions", **S), 0)
expect("pushes", get("netlayer_rpc_server_pushes_total", **S), 2)  # the two invalidations
for name in ("netlayer_rpc_server_received_bytes_total", "netlayer_rpc_server_sent_bytes_total"):
    if get(name, **S) <= 0:
        sys.exit(f"{name} did not move")
expect("inflight", get("netlayer_rpc_server_inflight_calls", **S), 0)
print("objstore metrics ok:", len(samples), "samples")
PY
kill -TERM $server
wait $server || fail "server exit"
server=
