#include "netlayer/core/connection_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"

namespace netlayer {
namespace {
// Queued input events are merged up to this size, as TCP may merge them anyway (promise 6).
constexpr size_t kMergeInputUpTo = size_t{64} << 10;
// Small writes are appended to the last unsent chunk up to this size: fewer allocations and
// fewer pieces per writev.
constexpr size_t kCoalesceOutputUpTo = size_t{64} << 10;
// Sent chunks at least this large are kept as spares (smaller ones are cheap to allocate) ...
constexpr size_t kMinSpareChunk = size_t{64} << 10;
// ... at most this many, holding at most this many bytes. Spares are storage the queue held a
// moment ago, so queue plus spares never exceed the queue's peak since the spares were last
// freed: these bounds cap how much of a burst is kept, not the connection's memory. A bulk
// sender's queue swings over megabytes (a window of acknowledgements, the socket's buffer);
// with fewer than its swing kept, each swing allocates again and faults the pages in.
constexpr size_t kMaxSpareChunks = 256;
constexpr size_t kMaxSpareBytes = size_t{16} << 20;
}  // namespace

ConnectionState::ConnectionState(ConnectionLimits limits)
    : limits_(limits),
      deliveries_({.max_queued_bytes = limits.max_pending_input_bytes,
                   .merge_input_up_to = kMergeInputUpTo}) {
  NETLAYER_ASSERT(limits_.max_output_bytes > 0, "max_output_bytes must be positive");
  NETLAYER_ASSERT(limits_.max_pending_input_bytes > 0, "max_pending_input_bytes must be positive");
}

std::shared_ptr<ConnectionHandler> ConnectionState::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  return deliveries_.SetHandler(std::move(handler));
}

ConnectionState::WriteStart ConnectionState::BeginWrite(absl::Span<const std::string_view> pieces) {
  WriteStart start;
  if (phase_ != Phase::kOpen) {
    start.status = absl::FailedPreconditionError(aborted_ ? "write on a connection that was aborted"
                                                 : phase_ == Phase::kClosing
                                                     ? "write on a connection that is closing"
                                                     : "write on a closed connection");
    return start;
  }
  size_t total = 0;
  for (std::string_view piece : pieces) total += piece.size();
  if (total == 0) return start;
  const size_t max = limits_.max_output_bytes;
  const size_t in_flight = output_bytes_ + claim_bytes_;
  if (total > max - std::min(max, in_flight)) {
    NETLAYER_REACHABLE("core.write.output-full");
    start.status = absl::ResourceExhaustedError(
        absl::StrCat("output queue full: ", in_flight, " bytes queued or being sent, writing ",
                     total, " more would pass the limit of ", max));
    return start;
  }
  // The delivering thread's own small writes wait for the end of its delivery (EndCork).
  // NOLINT(determinism): only the caller's thread identity is compared (no thread is started, no
  // clock or system call); in the simulator every call is on the world's one thread.
  const bool by_corked_thread =
      cork_thread_ != std::thread::id() && cork_thread_ == std::this_thread::get_id();
  NETLAYER_SOMETIMES(
      by_corked_thread && sender_ == Sender::kNone && output_bytes_ + total > kCorkUpTo,
      "core.cork.flushed-past-bound");
  if (sender_ == Sender::kNone && output_bytes_ == 0 &&
      !(by_corked_thread && total <= kCorkWriteUpTo)) {
    // Nothing queued and no one sending: the writer sends its own bytes (no copy, no hand-off).
    NETLAYER_ASSERT(pinned_chunks_ == 0 && claim_bytes_ == 0, "an idle sender side holds nothing");
    sender_ = Sender::kWriter;
    claim_bytes_ = total;
    writer_whole_ = true;
    writer_rounds_ = 0;
    start.send_direct = true;
    return start;
  }
  Append(pieces, total);
  start.actions.wake_transport =
      sender_ == Sender::kNone && !(by_corked_thread && output_bytes_ <= kCorkUpTo);
  return start;
}

void ConnectionState::BeginCork() {
  NETLAYER_ASSERT(!corked(), "one cork at a time");
  cork_thread_ = std::this_thread::get_id();
}

