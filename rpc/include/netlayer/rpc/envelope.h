// The rpc envelope: what each smac message after the handshake carries (docs/PROTOCOL.md §4).
// The codec is kept apart from the call bookkeeping (client.h, server.h) behind EnvelopeCodec, so
// a second encoding (e.g. ZEO 5's msgpack envelope) can be added without touching them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace netlayer::rpc {

enum class MessageKind : uint8_t {
  kCall = 1,        // expects a reply or an error reply with the same id
  kOneWay = 2,      // no reply (client->server one-way calls, server->client pushes)
  kReply = 3,       // the successful answer to the call `id`
  kErrorReply = 4,  // the failed answer to the call `id`: a status code and message
  kPing = 5,        // heartbeat request; answered by a kPong with the same id
  kPong = 6,
};
const char* KindName(MessageKind kind);

inline constexpr size_t kMaxMethodLength = 1024;

// One decoded or to-be-encoded message. Views point into the frame (decode) or the caller's
// data (encode).
struct Envelope {
  MessageKind kind = MessageKind::kCall;
  uint64_t id = 0;
  std::string_view method;  // kCall, kOneWay: 1..kMaxMethodLength bytes; others: empty
  absl::StatusCode code = absl::StatusCode::kOk;  // kErrorReply: not kOk; others: kOk
  std::string_view payload;  // opaque bytes; for kErrorReply, the error message
};

class EnvelopeCodec {
 public:
  virtual ~EnvelopeCodec() = default;
  virtual std::string_view name() const = 0;
  // The bytes that precede the payload: one message is EncodeHead(e) followed by e.payload, so
  // the payload is never copied into the head (it goes as its own WriteV piece).
  // REQUIRES: e satisfies the Envelope field rules above (asserted).
  virtual std::string EncodeHead(const Envelope& e) const = 0;
  // Bounds-checked; the result's views point into `message`. InvalidArgument naming the problem.
  virtual absl::StatusOr<Envelope> Decode(std::string_view message) const = 0;
};

// The project's own binary encoding (docs/PROTOCOL.md §4).
const EnvelopeCodec& BinaryCodec();

// Head + payload in one string (tests and fuzzers).
std::string EncodeEnvelope(const EnvelopeCodec& codec, const Envelope& e);

// An absl::Status as an error reply and back. The code of an OK status is sent as kUnknown.
// The returned envelope's payload views status.message(): keep `status` alive while using it.
Envelope ErrorEnvelope(uint64_t id, const absl::Status& status);
absl::Status StatusFromEnvelope(const Envelope& e);

}  // namespace netlayer::rpc
