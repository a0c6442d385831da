#!/bin/sh
# objstore_durable_test.sh BINARY: the durable server on the command line. serve --data DIR, put,
# kill -9, serve again on the same DIR: get returns what was put, the epoch is the same and tids
# continue; SIGHUP does not stop the server; a second server on the same DIR is refused.
set -eu
bin=$1
dir=$(mktemp -d)
server=
trap 'kill -9 $server 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir"/*.out "$dir"/*.err 2>/dev/null; exit 1; }

start() {  # start N: serve on DIR/data, wait for "listening on", set $server and $addr
  "$bin" serve --listen 127.0.0.1:0 --data "$dir/data" >"$dir/serve$1.out" 2>"$dir/serve$1.err" &
  server=$!
  i=0
  until grep -q '^listening on ' "$dir/serve$1.out"; do
    i=$((i + 1)); [ $i -lt 400 ] || fail "server $1 did not start"
    kill -0 $server 2>/dev/null || fail "server $1 exited"
    sleep 0.05
  done
  addr=$(sed -n 's/^listening on //p' "$dir/serve$1.out")
}
epoch() { "$bin" stats --server "$addr" | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p'; }

start 1
"$bin" put --server "$addr" greeting hello >"$dir/put1.out" || fail "put"
grep -q '^committed tid 1$' "$dir/put1.out" || fail "first put is tid 1"
"$bin" put --server "$addr" other world >/dev/null || fail "second put"
epoch1=$(epoch)
"$bin" stats --server "$addr" | grep -q '"durable":true' || fail "stats say durable"

# A second server on the same directory is refused (the directory lock).
status=0
"$bin" serve --listen 127.0.0.1:0 --data "$dir/data" >"$dir/second.out" 2>"$dir/second.err" ||
  status=$?
[ $status -ne 0 ] || fail "a second server on the same directory must be refused"
grep -qi 'lock' "$dir/second.err" || fail "the refusal names the lock"

# SIGHUP: logged, the server keeps serving.
kill -HUP $server
[ "$("$bin" get --server "$addr" greeting 2>/dev/null)" = hello ] || fail "get after SIGHUP"

kill -9 $server
wait $server 2>/dev/null || true
start 2
[ "$("$bin" get --server "$addr" greeting 2>/dev/null)" = hello ] || fail "get after kill -9"
[ "$("$bin" get --server "$addr" other 2>/dev/null)" = world ] || fail "second object after kill -9"
[ "$(epoch)" = "$epoch1" ] || fail "the epoch survives the restart"
"$bin" put --server "$addr" greeting again >"$dir/put3.out" || fail "put after restart"
grep -q '^committed tid 3$' "$dir/put3.out" || fail "tids continue after the restart"
kill -TERM $server
wait $server || fail "graceful stop"
start 3
[ "$("$bin" get --server "$addr" greeting 2>/dev/null)" = again ] || fail "get after a clean stop"
kill -TERM $server
wait $server || fail "graceful stop"
server=
echo "objstore durable cli ok"
