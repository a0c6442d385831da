#!/bin/sh
# objstore_cli_test.sh BINARY: serve on an ephemeral loopback port; put, get, a watcher seeing the
# invalidation, stats, exit codes; then SIGTERM and a clean, graceful exit.
set -eu
bin=$1
dir=$(mktemp -d)
trap 'kill -9 $server $watcher 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" serve --listen 127.0.0.1:0 --shutdown-grace 5 >"$dir/serve.out" 2>"$dir/serve.err" &
server=$!
watcher=
i=0
until grep -q '^listening on ' "$dir/serve.out"; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "server did not start"; cat "$dir/serve.err"; exit 1; }
  sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$dir/serve.out")
fail() { echo "FAIL: $*"; cat "$dir"/*.out "$dir"/*.err 2>/dev/null; exit 1; }

"$bin" put --server "$addr" greeting hello >"$dir/put1.out" || fail "put"
grep -q '^committed tid 1$' "$dir/put1.out" || fail "first put is tid 1"
[ "$("$bin" get --server "$addr" greeting 2>/dev/null)" = hello ] || fail "get"
status=0; "$bin" get --server "$addr" missing >/dev/null 2>&1 || status=$?
[ $status -eq 3 ] || fail "get of a missing object exits 3, got $status"
status=0; "$bin" get --server "$addr" 'bad oid!' >/dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "a bad oid exits 2, got $status"
status=0; "$bin" frobnicate >/dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "an unknown command exits 2, got $status"
"$bin" --help | grep -q watch || fail "--help lists the commands"

# A watcher sees the next commit's invalidation.
"$bin" watch --server "$addr" --count 1 >"$dir/watch.out" 2>"$dir/watch.err" &
watcher=$!
i=0
until grep -q '^watching' "$dir/watch.out"; do
  i=$((i + 1)); [ $i -lt 200 ] || fail "watcher did not sync"
  sleep 0.05
done
"$bin" put --server "$addr" greeting bonjour >/dev/null || fail "second put"
wait $watcher || fail "watch exit status"
watcher=
grep -q 'tid 2: greeting$' "$dir/watch.out" || fail "watch printed the invalidation"
[ "$("$bin" get --server "$addr" greeting 2>/dev/null)" = bonjour ] || fail "get after put"

"$bin" stats --server "$addr" >"$dir/stats.out" || fail "stats"
grep -q '"commits":2' "$dir/stats.out" || fail "stats count the commits"
grep -q '"calls_by_method":{.*"load":' "$dir/stats.out" || fail "stats count calls by method"

kill -TERM $server
status=0; wait $server || status=$?
[ $status -eq 0 ] || fail "server exit status $status"
grep -q '^stopped: OK' "$dir/serve.out" || fail "graceful stop"
echo "objstore cli ok ($addr)"