bool ConnectionState::EndCork() {
  NETLAYER_ASSERT(cork_thread_ == std::this_thread::get_id(), "the corking thread ends its cork");
  cork_thread_ = std::thread::id();
  if (sender_ != Sender::kNone || output_bytes_ == 0 || phase_ == Phase::kClosed) return false;
  sender_ = Sender::kWriter;
  claim_bytes_ = 0;
  writer_whole_ = true;
  writer_rounds_ = 0;
  return true;
}

void ConnectionState::Append(absl::Span<const std::string_view> pieces, size_t total) {
  // Append to the last chunk only if the sender holds no view into it.
  const bool can_append = output_.size() > pinned_chunks_ && !output_.empty() &&
                          output_.back().size() + total <= kCoalesceOutputUpTo;
  std::string* chunk;
  if (can_append) {
    chunk = &output_.back();
  } else {
    chunk = &output_.emplace_back(NewChunk(total));
  }
  for (std::string_view piece : pieces) chunk->append(piece);
  output_bytes_ += total;
}

std::string ConnectionState::NewChunk(size_t total) {
  // The smallest spare that fits, so a large spare stays for a large write.
  size_t best = spare_chunks_.size();
  for (size_t i = 0; i < spare_chunks_.size(); ++i) {
    const size_t capacity = spare_chunks_[i].capacity();
    if (capacity >= total &&
        (best == spare_chunks_.size() || capacity < spare_chunks_[best].capacity())) {
      best = i;
    }
  }
  std::string chunk;
  if (best < spare_chunks_.size()) {
    chunk = std::move(spare_chunks_[best]);
    spare_chunks_.erase(spare_chunks_.begin() + static_cast<std::ptrdiff_t>(best));
    spare_bytes_ -= chunk.capacity();
    chunk.clear();  // keeps the capacity
  } else {
    chunk.reserve(total);
  }
  return chunk;
}

void ConnectionState::RecycleChunk(std::string& chunk) {
  const size_t capacity = chunk.capacity();
  if (capacity < kMinSpareChunk || spare_chunks_.size() >= kMaxSpareChunks ||
      capacity > kMaxSpareBytes - spare_bytes_) {
    return;
  }
  spare_bytes_ += capacity;
  spare_chunks_.push_back(std::move(chunk));
}

void ConnectionState::OnDirectSent(absl::Span<const std::string_view> pieces, size_t sent) {
  NETLAYER_ASSERT(sender_ == Sender::kWriter, "OnDirectSent is for the claiming writer");
  NETLAYER_ASSERT(sent <= claim_bytes_, "a direct send sends at most its own bytes");
  const size_t rest = claim_bytes_ - sent;
  claim_bytes_ = 0;
  NETLAYER_SOMETIMES(rest > 0, "core.write.direct-cut-short");
  if (rest == 0) return;
  writer_whole_ = false;
  if (phase_ == Phase::kClosed) return;  // the stream ended meanwhile: dropped with the output
  // The rest goes ahead of what others queued meanwhile: this write was accepted before theirs.
  NETLAYER_ASSERT(pinned_chunks_ == 0 && output_offset_ == 0,
                  "while a writer holds the claim no one else sends");
  std::string chunk = NewChunk(rest);
  size_t skip = sent;
  for (std::string_view piece : pieces) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    chunk.append(piece.substr(skip));
    skip = 0;
  }
  NETLAYER_ASSERT(chunk.size() == rest, "the unsent rest matches the claim");
  output_.push_front(std::move(chunk));
  output_bytes_ += rest;
  NETLAYER_ASSERT(output_bytes_ <= limits_.max_output_bytes, "the claim kept room for its rest");
}

bool ConnectionState::ContinueAsWriter() {
  NETLAYER_ASSERT(sender_ == Sender::kWriter, "ContinueAsWriter is for the claiming writer");
  if (!writer_whole_ || claim_bytes_ != 0 || !HasOutput() || phase_ == Phase::kClosed ||
      writer_rounds_ >= limits_.max_writer_drain_rounds) {
    return false;
  }
  ++writer_rounds_;
  return true;
}

