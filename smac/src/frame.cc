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
      return kHeaderSize + payload_filled_;
    case State::kFailed:
      return 0;
  }
  return 0;
}

absl::Status FrameDecoder::StartPayload(uint32_t size) {
  if (size > max_message_size_) {
    state_ = State::kFailed;
    std::string().swap(buffer_);  // frees it (move-assigning an empty string may keep it)
    error_ = absl::InvalidArgumentError(
        absl::StrCat("smac: frame of ", size, " bytes exceeds the limit of ", max_message_size_,
                     " bytes (header bytes ",
                     absl::CHexEscape(absl::string_view(header_.data(), header_.size())), ")"));
    return error_;
  }
  payload_size_ = size;
  payload_filled_ = 0;
  state_ = State::kPayload;
  // The size is within the limit. Room for the whole frame at once up to kReserveUpFront; beyond
  // that the buffer doubles as bytes arrive (capped at the frame size), so 4 bytes of header
  // never make us allocate 64 MiB: memory follows what the peer actually sent. A buffer kept
  // from the previous frame is reused unless it is much larger than this frame needs.
  const size_t first = std::min(payload_size_, kReserveUpFront);
  if (buffer_.capacity() > std::max(2 * payload_size_, kReserveUpFront)) {
    std::string().swap(buffer_);  // frees it (move-assigning an empty string may keep it)
  }
  Reserve(first);
  return absl::OkStatus();
}

void FrameDecoder::Reserve(size_t want) {
  NETLAYER_ASSERT(want <= payload_size_, "room only for the frame's own bytes");
  // Doubling keeps the copies of a growing frame linear; never past the frame.
  if (want > buffer_.capacity()) {
    buffer_.reserve(std::min(payload_size_, std::max(want, 2 * buffer_.capacity())));
  }
}

void FrameDecoder::GrowTo(size_t want) {
  if (want <= buffer_.size()) return;
  Reserve(want);
  buffer_.resize(want);  // zero-fills the new room (once: a reused buffer keeps its room)
}

absl::Span<char> FrameDecoder::PayloadSpan() {
  if (state_ != State::kPayload) return {};
  const size_t rest = payload_size_ - payload_filled_;
  if (rest < kMinInPlaceRead) return {};
  // Room for at least a read's worth: the memory reserved so far (the whole frame up to
  // kReserveUpFront), else doubling as bytes arrive, as for copied bytes.
  GrowTo(std::min(payload_size_, std::max(payload_filled_ + kMinInPlaceRead, buffer_.capacity())));
  const size_t end = std::min(buffer_.size(), payload_size_ - 1);  // the last byte: see frame.h
  return absl::MakeSpan(buffer_.data() + payload_filled_, end - payload_filled_);
}

void FrameDecoder::ReleaseIfBetweenFrames() {
  if (state_ != State::kPayload)
    std::string().swap(buffer_);  // frees it (move-assigning an empty string may keep it)
}

absl::Status FrameDecoder::Feed(std::string_view data, MessageSink sink) {
  absl::Status status = FeedBytes(data, sink);
  ReleaseIfBetweenFrames();
  return status;
}

absl::Status FrameDecoder::FeedBytes(std::string_view data, MessageSink sink) {
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
        break;
      }
      case State::kPayload: {
        const size_t n = std::min(payload_size_ - payload_filled_, data.size());
        if (n > 0 && payload_filled_ < buffer_.size() &&
            data.data() == buffer_.data() + payload_filled_) {
          // Written in place through PayloadSpan: nothing to copy.
          NETLAYER_ASSERT(payload_filled_ + data.size() <= buffer_.size() &&
                              data.size() < payload_size_ - payload_filled_,
                          "in-place input stays within the span PayloadSpan offered");
        } else {
          // Into the room made so far, then appended (no zero-fill of memory about to be
          // written).
          const size_t in_room = std::min(n, buffer_.size() - payload_filled_);
          std::copy_n(data.data(), in_room, buffer_.data() + payload_filled_);
          if (in_room < n) {
            Reserve(payload_filled_ + n);
            buffer_.append(data.data() + in_room, n - in_room);
          }
        }
        payload_filled_ += n;
        data.remove_prefix(n);
        if (payload_filled_ < payload_size_) return absl::OkStatus();
        state_ = State::kHeader;
        buffer_.resize(payload_size_);  // a reused buffer may have had more room
        // The sink may move from buffer_ (then the next frame allocates again).
        sink(std::string_view(buffer_), &buffer_);
        break;
      }
    }
  }
}

}  // namespace netlayer::smac
