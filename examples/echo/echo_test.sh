#!/bin/sh
# echo_test.sh SERVER CLIENT: starts the echo server on an ephemeral port, runs the client, checks
# its output, stops the server with SIGTERM and checks that it exits cleanly.
set -eu
server=$1 client=$2
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$server" 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
until grep -q '^listening on ' "$dir/out"; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "server did not start"; cat "$dir/err"; exit 1; }
  sleep 0.05
done
address=$(sed -n 's/^listening on //p' "$dir/out")
reply=$("$client" "$address" "hello, netlayer")
[ "$reply" = "hello, netlayer" ] || { echo "unexpected reply: $reply"; exit 1; }
kill -TERM $pid
status=0
wait $pid || status=$?
[ $status -eq 0 ] || { echo "server exited $status"; cat "$dir/out" "$dir/err"; exit 1; }
grep -q '^stopped: OK' "$dir/out" || { echo "no clean stop:"; cat "$dir/out"; exit 1; }
echo "echo example ok ($address)"
