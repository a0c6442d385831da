// The libFuzzer targets' bodies, one function each, so the same code runs as a libFuzzer binary
// (fuzz_main.cc, built with clang by tests/fuzz/run.sh) and as a regression test over the
// checked-in corpus (fuzz_corpus_test.cc, in the normal build). Each returns 0; a bug trips
// NETLAYER_ASSERT (abort) or a sanitizer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace netlayer::fuzz {

// smac FrameDecoder: input split into chunks drawn from the data; the decoded messages must
// re-encode to exactly the bytes consumed.
int FuzzSmacDecoder(const uint8_t* data, size_t size);
// rpc envelope decoder (binary codec): anything accepted must re-encode to the same bytes.
int FuzzEnvelope(const uint8_t* data, size_t size);
// rpc handshake decoders and the version choice.
int FuzzHandshake(const uint8_t* data, size_t size);
// The whole stack on the simulator (a calm two-host sim::World, tests/support/sim_net.h): fuzz
// bytes arrive (chunked) at a server session or a client as if from the peer, after an optional
// valid handshake. Neither may crash; a well-behaved client on another connection must keep being
// served.
int FuzzSession(const uint8_t* data, size_t size);
// The TLS adapter, client or server side: fuzz bytes arrive (chunked) as if from the peer, from
// the first byte or after a genuine handshake. It may close, with one ConnectionClosed; it may
// never crash or deliver anything after the close.
int FuzzTls(const uint8_t* data, size_t size);

}  // namespace netlayer::fuzz
