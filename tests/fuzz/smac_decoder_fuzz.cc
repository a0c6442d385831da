#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/smac/frame.h"

namespace netlayer::fuzz {

int FuzzSmacDecoder(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Byte 0: the chunk size pattern; byte 1: the size limit (small limits exercise the error).
  const size_t chunk = 1 + data[0] % 17;
  const size_t limit = data[1] < 128 ? 1 + data[1] : smac::kDefaultMaxMessageSize;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  smac::FrameDecoder decoder(limit);
  std::string reencoded;
  size_t fed = 0;
  bool failed = false;
  for (size_t i = 0; i < input.size() && !failed; i += chunk) {
    std::string_view piece = input.substr(i, chunk);
    absl::Status s = decoder.Feed(piece, [&](std::string_view m, std::string* owned) {
      NETLAYER_ASSERT(m.size() <= limit, "a delivered message respects the limit");
      if (owned != nullptr) NETLAYER_ASSERT(*owned == m, "owned buffer holds the message");
      reencoded += smac::EncodeFrame(m);
    });
    fed += piece.size();
    if (!s.ok()) {
      failed = true;
      NETLAYER_ASSERT(decoder.state() == smac::FrameDecoder::State::kFailed, "failed state");
    }
  }
  if (!failed) {
    // Everything fed = whole frames re-encoded + the partial frame held.
    NETLAYER_ASSERT(reencoded.size() + decoder.buffered_bytes() == fed, "byte accounting");
    NETLAYER_ASSERT(input.substr(0, reencoded.size()) == reencoded, "frames round-trip");
  } else {
    NETLAYER_ASSERT(input.substr(0, reencoded.size()) == reencoded, "frames before the error");
  }
  return 0;
}

}  // namespace netlayer::fuzz
