#include "netlayer/smac/frame.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"

namespace netlayer::smac {

std::array<char, kHeaderSize> EncodeHeader(size_t size) {
  NETLAYER_ASSERT(size <= kFormatMaxMessageSize, "a smac frame carries at most 2^32-1 bytes");
  const auto n = static_cast<uint32_t>(size);
  return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
          static_cast<char>(n)};
}

uint32_t DecodeHeader(std::string_view header) {
  NETLAYER_ASSERT(header.size() == kHeaderSize, "a smac header is 4 bytes");
  const auto* b = reinterpret_cast<const unsigned char*>(header.data());
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

std::string EncodeFrame(std::string_view payload) {
  const auto header = EncodeHeader(payload.size());
  std::string frame;
  frame.reserve(kHeaderSize + payload.size());
  frame.append(header.data(), header.size());
  frame.append(payload);
  return frame;
}

FrameDecoder::FrameDecoder(size_t max_message_size) : max_message_size_(max_message_size) {
  NETLAYER_ASSERT(max_message_size > 0 && max_message_size <= kFormatMaxMessageSize,
                  "max_message_size must be in [1, 2^32-1]");
}

void FrameDecoder::set_max_message_size(size_t max_message_size) {
  NETLAYER_ASSERT(max_message_size > 0 && max_message_size <= kFormatMaxMessageSize,
                  "max_message_size must be in [1, 2^32-1]");
  max_message_size_ = max_message_size;
}

size_t FrameDecoder::buffered_bytes() const {
  switch (state_) {
    case State::kHeader:
      return header_filled_;
    case State::kPayload:
      return kHeaderSize + buffer_.size();
    case State::kFailed:
      return 0;
  }
  return 0;
}

absl::Status FrameDecoder::StartPayload(uint32_t size) {
  if (size > max_message_size_) {
    state_ = State::kFailed;
    error_ = absl::InvalidArgumentError(
        absl::StrCat("smac: frame of ", size, " bytes exceeds the limit of ", max_message_size_,
                     " bytes (header bytes ",
                     absl::CHexEscape(absl::string_view(header_.data(), header_.size())), ")"));
    return error_;
  }
  payload_size_ = size;
  state_ = State::kPayload;
  return absl::OkStatus();
}

absl::Status FrameDecoder::Feed(std::string_view data, MessageSink sink) {
  while (true) {
    switch (state_) {
      case State::kFailed:
        return error_;
      case State::kHeader: {
        if (header_filled_ == 0) {
          // Fast path: whole frames inside `data` go to the sink without any copy.
          while (data.size() >= kHeaderSize) {
            const uint32_t size = DecodeHeader(data.substr(0, kHeaderSize));
            if (size > max_message_size_ || data.size() - kHeaderSize < size) break;
            sink(data.substr(kHeaderSize, size), nullptr);
            data.remove_prefix(kHeaderSize + size);
          }
        }
        if (data.empty()) return absl::OkStatus();
        const size_t n = std::min(kHeaderSize - header_filled_, data.size());
        std::copy_n(data.data(), n, header_.data() + header_filled_);
        header_filled_ += n;
        data.remove_prefix(n);
        if (header_filled_ < kHeaderSize) return absl::OkStatus();
        header_filled_ = 0;
        if (absl::Status s = StartPayload(DecodeHeader({header_.data(), kHeaderSize})); !s.ok()) {
          return s;
        }
        // The size is within the limit. Reserve the whole frame at once up to kReserveUpFront;
        // beyond that the buffer doubles as bytes arrive (capped at the frame size), so 4 bytes of
        // header never make us allocate 64 MiB: memory follows what the peer actually sent.
        buffer_.clear();
        buffer_.reserve(std::min(payload_size_, kReserveUpFront));
        break;
      }
      case State::kPayload: {
        const size_t n = std::min(payload_size_ - buffer_.size(), data.size());
        if (buffer_.size() + n > buffer_.capacity()) {
          buffer_.reserve(
              std::min(payload_size_, std::max(buffer_.size() + n, 2 * buffer_.capacity())));
        }
        buffer_.append(data.data(), n);
        data.remove_prefix(n);
        if (buffer_.size() < payload_size_) return absl::OkStatus();
        state_ = State::kHeader;
        std::string message = std::move(buffer_);
        buffer_ = std::string();
        sink(message, &message);
        break;
      }
    }
  }
}

}  // namespace netlayer::smac
