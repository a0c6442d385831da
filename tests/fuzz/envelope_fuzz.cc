#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/rpc/envelope.h"

namespace netlayer::fuzz {

int FuzzEnvelope(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const rpc::EnvelopeCodec& codec = rpc::BinaryCodec();
  absl::StatusOr<rpc::Envelope> e = codec.Decode(input);
  if (!e.ok()) {
    NETLAYER_ASSERT(e.status().code() == absl::StatusCode::kInvalidArgument, "decode errors");
    return 0;
  }
  // The encoding is canonical: what decodes re-encodes to the same bytes (and EncodeHead's own
  // assertions check that the decoder accepted only well-formed envelopes).
  NETLAYER_ASSERT(rpc::EncodeEnvelope(codec, *e) == input, "envelope round-trip");
  if (e->kind == rpc::MessageKind::kErrorReply) {
    NETLAYER_ASSERT(!rpc::StatusFromEnvelope(*e).ok(), "an error reply is an error");
  }
  return 0;
}

}  // namespace netlayer::fuzz
