#!/bin/sh
# objstore_cli_test.sh BINARY: serve on an ephemeral loopback port; put, get, a watcher seeing the
# invalidation, stats, exit codes; then SIGTERM and a clean, graceful exit. Then one TLS round
# (certificates made with the openssl command line into a temp dir): a server requiring client
# certificates, put/get with a good one, and a client without one rejected with a clear error.
# Without the openssl command the TLS round is skipped (exit 77, which ctest reports as skipped).
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

# A watcher says when its connection is lost and when it is back, and gives up after --timeout
# without one, naming why.
"$bin" watch --server "$addr" --timeout 3 >"$dir/watch2.out" 2>"$dir/watch2.err" &
watcher=$!
wait_for() {  # FILE PATTERN WHAT
  i=0
  until grep -q "$2" "$1"; do
    i=$((i + 1)); [ $i -lt 400 ] || fail "$3"
    sleep 0.05
  done
}
wait_for "$dir/watch2.out" '^watching' "watcher did not sync"

kill -TERM $server
status=0; wait $server || status=$?
[ $status -eq 0 ] || fail "server exit status $status"
grep -q '^stopped: OK' "$dir/serve.out" || fail "graceful stop"
wait_for "$dir/watch2.out" '^connection lost: peer closed' "watch prints the loss"
"$bin" serve --listen "$addr" >"$dir/serve2.out" 2>"$dir/serve2.err" &
server=$!
wait_for "$dir/watch2.out" '^connection back$' "watch prints that the connection is back"
kill -TERM $server
wait $server || fail "second server exit status"
status=0; wait $watcher || status=$?
watcher=
[ $status -eq 1 ] || fail "a watch without a server exits 1 after --timeout, got $status"
grep -q "cannot reach the objstore server at $addr: timed out after 3 s: connect to $addr: connection refused" \
  "$dir/watch2.err" || fail "watch names why it gave up"

# A dead port: the error names the last loss.
status=0; "$bin" get --server "$addr" greeting >/dev/null 2>"$dir/refused.err" || status=$?
[ $status -eq 1 ] || fail "get from a dead port exits 1, got $status"
grep -q "cannot reach the objstore server at $addr: connect to $addr: connection refused (gave up after 3 rounds)" \
  "$dir/refused.err" || fail "get names the refused connection"
echo "objstore cli ok ($addr)"

# ---- TLS ----
if ! command -v openssl >/dev/null 2>&1; then
  echo "SKIPPED the TLS round: no openssl command line (apt-get install openssl); plain part passed"
  exit 77
fi
pki="$dir/pki"
mkdir "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj /CN=objstore-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  2>"$pki/openssl.err" || fail "openssl: CA"
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$who" \
    -keyout "$pki/$who.key" -out "$pki/$who.csr" 2>>"$pki/openssl.err" || fail "openssl: $who key"
  usage=serverAuth; [ $who = client ] && usage=clientAuth
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' $usage >"$pki/$who.ext"
  openssl x509 -req -in "$pki/$who.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$who.ext" -out "$pki/$who.pem" 2>>"$pki/openssl.err" ||
    fail "openssl: $who certificate"
done

"$bin" serve --listen 127.0.0.1:0 --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" \
  --tls-ca "$pki/ca.pem" >"$dir/tls-serve.out" 2>"$dir/tls-serve.err" &
server=$!
i=0
until grep -q '^listening on ' "$dir/tls-serve.out"; do
  i=$((i + 1)); [ $i -lt 200 ] || fail "TLS server did not start"
  sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$dir/tls-serve.out")
good="--tls-ca $pki/ca.pem --tls-cert $pki/client.pem --tls-key $pki/client.key"

# shellcheck disable=SC2086 # $good is several words on purpose
"$bin" put --server "$addr" $good greeting secret >"$dir/tls-put.out" || fail "TLS put"
grep -q '^committed tid 1$' "$dir/tls-put.out" || fail "TLS put is tid 1"
# shellcheck disable=SC2086
[ "$("$bin" get --server "$addr" $good greeting 2>/dev/null)" = secret ] || fail "TLS get"

# No client certificate: the server rejects the handshake; the client says so and exits 1.
status=0
"$bin" get --server "$addr" --tls-ca "$pki/ca.pem" greeting >/dev/null 2>"$dir/tls-nocert.err" ||
  status=$?
[ $status -eq 1 ] || fail "a client without a certificate exits 1, got $status"
grep -q "TLS with the objstore server at $addr failed: tls no-peer-certificate" \
  "$dir/tls-nocert.err" || fail "a client without a certificate is told why"
[ "$(grep '^netlayer-objstore: ' "$dir/tls-nocert.err" | grep -o no-peer-certificate | wc -l)" -eq 1 ] ||
  fail "the rejection is reported once in the error"
# A plaintext client gets nowhere with a TLS server.
status=0
"$bin" get --server "$addr" --timeout 2 greeting >/dev/null 2>"$dir/tls-plain.err" || status=$?
[ $status -eq 1 ] || fail "a plaintext client of a TLS server exits 1, got $status"
grep -q "the objstore server at $addr did not answer: timed out after 2 s: connected to $addr .* ago, but the server did not answer the rpc handshake (no hello); it may be speaking TLS or another protocol" \
  "$dir/tls-plain.err" || fail "a plaintext client of a TLS server is told it may be speaking TLS"
# A TLS server needs its certificate and key; a TLS client needs the CA: usage errors.
status=0; "$bin" serve --listen 127.0.0.1:0 --tls-ca "$pki/ca.pem" >/dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "serve with --tls-ca only exits 2, got $status"
status=0
"$bin" get --server "$addr" --tls-cert "$pki/client.pem" --tls-key "$pki/client.key" greeting \
  >/dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "a TLS client without --tls-ca exits 2, got $status"

kill -TERM $server
status=0; wait $server || status=$?
[ $status -eq 0 ] || fail "TLS server exit status $status"
grep -q 'no-peer-certificate' "$dir/tls-serve.err" || fail "the server logged the rejection"
echo "objstore cli TLS ok ($addr)"