ConnectionState::Actions ConnectionState::EndWriterClaim(absl::Time now) {
  NETLAYER_ASSERT(sender_ == Sender::kWriter, "only the claiming writer ends its claim");
  NETLAYER_ASSERT(pinned_chunks_ == 0, "the writer reported what it peeked");
  sender_ = Sender::kNone;
  claim_bytes_ = 0;
  return AfterSend(now);
}

ConnectionState::Actions ConnectionState::Close(absl::Time now) {
  Actions a;
  if (closed_locally_) return a;
  closed_locally_ = true;
  // Whatever was not yet delivered is dropped, even a remote close already seen but still
  // queued: after a local Close() the handler hears nothing more (promise 4).
  if (!limits_.planted_close_after_local_close) deliveries_.CloseLocally();
  a.wake_reader = true;
  if (phase_ == Phase::kClosed) return a;  // the stream already ended; nothing to flush
  phase_ = Phase::kClosing;
  linger_deadline_ = now + limits_.close_linger;
  a |= AfterSend(now);  // nothing to flush: FIN now; else the sender goes on
  return a;
}

ConnectionState::Actions ConnectionState::Abort() {
  Actions a;
  if (aborted_ || released_) return a;
  if (phase_ == Phase::kClosed && !closed_locally_) return a;  // a remote close came first
  closed_locally_ = true;
  if (!limits_.planted_close_after_local_close) deliveries_.CloseLocally();
  a |= AbortStream();
  return a;
}

ConnectionState::Actions ConnectionState::AbortStream() {
  Actions a;
  aborted_ = true;
  phase_ = Phase::kClosed;
  DiscardOutput();
  a.reset = true;
  a.unblock_sender = sender_ == Sender::kTransport;
  a.wake_transport = true;
  a.wake_reader = true;
  return a;
}

std::shared_ptr<ConnectionHandler> ConnectionState::OnInput(std::string_view data) {
  if (phase_ != Phase::kOpen || data.empty()) return nullptr;
  NETLAYER_ASSERT(!deliveries_.closed(), "an open connection's queue takes input");
  if (std::shared_ptr<ConnectionHandler> direct = deliveries_.ClaimDirect()) return direct;
  deliveries_.Push(data);
  return nullptr;
}

std::shared_ptr<ConnectionHandler> ConnectionState::ClaimInputBuffer() {
  if (phase_ != Phase::kOpen) return nullptr;
  NETLAYER_ASSERT(!deliveries_.closed(), "an open connection's queue takes input");
  return deliveries_.ClaimDirect();
}

ConnectionState::Actions ConnectionState::OnEndOfStream() {
  if (phase_ == Phase::kOpen) {
    return OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, ""));
  }
  Actions a;
  if (closed_locally_ && !peer_eof_) {
    // The peer is done sending; it may still read what this end flushes.
    peer_eof_ = true;
    a.wake_reader = true;
    if (limits_.planted_close_after_local_close) {
      (void)deliveries_.PushClose(CloseReason(CloseReason::Kind::kPeerClosed, ""));
    }
  }
  return a;
}

ConnectionState::Actions ConnectionState::OnRemoteClosed(CloseReason reason) {
  Actions a;
  if (aborted_ || released_) return a;
  if (phase_ == Phase::kClosed && !closed_locally_) return a;  // already ended
  const bool notify = phase_ == Phase::kOpen || limits_.planted_close_after_local_close;
  a.unblock_sender = sender_ == Sender::kTransport;
  a.wake_transport = true;
  a.wake_reader = true;
  phase_ = Phase::kClosed;
  peer_eof_ = true;  // nothing more will come
  DiscardOutput();
  if (notify) {
    const bool queued = deliveries_.PushClose(std::move(reason));
    NETLAYER_ASSERT(queued || limits_.planted_close_after_local_close,
                    "a connection's close is notified once");
  }
  return a;
}

