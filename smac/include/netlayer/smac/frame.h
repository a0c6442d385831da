// smac frames (ZEO's sized messages): a 4-byte big-endian unsigned length, then that many bytes.
//
// FrameDecoder is a sans-I/O state machine (after nghttp2's inbound parser): feed it bytes split
// or merged at any boundary and it reports each complete message, in order. It never allocates
// for a frame before checking the frame's length against the configured maximum, so a garbage or
// hostile header becomes a clear error, never a 4 GiB allocation. A frame that is whole in one
// input chunk is handed over as a view of that chunk (no copy); one that is not is assembled in
// its own buffer, sized whole from the header for frames up to kReserveUpFront (1 MiB) and
// grown by doubling (capped at the frame's size) for larger ones, so the memory a peer can make
// us hold follows the bytes it actually sent.
//
// Zero-copy reads: while a large payload is being assembled, PayloadSpan() is where its next
// bytes go; a reader may read straight into it and Feed a view of what it wrote there, which the
// decoder takes in place (no copy). The buffer is kept from one frame to the next while frames
// keep coming (a Feed that completes one frame and goes on into the next), and freed when a Feed
// ends between frames, so a connection that goes quiet holds no payload buffer.
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
#include "absl/types/span.h"

namespace netlayer::smac {

inline constexpr size_t kHeaderSize = 4;
inline constexpr size_t kDefaultMaxMessageSize = size_t{64} << 20;  // 64 MiB
// Frames up to this size get their whole buffer when their header arrives.
inline constexpr size_t kReserveUpFront = size_t{1} << 20;
// PayloadSpan offers a span only while at least this much payload is still to come: smaller
// rests are read with what follows them.
inline constexpr size_t kMinInPlaceRead = size_t{64} << 10;
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

  // Zero-copy input: the part of the payload buffer where the next payload bytes go, while a
  // payload with at least kMinInPlaceRead bytes still to come is being assembled; empty
  // otherwise. It never covers the payload's last byte, so the frame ends in an ordinary Feed
  // together with whatever follows it (which tells whether more frames are coming). Bytes written
  // at its start and then fed as a view starting at span.data() are taken without a copy. Valid
  // until the next Feed; it may grow the buffer (by doubling, within the
  // frame's size), never beyond what the frame's bytes so far justify.
  absl::Span<char> PayloadSpan();

 private:
  absl::Status FeedBytes(std::string_view data, MessageSink sink);
  absl::Status StartPayload(uint32_t size);
  // Reserves memory for payload bytes up to `want` (at most payload_size_), by doubling.
  void Reserve(size_t want);
  // Makes room (buffer_'s size) for payload bytes up to `want` (at most payload_size_).
  void GrowTo(size_t want);
  // Between frames after a Feed: the payload buffer is freed (nothing of it is kept idle).
  void ReleaseIfBetweenFrames();

  size_t max_message_size_;
  State state_ = State::kHeader;
  std::array<char, kHeaderSize> header_{};
  size_t header_filled_ = 0;
  size_t payload_size_ = 0;
  // The payload being assembled (kPayload): its first payload_filled_ bytes are the payload so
  // far; its size is at least that: the room made for in-place reads (zero-filled when made,
  // once: a reused buffer keeps its room), or exactly the bytes so far when they were appended.
  std::string buffer_;
  size_t payload_filled_ = 0;
  absl::Status error_;
};

}  // namespace netlayer::smac
