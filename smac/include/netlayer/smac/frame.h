// smac frames (ZEO's sized messages): a 4-byte big-endian unsigned length, then that many bytes.
//
// FrameDecoder is a sans-I/O state machine (after nghttp2's inbound parser): feed it bytes split
// or merged at any boundary and it reports each complete message, in order. It never allocates
// for a frame before checking the frame's length against the configured maximum, so a garbage or
// hostile header becomes a clear error, never a 4 GiB allocation. A frame that is whole in one
// input chunk is handed over as a view of that chunk (no copy); one that is not is assembled in
// its own buffer, reserved whole from the header for frames up to kReserveUpFront (1 MiB) and
// grown by doubling (capped at the frame's size) for larger ones, so the memory a peer can make
// us hold follows the bytes it actually sent.
//
// Thread rules: not thread-safe; one owner feeds it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace netlayer::smac {

inline constexpr size_t kHeaderSize = 4;
inline constexpr size_t kDefaultMaxMessageSize = size_t{64} << 20;  // 64 MiB
// Frames up to this size get their whole buffer when their header arrives.
inline constexpr size_t kReserveUpFront = size_t{1} << 20;
// The largest size the format can carry.
inline constexpr size_t kFormatMaxMessageSize = 0xFFFFFFFFu;

// The 4-byte big-endian header for a message of `size` bytes. REQUIRES size <= 2^32 - 1.
std::array<char, kHeaderSize> EncodeHeader(size_t size);
// The length in a 4-byte header. REQUIRES header.size() == kHeaderSize.
uint32_t DecodeHeader(std::string_view header);
// Header + payload as one string (tests, tools; the adapter never concatenates).
std::string EncodeFrame(std::string_view payload);

class FrameDecoder {
 public:
  enum class State {
    kHeader,   // reading the 4 length bytes (header_filled_ of them so far)
    kPayload,  // reading payload_size_ bytes into buffer_
    kFailed,   // an oversized header was seen; every later Feed fails with the same error
  };

  // Called once per complete message. `message` is valid only during the call. If `owned` is
  // not null it is the decoder's buffer holding exactly `message`, and the callee may move from
  // it (saves a copy when it keeps the message); otherwise `message` points into the fed input.
  using MessageSink = absl::FunctionRef<void(std::string_view message, std::string* owned)>;

  // REQUIRES 0 < max_message_size <= kFormatMaxMessageSize.
  explicit FrameDecoder(size_t max_message_size = kDefaultMaxMessageSize);

  // Consumes all of `data`, calling `sink` for every message it completes. Returns
  // InvalidArgument ("smac: frame of N bytes exceeds the limit of M bytes") when a header
  // announces more than the maximum; the decoder is then kFailed and consumes nothing more.
  absl::Status Feed(std::string_view data, MessageSink sink);

  State state() const { return state_; }
  size_t max_message_size() const { return max_message_size_; }
  // Changes the limit for the headers decoded from now on (a frame already started keeps its
  // size); may be called from inside `sink`, e.g. to raise a small limit after a first message.
  // REQUIRES 0 < max_message_size <= kFormatMaxMessageSize.
  void set_max_message_size(size_t max_message_size);
  // Bytes of an incomplete frame held (header bytes plus payload bytes so far).
  size_t buffered_bytes() const;
  // True between frames: nothing of a partial frame is held.
  bool at_frame_boundary() const { return state_ == State::kHeader && header_filled_ == 0; }
  const absl::Status& error() const { return error_; }
  // Bytes of memory held for the frame being assembled (for tests and memory accounting).
  size_t reserved_bytes() const { return buffer_.capacity(); }

 private:
  absl::Status StartPayload(uint32_t size);

  size_t max_message_size_;
  State state_ = State::kHeader;
  std::array<char, kHeaderSize> header_{};
  size_t header_filled_ = 0;
  size_t payload_size_ = 0;
  std::string buffer_;  // the payload being assembled (kPayload)
  absl::Status error_;
};

}  // namespace netlayer::smac