void ConnectionState::DiscardOutput() {
  output_bytes_ = 0;
  output_offset_ = 0;
  ReleaseSpareStorage();
  // Chunks the sender is still reading from are freed by its OnSent/OnSendError.
  if (pinned_chunks_ == 0) {
    output_.clear();
  } else {
    discard_pinned_ = true;
  }
}

bool ConnectionState::ClaimTransport() {
  if (sender_ != Sender::kNone || output_bytes_ == 0 || phase_ == Phase::kClosed) return false;
  sender_ = Sender::kTransport;
  return true;
}

size_t ConnectionState::PeekOutput(absl::Span<std::string_view> out, size_t max_bytes) {
  NETLAYER_ASSERT(sender_ != Sender::kNone, "PeekOutput is for the sender");
  NETLAYER_ASSERT(pinned_chunks_ == 0, "one peek per send");
  NETLAYER_ASSERT(max_bytes > 0, "a peek views at least one byte");
  peeked_bytes_ = 0;
  if (phase_ == Phase::kClosed || output_bytes_ == 0) return 0;
  size_t filled = 0;
  for (size_t i = 0; i < output_.size() && filled < out.size() && peeked_bytes_ < max_bytes; ++i) {
    std::string_view chunk = output_[i];
    if (i == 0) chunk.remove_prefix(output_offset_);
    chunk = chunk.substr(0, max_bytes - peeked_bytes_);
    out[filled++] = chunk;
    peeked_bytes_ += chunk.size();
  }
  pinned_chunks_ = filled;
  return filled;
}

ConnectionState::Actions ConnectionState::OnSent(size_t n, absl::Time now) {
  NETLAYER_ASSERT(sender_ != Sender::kNone, "OnSent is for the sender");
  NETLAYER_ASSERT(n <= peeked_bytes_, "a send sends at most what it peeked");
  pinned_chunks_ = 0;
  if (discard_pinned_) {
    // Closed by the peer, an error or an abort while the sender was busy: drop what is left.
    discard_pinned_ = false;
    output_.clear();
  } else {
    Consume(n);
  }
  if (n < peeked_bytes_) writer_whole_ = false;
  peeked_bytes_ = 0;
  if (sender_ == Sender::kWriter) return {};  // EndWriterClaim finishes
  sender_ = Sender::kNone;
  return AfterSend(now);
}

ConnectionState::Actions ConnectionState::OnSendError(CloseReason reason) {
  NETLAYER_ASSERT(sender_ != Sender::kNone, "OnSendError is for the sender");
  pinned_chunks_ = 0;
  peeked_bytes_ = 0;
  if (discard_pinned_) {
    discard_pinned_ = false;
    output_.clear();
  }
  Actions a = OnRemoteClosed(std::move(reason));
  if (sender_ == Sender::kWriter) {
    writer_whole_ = false;
    return a;  // EndWriterClaim finishes
  }
  sender_ = Sender::kNone;
  a.unblock_sender = false;
  a |= MaybeRelease();
  return a;
}

void ConnectionState::Consume(size_t n) {
  NETLAYER_ASSERT(n <= output_bytes_, "cannot consume more output than is queued");
  output_bytes_ -= n;
  while (n > 0) {
    NETLAYER_ASSERT(!output_.empty(), "output accounting matches the queue");
    const size_t left_in_front = output_.front().size() - output_offset_;
    if (n < left_in_front) {
      output_offset_ += n;
      n = 0;
    } else {
      n -= left_in_front;
      RecycleChunk(output_.front());
      output_.pop_front();
      output_offset_ = 0;
    }
  }
  NETLAYER_ASSERT(output_bytes_ != 0 || output_.empty(), "no chunk is left once all is sent");
  // The queue drained: an idle connection keeps no spare storage (unless the backend frees it
  // once the connection stays idle).
  if (output_bytes_ == 0 && !keep_spares_when_drained_) ReleaseSpareStorage();
}

absl::Time ConnectionState::SpareStorageDeadline() const {
  if (spare_bytes_ == 0 || output_bytes_ > 0) return absl::InfiniteFuture();
  return drained_at_ + kSpareStorageIdleTime;
}

