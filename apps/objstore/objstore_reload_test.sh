#!/bin/sh
# objstore_reload_test.sh BINARY: SIGHUP on a TLS `serve` (docs/OPERATIONS.md, "Reload"). While
# a watch keeps its one connection and a client keeps calling (a put after another, each a new
# connection), the server's certificate file is rotated and SIGHUP sent: no call fails, the
# watch's connection is never lost (it sees every put's invalidation), a new connection is served
# the new certificate (subject and serial, seen with openssl s_client), a certificate file that
# does not load and one that does not match the key are refused with a log line and the old
# certificate kept, the log level file is re-read, and SIGHUP never ends the server.
# Needs the openssl command line (tools/setup.sh installs it).
set -eu
bin=$1
command -v openssl >/dev/null 2>&1 || { echo "FAIL: no openssl command (apt-get install openssl)"; exit 1; }
dir=$(mktemp -d)
server=
watch=
loop=
trap 'kill -9 $server $watch $loop 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$dir"/*.err 2>/dev/null; exit 1; }
wait_for() {  # wait_for FILE PATTERN [N]: until at least N (1) lines of FILE match
  i=0
  until [ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "${3:-1}" ]; do
    i=$((i + 1)); [ $i -lt 600 ] || fail "no '$2' in $1"
    sleep 0.05
  done
}
pki=$dir/pki
mkdir "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj /CN=reload-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  2>"$pki/openssl.err" || fail "openssl: CA"
issue() {  # issue NAME USAGE: NAME.key, NAME.pem signed by the CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>>"$pki/openssl.err" || fail "openssl: $1 key"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$2" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>>"$pki/openssl.err" ||
    fail "openssl: $1 certificate"
}
issue server-a serverAuth
issue server-b serverAuth
issue server-c serverAuth
issue client clientAuth
cp "$pki/server-a.pem" "$pki/live.pem"
cp "$pki/server-a.key" "$pki/live.key"
echo info >"$dir/level"

"$bin" serve --listen 127.0.0.1:0 --tls-cert "$pki/live.pem" --tls-key "$pki/live.key" \
  --tls-ca "$pki/ca.pem" --log-level-file "$dir/level" >"$dir/serve.out" 2>"$dir/serve.err" &
server=$!
wait_for "$dir/serve.out" '^listening on '
addr=$(sed -n 's/^listening on //p' "$dir/serve.out")
client="--server $addr --tls-ca $pki/ca.pem --tls-cert $pki/client.pem --tls-key $pki/client.key"

# The certificate a new connection is served: "subject=CN = server-a serial=..."
served() {
  openssl s_client -connect "$addr" -alpn netlayer-rpc -CAfile "$pki/ca.pem" \
    -cert "$pki/client.pem" -key "$pki/client.key" </dev/null 2>/dev/null |
    openssl x509 -noout -subject -serial 2>/dev/null | tr '\n' ' '
}
expect_served() {  # expect_served NAME: the served certificate is NAME.pem (subject and serial)
  want="$(openssl x509 -noout -subject -serial -in "$pki/$1.pem" | tr '\n' ' ')"
  got="$(served)"
  [ "$got" = "$want" ] || fail "served '$got', expected '$want'"
}
hups=0
hup() {  # hup PATTERN: SIGHUP, then wait for the reload's TLS log line (PATTERN)
  hups=$((hups + 1))
  kill -HUP $server
  wait_for "$dir/serve.err" "reload (SIGHUP): TLS credentials" $hups
  grep "reload (SIGHUP): TLS credentials" "$dir/serve.err" | sed -n "${hups}p" | grep -q -- "$1" ||
    fail "after SIGHUP $hups: no '$1'"
  kill -0 $server || fail "SIGHUP ended the server"
}
expect_served server-a

# The live connection, and a client that keeps calling.
# shellcheck disable=SC2086
"$bin" watch $client >"$dir/watch.out" 2>"$dir/watch.err" &
watch=$!
wait_for "$dir/watch.out" '^watching epoch'
(
  n=0
  while [ ! -f "$dir/stop" ]; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$bin" put $client "k$n" "v$n" >>"$dir/puts.out" 2>>"$dir/puts.err" || echo "put $n failed" >>"$dir/puts.failed"
  done
) &
loop=$!
wait_for "$dir/puts.out" '^committed' 3

# Rotation: the new certificate and key in place of the old files, then SIGHUP.
cp "$pki/server-b.pem" "$pki/live.pem"
cp "$pki/server-b.key" "$pki/live.key"
hup "TLS credentials reloaded for new connections: /CN=server-b"
expect_served server-b
wait_for "$dir/puts.out" '^committed' "$(( $(grep -c '^committed' "$dir/puts.out") + 3 ))"

# A certificate file that does not load: refused, the old one kept.
echo "not a certificate" >"$pki/live.pem"
hup "TLS credentials kept (/CN=server-b"
grep -q "no valid PEM certificate" "$dir/serve.err" || fail "the refusal says why"
expect_served server-b
# A certificate that does not match the key (server-b's): refused, the old one kept.
cp "$pki/server-c.pem" "$pki/live.pem"
hup "TLS credentials kept (/CN=server-b"
grep -q "private_key does not match the certificate" "$dir/serve.err" || fail "mismatch says why"
expect_served server-b
wait_for "$dir/puts.out" '^committed' "$(( $(grep -c '^committed' "$dir/puts.out") + 3 ))"

# The log level: re-read on SIGHUP; a bad name is refused and the level kept.
cp "$pki/server-b.pem" "$pki/live.pem"
echo debug >"$dir/level"
hup "TLS credentials reloaded"
grep -q "reload (SIGHUP): log level debug" "$dir/serve.err" || fail "log level not reloaded"
echo loud >"$dir/level"
hup "TLS credentials reloaded"
grep -q 'reload (SIGHUP): log level kept: .*unknown log level "loud"' "$dir/serve.err" ||
  fail "a bad log level is refused"

touch "$dir/stop"
wait $loop
loop=
[ ! -f "$dir/puts.failed" ] || fail "calls failed during the reloads: $(cat "$dir/puts.failed")"
puts=$(grep -c '^committed' "$dir/puts.out")
# The watch saw every put's invalidation on its one connection.
wait_for "$dir/watch.out" '^invalidate ' "$puts"
grep -q '^connection lost' "$dir/watch.out" && fail "the watch's connection was lost"
[ "$(grep -c '^watching epoch' "$dir/watch.out")" -eq 1 ] || fail "the watch reconnected"
kill -TERM $watch
wait $watch || true
watch=
kill -TERM $server
wait $server || fail "server exit"
server=
echo "objstore reload ok: $puts calls across $hups reloads"
