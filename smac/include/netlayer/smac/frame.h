// smac frames (ZEO's sized messages): a 4-byte big-endian unsigned length, then that many bytes.
//
// FrameDecoder is a sans-I/O state machine (after nghttp2's inbound parser): feed it bytes split
// or merged at any boundary and it reports each complete message, in order. It never allocates
// for a frame before checking the frame's length against the configured maximum, so a garbage or
// hostile header becomes a clear error, never a 4 GiB allocation. A frame that is whole in one
// input chunk is handed over as a view of that chunk (no copy); one that is not is assembled in
// its own buffer, which grows as the frame's bytes arrive and never because of what its header
// announces: it starts at min(frame, kInitialRoom) (64 KiB) and grows by kGrowthFactor (1.5x),
// capped at the frame's size, to make room for the bytes received so far plus at most
// kInPlaceAhead (1 MiB, or up to the frame's end when less than kMinInPlaceRead would be left)
// for a read into it. So for a partial frame of which R payload bytes arrived, the buffer holds
// at most max(64 KiB, 1.5 x (R + 1 MiB + 64 KiB)) bytes, and never more than the frame
// (MaxPartialFrameBuffer; docs/OPERATIONS.md §3 states this bound).
//
// Memory budget (optional, set_budget): a buffer of more than kUnbudgetedBytes (64 KiB) is
// charged to a MemoryBudget shared with other decoders (an rpc server's sessions) for its whole
// capacity, before it is allocated; a frame whose buffer cannot be charged (the budget is
// spent) fails the decoder with ResourceExhausted ("smac: a frame of N bytes was refused: ..."),
// at its header when not even its first room fits, or when it would grow. The charge is
// released when the frame completes, when Discard() is called (a connection closed) and when the
// decoder is destroyed.
//
// Zero-copy reads: while a large payload is being assembled, PayloadSpan() is where its next
// bytes go; a reader may read straight into it and Feed a view of what it wrote there, which the
// decoder takes in place (no copy). The buffer is kept from one frame to the next while frames
// keep coming (a Feed that completes one frame and goes on into the next), and freed when a Feed
// ends between frames, so a connection that goes quiet holds no payload buffer; Discard() frees
// it at once (a closed connection).
//
// Thread rules: not thread-safe; one owner feeds it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/smac/memory_budget.h"

namespace netlayer::smac {

inline constexpr size_t kHeaderSize = 4;
inline constexpr size_t kDefaultMaxMessageSize = size_t{64} << 20;  // 64 MiB
// A partial frame's buffer starts at min(frame size, kInitialRoom) and grows by kGrowthFactor
// (kGrowthNumerator / kGrowthDenominator), capped at the frame's size.
inline constexpr size_t kInitialRoom = size_t{64} << 10;
inline constexpr size_t kGrowthNumerator = 3;
inline constexpr size_t kGrowthDenominator = 2;
// At most this much room beyond the bytes received is made for a read straight into the buffer
// (plus up to kMinInPlaceRead, so that no small tail of the frame is left for a later read).
inline constexpr size_t kInPlaceAhead = size_t{1} << 20;
// Buffers of at most this capacity are not charged to a MemoryBudget (so small calls are never
// refused by one); larger ones are charged for their whole capacity.
inline constexpr size_t kUnbudgetedBytes = size_t{64} << 10;
// PayloadSpan offers a span only while at least this much payload is still to come: smaller
// rests are read with what follows them.
inline constexpr size_t kMinInPlaceRead = size_t{64} << 10;
// The most a partial frame's buffer holds with `received` payload bytes so far (frame.h above).
constexpr size_t MaxPartialFrameBuffer(size_t frame_size, size_t received) {
  const size_t grown = (received + kInPlaceAhead + kMinInPlaceRead) / kGrowthDenominator *
                           kGrowthNumerator +
                       kGrowthNumerator;
  const size_t bound = grown > kInitialRoom ? grown : kInitialRoom;
  return bound < frame_size ? bound : frame_size;
}
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
    kFailed,   // an oversized header, a frame the budget refused, or Discard(); every later
               // Feed fails with the same error
  };

  // Called once per complete message. `message` is valid only during the call. If `owned` is
  // not null it is the decoder's buffer holding exactly `message`, and the callee may move from
  // it (saves a copy when it keeps the message); otherwise `message` points into the fed input.
  using MessageSink = absl::FunctionRef<void(std::string_view message, std::string* owned)>;

  // REQUIRES 0 < max_message_size <= kFormatMaxMessageSize.
  explicit FrameDecoder(size_t max_message_size = kDefaultMaxMessageSize);
  // Releases what the buffer is charged to the budget.
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Charges buffers over kUnbudgetedBytes to `budget` from now on (nullptr: none). Call before
  // the first Feed. The budget must outlive the decoder (share it).
  void set_budget(std::shared_ptr<MemoryBudget> budget);
  // Frees the buffer at once and releases its charge; the decoder is kFailed ("smac: the
  // decoder was discarded") and consumes nothing more. For a connection that closed.
  void Discard();

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
  // Bytes charged to the budget now (0 without one).
  size_t charged_bytes() const { return charged_; }

  // Zero-copy input: the part of the payload buffer where the next payload bytes go, while a
  // payload with at least kMinInPlaceRead bytes still to come is being assembled; empty
  // otherwise. It never covers the payload's last byte, so the frame ends in an ordinary Feed
  // together with whatever follows it (which tells whether more frames are coming). Bytes written
  // at its start and then fed as a view starting at span.data() are taken without a copy. Valid
  // until the next Feed; it may grow the buffer (by kGrowthFactor, within the frame's size, and
  // never to more than kInPlaceAhead past the bytes so far). Empty too when the budget refuses
  // the growth (the next Feed then fails).
  absl::Span<char> PayloadSpan();

 private:
  absl::Status FeedBytes(std::string_view data, MessageSink sink);
  absl::Status StartPayload(uint32_t size);
  // Makes the buffer's capacity at least `want` (at most payload_size_), growing by
  // kGrowthFactor, charged to the budget first. False (nothing changed) when the budget refuses.
  bool Reserve(size_t want);
  // Makes room (buffer_'s size) for payload bytes up to `want` (at most payload_size_).
  bool GrowTo(size_t want);
  // Frees the buffer and releases its charge.
  void FreeBuffer();
  // After the sink may have moved from buffer_: the charge follows its capacity down.
  void SyncCharge();
  // Fails the decoder: the budget refused `size` bytes of buffer for the current frame.
  absl::Status Refuse(size_t frame_size, size_t wanted);
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
  std::shared_ptr<MemoryBudget> budget_;
  size_t charged_ = 0;  // bytes of buffer_'s capacity charged to budget_
};

}  // namespace netlayer::smac