void ConnectionState::OnSpareStorageDeadline(absl::Time now) {
  if (now >= SpareStorageDeadline()) ReleaseSpareStorage();
}

void ConnectionState::ReleaseSpareStorage() {
  spare_chunks_.clear();
  spare_chunks_.shrink_to_fit();
  spare_bytes_ = 0;
}

ConnectionState::Actions ConnectionState::AfterSend(absl::Time now) {
  Actions a;
  // A send ended with nothing queued (the transport's, or a direct writer's): idle from now.
  if (sender_ == Sender::kNone && output_bytes_ == 0) drained_at_ = now;
  if (sender_ != Sender::kNone) return a;  // the sender decides when its claim ends
  if (phase_ == Phase::kClosing && output_bytes_ == 0) {
    // Everything written before Close() is sent: end the write side, then drain briefly.
    phase_ = Phase::kClosed;
    fin_sent_ = true;
    drain_deadline_ = now + limits_.close_drain;
    a.shutdown_write = true;
    a.wake_reader = true;
    a.wake_transport = true;  // the transport sender has nothing more to do: let it end
  } else if (HasOutput() && phase_ != Phase::kClosed) {
    a.wake_transport = true;
  }
  a |= MaybeRelease();
  return a;
}

ConnectionState::ReadPlan ConnectionState::PlanRead() const {
  ReadPlan plan;
  if (released_ || aborted_) {
    plan.kind = ReadPlan::Kind::kStop;
    return plan;
  }
  if (!closed_locally_) {
    if (phase_ == Phase::kClosed) {
      plan.kind = ReadPlan::Kind::kStop;  // a remote close: deliver it and end
    } else if (!WantRead()) {
      plan.kind = ReadPlan::Kind::kPause;
    }
    return plan;
  }
  plan.discard = true;
  if (phase_ == Phase::kClosing) {
    // Flushing: bounded by the linger. Input is read and discarded until the peer's end.
    plan.kind = peer_eof_ ? ReadPlan::Kind::kPause : ReadPlan::Kind::kRead;
    plan.deadline = linger_deadline_;
    return plan;
  }
  if (!fin_sent_ || peer_eof_ || drain_over_) {
    plan.kind = ReadPlan::Kind::kStop;
    return plan;
  }
  plan.deadline = drain_deadline_;  // draining: until the peer's end or the deadline
  return plan;
}

ConnectionState::Actions ConnectionState::OnDeadline(absl::Time now) {
  Actions a;
  if (closed_locally_ && phase_ == Phase::kClosing && now >= linger_deadline_) {
    NETLAYER_REACHABLE("core.close.linger-expired");
    Log(LogLayer::kCore)
        .warn("close: {} bytes not flushed within close_linger ({}); resetting the connection",
              output_bytes_ + claim_bytes_, absl::FormatDuration(limits_.close_linger));
    a |= AbortStream();
  }
  if (fin_sent_ && !peer_eof_ && !drain_over_ && now >= drain_deadline_) {
    NETLAYER_REACHABLE("core.close.drain-timed-out");
    drain_over_ = true;
    a.wake_reader = true;
  }
  return a;
}

ConnectionState::Actions ConnectionState::OnTransportDone() {
  transport_done_ = true;
  return MaybeRelease();
}

ConnectionState::Actions ConnectionState::MaybeRelease() {
  Actions a;
  if (transport_done_ && !released_ && sender_ != Sender::kWriter) {
    released_ = true;
    a.release = true;
  }
  return a;
}

ConnectionState::Actions ConnectionState::TakeRoomMade() {
  Actions a;
  a.wake_reader = deliveries_.TakeRoomMade() && PlanRead().kind == ReadPlan::Kind::kRead;
  return a;
}

bool ConnectionState::WantRead() const {
  return phase_ != Phase::kClosed && deliveries_.below_bound();
}

bool ConnectionState::ClaimDelivery() { return deliveries_.ClaimDelivery(); }

bool ConnectionState::NextDelivery(Delivery& out) { return deliveries_.NextDelivery(out); }

}  // namespace netlayer
