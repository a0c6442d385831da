#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/smac/frame.h"
#include "netlayer/smac/memory_budget.h"

namespace netlayer::fuzz {

int FuzzSmacDecoder(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Byte 0: the chunk size pattern (low bits), in-place reads (0x40), a memory budget (0x80);
  // byte 1: the size limit (small limits exercise the error). A header costs at most the
  // initial room (64 KiB), never the frame it announces.
  const size_t chunk = 1 + (data[0] & 0x3f) % 17;
  const bool in_place = data[0] & 0x40;
  const size_t limit = data[1] < 128 ? 1 + data[1] : smac::kDefaultMaxMessageSize;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::shared_ptr<smac::MemoryBudget> budget;
  if (data[0] & 0x80) budget = std::make_shared<smac::MemoryBudget>(size_t{96} << 10);
  std::string reencoded;
  size_t fed = 0;
  bool failed = false;
  {
    smac::FrameDecoder decoder(limit);
    decoder.set_budget(budget);
    for (size_t i = 0; i < input.size() && !failed; i += chunk) {
      std::string_view piece = input.substr(i, chunk);
      // As posix reads: into the decoder's own span when it offers one.
      absl::Span<char> span = in_place ? decoder.PayloadSpan() : absl::Span<char>();
      if (!span.empty()) {
        const size_t n = std::min(span.size(), piece.size());
        std::copy_n(piece.data(), n, span.data());
        piece = std::string_view(span.data(), n);
        i -= chunk - n;  // the rest of this chunk comes next
      }
      absl::Status s = decoder.Feed(piece, [&](std::string_view m, std::string* owned) {
        NETLAYER_ASSERT(m.size() <= limit, "a delivered message respects the limit");
        if (owned != nullptr) NETLAYER_ASSERT(*owned == m, "owned buffer holds the message");
        reencoded += smac::EncodeFrame(m);
      });
      fed += piece.size();
      if (budget != nullptr) {
        NETLAYER_ASSERT(budget->charged() == decoder.charged_bytes(), "budget accounting");
        NETLAYER_ASSERT(budget->peak_charged() <= budget->limit(), "the budget holds");
      }
      if (decoder.state() == smac::FrameDecoder::State::kPayload) {
        const size_t received = decoder.buffered_bytes() - smac::kHeaderSize;
        NETLAYER_ASSERT(
            decoder.reserved_bytes() <=
                std::max(smac::MaxPartialFrameBuffer(~size_t{0}, received), sizeof(std::string)),
            "a partial frame's buffer follows its bytes");
      }
      if (!s.ok()) {
        failed = true;
        NETLAYER_ASSERT(decoder.state() == smac::FrameDecoder::State::kFailed, "failed state");
        NETLAYER_ASSERT(decoder.charged_bytes() == 0, "a failed decoder holds no charge");
      }
    }
    if (!failed) {
      // Everything fed = whole frames re-encoded + the partial frame held.
      NETLAYER_ASSERT(reencoded.size() + decoder.buffered_bytes() == fed, "byte accounting");
      NETLAYER_ASSERT(input.substr(0, reencoded.size()) == reencoded, "frames round-trip");
    } else {
      NETLAYER_ASSERT(input.substr(0, reencoded.size()) == reencoded, "frames before the error");
    }
  }
  if (budget != nullptr) NETLAYER_ASSERT(budget->charged() == 0, "a destroyed decoder releases");
  return 0;
}

}  // namespace netlayer::fuzz
