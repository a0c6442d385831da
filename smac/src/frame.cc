#include "netlayer/smac/frame.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/probe.h"

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

FrameDecoder::~FrameDecoder() { FreeBuffer(); }

void FrameDecoder::set_budget(std::shared_ptr<MemoryBudget> budget) {
  NETLAYER_ASSERT(charged_ == 0, "the budget is set before anything is charged");
  budget_ = std::move(budget);
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

void FrameDecoder::FreeBuffer() {
  std::string().swap(buffer_);  // frees it (move-assigning an empty string may keep it)
  if (charged_ > 0) {
    NETLAYER_ASSERT(budget_ != nullptr, "only a budget is charged");
    budget_->Release(charged_);
    charged_ = 0;
  }
}

void FrameDecoder::SyncCharge() {
  // The sink moved from buffer_ (or kept it): charge at most what it holds now.
  const size_t held = buffer_.capacity() > kUnbudgetedBytes ? buffer_.capacity() : 0;
  if (held < charged_) {
    budget_->Release(charged_ - held);
    charged_ = held;
  }
}

void FrameDecoder::Discard() {
  FreeBuffer();
  if (state_ != State::kFailed) {
    state_ = State::kFailed;
    error_ = absl::FailedPreconditionError("smac: the decoder was discarded");
  }
}

absl::Status FrameDecoder::Refuse(size_t frame_size, size_t wanted) {
  const size_t received = payload_filled_;
  state_ = State::kFailed;
  FreeBuffer();
  error_ = absl::ResourceExhaustedError(absl::StrCat(
      "smac: a frame of ", frame_size, " bytes was refused (", received,
      " bytes received): the memory budget for large frames (", budget_->limit(),
      " bytes) is spent (", budget_->charged(), " bytes held for frames, ", wanted,
      " more needed)"));
  return error_;
}

absl::Status FrameDecoder::StartPayload(uint32_t size) {
  if (size > max_message_size_) {
    NETLAYER_REACHABLE("smac.frame-over-limit");
    state_ = State::kFailed;
    FreeBuffer();
    error_ = absl::InvalidArgumentError(
        absl::StrCat("smac: frame of ", size, " bytes exceeds the limit of ", max_message_size_,
                     " bytes (header bytes ",
                     absl::CHexEscape(absl::string_view(header_.data(), header_.size())), ")"));
    return error_;
  }
  payload_size_ = size;
  payload_filled_ = 0;
  state_ = State::kPayload;
  // The size is within the limit. The buffer starts small and grows as bytes arrive (frame.h),
  // so 4 bytes of header never make us allocate 64 MiB. A buffer kept from the previous frame
  // is reused only within this frame's bound for no bytes received yet.
  if (buffer_.capacity() > MaxPartialFrameBuffer(payload_size_, 0)) FreeBuffer();
  if (!Reserve(std::min(payload_size_, kInitialRoom))) {
    return Refuse(payload_size_, std::min(payload_size_, kInitialRoom));
  }
  return absl::OkStatus();
}

bool FrameDecoder::Reserve(size_t want) {
  NETLAYER_ASSERT(want <= payload_size_, "room only for the frame's own bytes");
  const size_t capacity = buffer_.capacity();
  if (want <= capacity) return true;
  // Geometric growth keeps the copies of a growing frame linear; never past the frame.
  const size_t grown = capacity / kGrowthDenominator * kGrowthNumerator;
  const size_t target = std::min(payload_size_, std::max({want, grown, kInitialRoom}));
  const size_t charge = target > kUnbudgetedBytes ? target : 0;
  if (charge > charged_) {
    if (budget_ != nullptr && !budget_->TryCharge(charge - charged_)) return false;
    if (budget_ != nullptr) charged_ = charge;
  }
  // A fresh string reserved to exactly `target` (std::string's own growth would double).
  std::string fresh;
  fresh.reserve(target);
  fresh.assign(buffer_.data(), buffer_.size());  // the bytes so far (and any room made)
  buffer_.swap(fresh);
  return true;
}

bool FrameDecoder::GrowTo(size_t want) {
  if (want <= buffer_.size()) return true;
  if (!Reserve(want)) return false;
  buffer_.resize(want);  // zero-fills the new room (once: a reused buffer keeps its room)
  return true;
}

absl::Span<char> FrameDecoder::PayloadSpan() {
  if (state_ != State::kPayload) return {};
  const size_t rest = payload_size_ - payload_filled_;
  if (rest < kMinInPlaceRead) return {};
  // Room for a read's worth: within the capacity made so far, else growing as for copied bytes,
  // never more than kInPlaceAhead past the bytes so far.
  const size_t room = buffer_.capacity() - std::min(buffer_.capacity(), payload_filled_);
  const size_t ahead = std::clamp(room, kMinInPlaceRead, kInPlaceAhead);
  size_t want = std::min(payload_size_, payload_filled_ + ahead);
  if (payload_size_ - want < kMinInPlaceRead) want = payload_size_;  // no small tail left over
  if (!GrowTo(want)) return {};  // the budget refused: the next Feed copies and fails
  const size_t end = std::min(buffer_.size(), payload_size_ - 1);  // the last byte: see frame.h
  return absl::MakeSpan(buffer_.data() + payload_filled_, end - payload_filled_);
}

void FrameDecoder::ReleaseIfBetweenFrames() {
  if (state_ != State::kPayload) FreeBuffer();
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
            if (!Reserve(payload_filled_ + n)) return Refuse(payload_size_, payload_filled_ + n);
            NETLAYER_ASSERT(buffer_.size() == payload_filled_ + in_room,
                            "appended bytes follow the ones in the room");
            buffer_.append(data.data() + in_room, n - in_room);  // within the capacity reserved
          }
        }
        payload_filled_ += n;
        data.remove_prefix(n);
        if (payload_filled_ < payload_size_) return absl::OkStatus();
        state_ = State::kHeader;
        buffer_.resize(payload_size_);  // a reused buffer may have had more room
        // The sink may move from buffer_ (then the next frame allocates again); the charge
        // covers the frame while it is partial, and follows the buffer down after.
        sink(std::string_view(buffer_), &buffer_);
        SyncCharge();
        break;
      }
    }
  }
}

}  // namespace netlayer::smac
