// ConnectionState: the sans-I/O state machine behind every Connection, on every backend.
//
// It holds the delivery queue (a DeliveryQueue: the handler slot, the events waiting for
// delivery, the delivery claim, close-once), the output queue with its bound, the single-sender
// claim, and the close sequence (flush bounded by a linger, FIN, a bounded drain of the peer's
// end, or an abort). It never calls out, reads no clock and makes no system
// call: methods take the time when they need it and return what the driver (a backend) must do,
// and the driver does it after releasing its own lock. This is where the promises of
// connection.h are enforced, once:
//   1 (queue until a handler)     -> deliveries_ delivers only while a handler is set.
//   2 (never re-entered)          -> the delivery claim: one deliverer at a time (ClaimDelivery).
//   3 (close flushes)             -> kClosing keeps the output queue until it is sent (or the
//                                    linger passes: then an abort, never a silent drop).
//   4 (closed once, never local)  -> deliveries_ queues one close; a local Close or Abort drops
//                                    pending events (DeliveryQueue::CloseLocally).
//   5 (write after close errors)  -> BeginWrite checks the phase.
//   6 (in order, no duplicates)   -> one FIFO for input; one for output with ONE sender at a time
//                                    (a direct writer's unsent rest goes ahead of later writes).
//
// Output, the single-sender claim. Bytes leave in the order writes were accepted because only
// one party sends at a time:
//   - kWriter: BeginWrite found nothing queued and no one sending, so the writing thread sends
//     its own pieces directly (non-blocking, without the driver's lock), then OnDirectSent queues
//     its unsent rest AHEAD of what others queued meanwhile, counted in the bound from the start.
//     While it holds the claim it may go on sending the queue (ContinueAsWriter, a few rounds).
//   - kTransport: the backend's own sender (posix: the output thread; sim: the network pump)
//     claims with ClaimTransport, sends PeekOutput's views, reports OnSent.
// A delivery's answers go out together (BeginCork/EndCork, below): small writes the handler makes
// while its input is delivered are queued and sent in one gather when the delivery returns.
//
// Close sequence (local): Close(now) -> kClosing: output is flushed for at most close_linger
// (OnDeadline after it: abort, the peer sees a reset) -> all sent: Actions::shutdown_write (FIN),
// kClosed -> input is read and discarded until the peer's end of stream or close_drain passes
// (ReadPlan::kStop). Abort(): output discarded, Actions::reset, no FIN. The driver asks PlanRead()
// what its reader should do and until when.
//
// Thread rules: not thread-safe. A threaded backend guards it with one mutex; the sim calls it
// from the world's thread. Driving loop for deliveries (see DeliverEvents below):
//   lock; state.OnInput(...); unlock; DeliverEvents(lock, state, connection);
#pragma once

#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>  // NOLINT(determinism): std::thread::id only (the cork's owner)
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/delivery_queue.h"

namespace netlayer {

struct ConnectionLimits {
  // Bytes written but not yet sent (a direct writer's bytes count from the moment it claims).
  // A Write that would exceed it fails ResourceExhausted. The default holds one largest smac
  // frame (64 MiB + its 4-byte header) and, below a TLS adapter, that frame's ciphertext (TLS's
  // own default bound, 68 MiB, encrypted): docs/OPERATIONS.md, "Limits that agree".
  size_t max_output_bytes = size_t{72} << 20;
  // Bytes received but not yet delivered (no handler set, or a slow handler). Above it the
  // backend stops reading (PlanRead() pauses): back-pressure to the peer, never unbounded memory.
  size_t max_pending_input_bytes = size_t{16} << 20;
  // After Close(), output still queued is sent for at most this long; then the connection is
  // aborted (reset), so a peer that never reads cannot hold the connection forever.
  absl::Duration close_linger = absl::Seconds(10);
  // After the flush and the FIN, input is read (and discarded) for at most this long waiting for
  // the peer's end of stream, so the peer rarely sees a reset for data it sends meanwhile.
  absl::Duration close_drain = absl::Seconds(1);
  // A writer that sent its own bytes directly goes on sending what others queued meanwhile for at
  // most this many rounds before handing over to the transport sender.
  int max_writer_drain_rounds = 4;
  // TEST HOOK, never set outside planted-bug runs (docs/SCENARIOS.md, "Planted bugs"): breaks
  // promise 4 on purpose, so the simulator's promise checker can prove it catches it. A local
  // Close()/Abort() leaves the handler subscribed: a peer's end of stream or reset arriving
  // afterwards is delivered as ConnectionClosed.
  bool planted_close_after_local_close = false;
};

class ConnectionState {
 public:
  enum class Phase {
    kOpen,     // reading and writing
    kClosing,  // closed locally; flushing output (bounded by close_linger)
    kClosed,   // nothing more is sent (flushed and FIN, remote close, error or abort)
  };
  enum class Sender { kNone, kWriter, kTransport };

  // What the driver must do after a call, in this order. Several may be set.
  struct Actions {
    // Output waits and no one is sending: posix notifies its output thread; sim schedules a send.
    bool wake_transport = false;
    // Abort: a transport send may be blocked on a peer that does not read: unblock it (posix:
    // shutdown(SHUT_RDWR)).
    bool unblock_sender = false;
    // Everything written before Close() was sent: end the write side (FIN, shutdown(SHUT_WR)).
    bool shutdown_write = false;
    // Abort the stream: the peer sees a reset (posix: SO_LINGER 0, then the final close).
    bool reset = false;
    // The reader's plan changed (a deadline set, a close to deliver, reading may resume): wake it.
    bool wake_reader = false;
    // The driver's threads are done and no writer sends: the descriptors may be closed now.
    bool release = false;

    Actions& operator|=(const Actions& o) {
      wake_transport |= o.wake_transport;
      unblock_sender |= o.unblock_sender;
      shutdown_write |= o.shutdown_write;
      reset |= o.reset;
      wake_reader |= o.wake_reader;
      release |= o.release;
      return *this;
    }
  };

  // BeginWrite's answer. `status` not ok: rejected, nothing queued. `send_direct`: the caller
  // now holds the writer claim and must send `pieces` itself without the lock, then call
  // OnDirectSent (and EndWriterClaim).
  struct WriteStart {
    absl::Status status;
    bool send_direct = false;
    Actions actions;
  };

  // What the reader should do now (PlanRead).
  struct ReadPlan {
    enum class Kind {
      kRead,   // watch the stream and read it (discarding what is read once closed locally)
      kPause,  // do not read: back-pressure, or the peer's end already seen while flushing;
               // wait for a wake-up or the deadline
      kStop,   // the reader's work is done: deliver what is pending and end
    };
    Kind kind = Kind::kRead;
    absl::Time deadline = absl::InfiniteFuture();  // call OnDeadline at or after it
    bool discard = false;                          // input is read and thrown away (closed locally)
  };

  // One event for the handler. `handler` is the handler it goes to (a snapshot, so the driver
  // can call it without the lock). `close` is set for the close notification; otherwise the
  // event is `input`.
  using Delivery = DeliveryQueue<ConnectionHandler>::Delivery;

  // Maps delivered events onto a ConnectionHandler's methods, for `connection`.
  struct Dispatch {
    Connection& connection;
    void operator()(ConnectionHandler& handler, std::string_view data) const {
      handler.InputData(connection, data);
    }
    void operator()(ConnectionHandler& handler, const CloseReason& reason) const {
      handler.ConnectionClosed(connection, reason);
    }
  };

  explicit ConnectionState(ConnectionLimits limits = {});

  Phase phase() const { return phase_; }
  bool IsOpen() const { return phase_ == Phase::kOpen; }
  const ConnectionLimits& limits() const { return limits_; }
  Sender sender() const { return sender_; }
  bool closed_locally() const { return closed_locally_; }
  bool aborted() const { return aborted_; }

  // ---- Application side ----

  // Swaps the handler. If the new one is set and events wait, the caller should then try
  // ClaimDelivery() and deliver.
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler> handler);

  // A write of the concatenation of `pieces`, all or nothing. FailedPrecondition after Close(),
  // Abort() or a remote close; ResourceExhausted over the bound (counting a direct writer's
  // bytes still in its hands). With nothing queued and no one sending, the caller gets the
  // writer claim (send_direct); otherwise the bytes are copied into the queue.
  WriteStart BeginWrite(absl::Span<const std::string_view> pieces);

  // REQUIRES: the writer claim. The direct send of `pieces` sent `sent` bytes (all of them, or
  // fewer when the socket was full). The unsent rest is queued ahead of what others wrote
  // meanwhile, unless the stream ended meanwhile (then it is dropped with the rest of the output,
  // as on any remote close). A send error is reported with OnSendError instead.
  void OnDirectSent(absl::Span<const std::string_view> pieces, size_t sent);
  // REQUIRES: the writer claim. True if the writer should send more of the queue itself
  // (PeekOutput, send without blocking, OnSent): everything it sent so far went out whole, output
  // waits, and it has made fewer than max_writer_drain_rounds rounds.
  bool ContinueAsWriter();
  // REQUIRES: the writer claim. Ends it; output still queued goes to the transport sender.
  Actions EndWriterClaim(absl::Time now);

  // Coalescing a delivery's answers (like Redis answering a whole read of pipelined commands
  // with one write). A request/response peer answers inside InputData, and one read often holds
  // several requests (many callers sharing the connection): a send per answer costs a system call
  // and a wake-up of the peer each. While the reader delivers (BeginCork .. EndCork), a write
  // made by the delivering thread itself of at most kCorkWriteUpTo bytes is queued instead of
  // sent, and the transport is not woken while at most kCorkUpTo bytes wait; EndCork then hands
  // the reader the writer claim to send them all in one gather, so an answer leaves no later
  // than its delivery's end (a slow handler delays the answers made before it in the same read;
  // every answer is still sent before the next read is delivered). Writes from other threads are
  // unaffected, and a larger write with nothing queued is sent directly as usual (no copy).
  static constexpr size_t kCorkWriteUpTo = size_t{16} << 10;
  static constexpr size_t kCorkUpTo = size_t{64} << 10;
  // The calling thread is about to deliver input. REQUIRES: no cork.
  void BeginCork();
  // The delivery returned. True: output waits and no one is sending, and the caller now holds the
  // writer claim as a direct writer whose own bytes all went: it sends the queue (ContinueAsWriter
  // rounds; SendQueuedAsWriter) and ends the claim. False: nothing to send, or a sender has it.
  bool EndCork();
  bool corked() const { return cork_thread_ != std::thread::id(); }

  // Local close. Undelivered events are dropped, including a remote close that was seen but not
  // yet delivered: after Close() the handler is called no more. If the stream is open, output is
  // flushed (bounded by close_linger), then the write side is shut. Idempotent.
  Actions Close(absl::Time now);
  // Local abort: like Close, but unsent output is discarded and the stream is reset (the peer
  // sees a reset). After Close(), it cuts the flush short. Idempotent; nothing after a remote
  // close.
  Actions Abort();

  // ---- Network side ----

  // Bytes arrived. If they can go straight to the handler (it is set, nothing is queued and no
  // one is delivering), returns that handler with the delivery claim taken: the caller calls
  // handler->InputData(data) without its lock, then drains with DeliverEvents. Otherwise the
  // bytes are copied into the queue and nullptr is returned. Input after a close is discarded.
  std::shared_ptr<ConnectionHandler> OnInput(std::string_view data);

  // Zero-copy reads (ConnectionHandler::InputBuffer). If input could go straight to the handler
  // now (as in OnInput: open, handler set, nothing queued, no one delivering), takes the delivery
  // claim and returns the handler; nullptr otherwise. With the claim the caller may ask the
  // handler for its buffer and read into it without the lock; ReadAndReceive is the one user.
  std::shared_ptr<ConnectionHandler> ClaimInputBuffer();

  // The peer's end of stream. While open, the connection ends (kPeerClosed, as OnRemoteClosed).
  // After a local Close(), it only ends the drain (the flush goes on: the peer may still read).
  Actions OnEndOfStream();

  // The stream broke: a reset or an error (or, while open, the end of stream). The output queue
  // is discarded; the close notification is queued (once) unless the connection was closed
  // locally.
  Actions OnRemoteClosed(CloseReason reason);

  // ---- Output ----

  size_t output_bytes() const { return output_bytes_; }
  bool HasOutput() const { return output_bytes_ > 0; }
  // Bytes of storage kept from sent chunks for the next queued writes (bounded; zero once the
  // output queue drains). For tests and memory accounting.
  size_t spare_output_bytes() const { return spare_bytes_; }
  // Claims the send side for the transport sender: true if output waits, no one is sending, and
  // the stream is still sending (not kClosed).
  bool ClaimTransport();
  // Spare storage: sent chunks kept for the next queued writes (bounded: 256 chunks, 16 MiB).
  // By default it is freed whenever the queue drains. A bulk sender's queue drains between
  // most writes, though, and every fresh megabyte then page-faults in as it is copied (half
  // the throughput on posix). A backend whose sender can wait with a deadline calls
  // KeepSparesWhenDrained() once; then spares outlive a drained queue until it has stayed
  // drained for kSpareStorageIdleTime: while idle, the sender waits at most until
  // SpareStorageDeadline() (InfiniteFuture: nothing to free) and then calls
  // OnSpareStorageDeadline(now), which frees them if that time has come.
  static constexpr absl::Duration kSpareStorageIdleTime = absl::Milliseconds(50);
  void KeepSparesWhenDrained() { keep_spares_when_drained_ = true; }
  absl::Time SpareStorageDeadline() const;
  void OnSpareStorageDeadline(absl::Time now);

  // REQUIRES: the sender claim (either kind). Fills `out` with views of the first queued bytes,
  // in order (at most out.size() pieces and `max_bytes` bytes); returns how many were filled.
  // The views stay valid until OnSent/OnSendError, also across a remote close or an abort.
  // A sender that blocks until all is sent passes a bounded `max_bytes`: a chunk is recycled as
  // a spare only once sent, and the writers copy into spares while it sends the next one.
  size_t PeekOutput(absl::Span<std::string_view> out,
                    size_t max_bytes = std::numeric_limits<size_t>::max());
  // REQUIRES: the sender claim. `n` bytes from the front were sent. The transport's claim ends
  // here (the writer keeps its claim until EndWriterClaim).
  Actions OnSent(size_t n, absl::Time now);
  // REQUIRES: the sender claim. The send failed: the stream is broken (as OnRemoteClosed). The
  // transport's claim ends here.
  Actions OnSendError(CloseReason reason);

  // ---- Reading and deadlines ----

  ReadPlan PlanRead() const;
  // Deadlines that passed by `now`: the linger with output unsent aborts the stream (logged);
  // the drain ends the reader's wait for the peer's end of stream.
  Actions OnDeadline(absl::Time now);
  // The driver's own threads have finished with the stream. Actions::release tells when the
  // descriptors may be closed: now, or later from EndWriterClaim if a writer is still sending.
  Actions OnTransportDone();
  bool released() const { return released_; }

  // ---- Delivery ----

  // Back-pressure on input: false while undelivered input is at or over its bound.
  bool WantRead() const;
  // True if the caller is now the (single) deliverer and must call NextDelivery until it
  // returns nullopt. False if someone else is delivering or there is nothing to deliver.
  bool ClaimDelivery();
  // Moves the next event for the claimed deliverer into `out` and returns true; or returns false
  // and releases the claim.
  bool NextDelivery(Delivery& out);
  bool delivering() const { return deliveries_.delivering(); }
  size_t pending_input_bytes() const { return deliveries_.queued_bytes(); }
  // After a delivery loop run by a thread other than the reader (SetHandler draining): if the
  // deliveries brought pending input back under its bound, the reader may be paused on it:
  // wake_reader. Clears the flag.
  Actions TakeRoomMade();

 private:
  // The delivery loops below run DeliveryQueue's loop on deliveries_.
  template <typename Lock>
  friend void DrainClaimedDeliveries(Lock& lock, ConnectionState& state, Connection& connection);
  template <typename Lock>
  friend void DeliverEvents(Lock& lock, ConnectionState& state, Connection& connection);
  template <typename Lock>
  friend void ReceiveInput(Lock& lock, ConnectionState& state, Connection& connection,
                           std::string_view data);
  template <typename Lock, typename GetConnection, typename Read, typename Writer>
  friend ptrdiff_t ReadAndReceive(Lock& lock, ConnectionState& state, absl::Span<char> buffer,
                                  GetConnection&& connection, Read&& read, Writer&& writer,
                                  bool& filled);

  void Append(absl::Span<const std::string_view> pieces, size_t total);
  // An empty chunk able to hold `total` bytes: a spare one if one is large enough.
  std::string NewChunk(size_t total);
  // Keeps a sent chunk's storage for a later NewChunk, within the spares' bounds.
  void RecycleChunk(std::string& chunk);
  void DiscardOutput();
  void ReleaseSpareStorage();
  void Consume(size_t n);
  Actions AbortStream();
  // After the sender claim ends or output shrinks: the flush may be complete, or the transport
  // may need waking.
  Actions AfterSend(absl::Time now);
  Actions MaybeRelease();

  ConnectionLimits limits_;
  Phase phase_ = Phase::kOpen;
  bool closed_locally_ = false;
  bool aborted_ = false;
  bool fin_sent_ = false;    // shutdown_write was returned
  bool peer_eof_ = false;    // the peer's end of stream (or an error) seen after a local close
  bool drain_over_ = false;  // close_drain passed
  absl::Time linger_deadline_ = absl::InfiniteFuture();
  absl::Time drain_deadline_ = absl::InfiniteFuture();
  // Bytes merge while queued (TCP may merge them anyway, promise 6); the bound is the pending
  // input bound (back-pressure: WantRead).
  DeliveryQueue<ConnectionHandler> deliveries_;
  // Output: whole chunks; the first one partly sent up to output_offset_.
  std::deque<std::string> output_;
  size_t output_offset_ = 0;
  size_t output_bytes_ = 0;
  // Storage of sent chunks (large ones only, at most kMaxSpareChunks holding kMaxSpareBytes),
  // reused by the next queued writes: on a busy connection a queued megabyte would otherwise be a
  // fresh allocation whose pages fault in as it is copied. Freed when the queue drains, so an
  // idle connection holds none; or, with keep_spares_when_drained_, by ReleaseSpareStorage.
  std::vector<std::string> spare_chunks_;
  size_t spare_bytes_ = 0;
  bool keep_spares_when_drained_ = false;
  absl::Time drained_at_ = absl::InfinitePast();  // the last send that ended with none queued
  // The first pinned_chunks_ chunks are viewed by the sender (PeekOutput) until OnSent: they are
  // neither appended to nor freed (a discard while pinned frees them at OnSent).
  size_t pinned_chunks_ = 0;
  bool discard_pinned_ = false;
  size_t peeked_bytes_ = 0;  // bytes in the pinned views
  Sender sender_ = Sender::kNone;
  size_t claim_bytes_ = 0;       // kWriter: its bytes not yet sent or queued (counted in the bound)
  bool writer_whole_ = true;     // kWriter: every send of this claim went out whole
  int writer_rounds_ = 0;        // kWriter: ContinueAsWriter rounds
  std::thread::id cork_thread_;  // the thread delivering between BeginCork and EndCork, or none
  bool transport_done_ = false;
  bool released_ = false;
};

// The one delivery loop both backends use (DeliveryQueue's). REQUIRES: `lock` is locked and the
// caller holds the delivery claim (ClaimDelivery). Delivers every deliverable event to its handler
// with `lock` unlocked around each call, in order. Returns with `lock` locked. `Lock` is
// a MutexLock (core/mutex.h) on posix and NoLock in the simulator.
template <typename Lock>
void DrainClaimedDeliveries(Lock& lock, ConnectionState& state,
                            Connection& connection) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  state.deliveries_.DrainClaimed(lock, ConnectionState::Dispatch{connection});
}

// REQUIRES and ensures: `lock` locked. Delivers what waits if this thread can claim delivery
// (otherwise returns at once: the claimant will deliver).
template <typename Lock>
void DeliverEvents(Lock& lock, ConnectionState& state,
                   Connection& connection) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  state.deliveries_.Deliver(lock, ConnectionState::Dispatch{connection});
}

// Hands received bytes to the state machine and delivers: straight from the caller's buffer when
// nothing is queued (no copy), else through the queue. REQUIRES and ensures: `lock` locked.
template <typename Lock>
void ReceiveInput(Lock& lock, ConnectionState& state, Connection& connection,
                  std::string_view data) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const ConnectionState::Dispatch dispatch{connection};
  if (std::shared_ptr<ConnectionHandler> direct = state.OnInput(data)) {
    state.deliveries_.DeliverDirect(lock, std::move(direct), data, dispatch);
  } else {
    state.deliveries_.Deliver(lock, dispatch);
  }
}

// Pieces a writer sends at once while it holds the claim (ContinueAsWriter rounds).
inline constexpr size_t kWriterMaxPieces = 64;

// REQUIRES: the writer claim, `lock` locked. Sends the queue while ContinueAsWriter says so (the
// socket taking it whole, a few rounds), then ends the claim (what is left goes to the
// transport sender). `send`, `carry` and `now` as for WriteThroughClaim below.
template <typename Lock, typename Send, typename Carry, typename Now>
void SendQueuedAsWriter(Lock& lock, ConnectionState& state, Send&& send, Carry&& carry,
                        Now&& now) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  while (state.ContinueAsWriter()) {
    std::string_view views[kWriterMaxPieces];
    const size_t count = state.PeekOutput(absl::MakeSpan(views));
    lock.unlock();
    std::optional<CloseReason> error;
    const size_t n = send(absl::MakeConstSpan(views, count), error);
    lock.lock();
    if (error.has_value()) {
      carry(state.OnSendError(std::move(*error)));
      break;
    }
    carry(state.OnSent(n, now()));
  }
  carry(state.EndWriterClaim(now()));
}

// A threaded driver's send path, as ReadAndReceive takes it: `send`, `carry` and `now` as for
// WriteThroughClaim.
template <typename Send, typename Carry, typename Now>
struct DriverWriter {
  Send send;
  Carry carry;
  Now now;
};
template <typename Send, typename Carry, typename Now>
DriverWriter(Send, Carry, Now) -> DriverWriter<Send, Carry, Now>;

// One read of a threaded driver's reader, delivered as ReceiveInput delivers it: into the
// handler's own buffer when it offers one (ConnectionHandler::InputBuffer: a large message's
// payload is read where the handler keeps it, not copied), else into `buffer`. The driver
// supplies:
//   Connection* connection(): the handle handlers get, or nullptr once it is gone (the input is
//     then discarded). Called with `lock` held.
//   ptrdiff_t read(absl::Span<char> into): reads what the stream holds now into `into`, without
//     blocking and without the lock: > 0 the bytes read; otherwise the driver's own result (0 at
//     the end of stream, < 0 an error or nothing to read, the driver keeping its errno).
//   DriverWriter writer: the driver's send path. The answers the handler writes while the read
//     is delivered are corked (BeginCork) and sent together when the delivery returns.
// Returns what `read` returned; `filled` tells whether it filled `into` (more may be waiting).
// Ends of stream and errors are the driver's to report (OnEndOfStream, OnRemoteClosed).
// REQUIRES and ensures: `lock` locked.
template <typename Lock, typename GetConnection, typename Read, typename Writer>
ptrdiff_t ReadAndReceive(Lock& lock, ConnectionState& state, absl::Span<char> buffer,
                         GetConnection&& connection, Read&& read, Writer&& writer,
                         bool& filled) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Connection* c = connection();
  std::shared_ptr<ConnectionHandler> claimed = c != nullptr ? state.ClaimInputBuffer() : nullptr;
  lock.unlock();
  absl::Span<char> into = buffer;
  if (claimed != nullptr) {
    // With the delivery claim no one else calls the handler until this read is delivered.
    const absl::Span<char> own = claimed->InputBuffer(*c);
    if (!own.empty()) into = own;
  }
  const ptrdiff_t n = read(into);
  lock.lock();
  filled = n > 0 && static_cast<size_t>(n) == into.size();
  const std::string_view data =
      n > 0 ? std::string_view(into.data(), static_cast<size_t>(n)) : std::string_view();
  c = connection();
  if (claimed == nullptr) {
    if (!data.empty() && c != nullptr) ReceiveInput(lock, state, *c, data);
    return n;
  }
  if (c == nullptr) {
    // The handle went away meanwhile; its destructor removed the handler, so nothing is
    // deliverable: end the claim (the snapshot is released outside the lock).
    ConnectionState::Delivery none;
    const bool delivered = state.NextDelivery(none);  // ends the claim
    NETLAYER_ASSERT(!delivered, "no handler, nothing to deliver");
    lock.unlock();
    claimed.reset();
    lock.lock();
    return n;
  }
  const ConnectionState::Dispatch dispatch{*c};
  if (!data.empty() && state.IsOpen()) {
    state.BeginCork();
    state.deliveries_.DeliverDirect(lock, std::move(claimed), data, dispatch);
    if (state.EndCork()) SendQueuedAsWriter(lock, state, writer.send, writer.carry, writer.now);
  } else {
    // Nothing read, or the connection closed meanwhile (input after a close is discarded):
    // deliver what was queued behind the claim (a close, say) and end it.
    lock.unlock();
    claimed.reset();
    lock.lock();
    state.deliveries_.DrainClaimed(lock, dispatch);
  }
  return n;
}

// SetHandler for a threaded driver: installs `handler`, delivers what waits for it, and sets
// `actions.wake_reader` when the deliveries made room (TakeRoomMade): while this thread
// delivered (the lock released around each callback), the reader may have queued more input
// behind the delivery claim, reached the input bound and paused; this loop delivered that input
// too, so only a wake-up from here resumes it. Returns the previous handler
// (release it after unlocking). REQUIRES and ensures: `lock` locked.
template <typename Lock>
std::shared_ptr<ConnectionHandler> SetHandlerAndDeliver(
    Lock& lock, ConnectionState& state, Connection& connection,
    std::shared_ptr<ConnectionHandler> handler,
    ConnectionState::Actions& actions) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::shared_ptr<ConnectionHandler> previous = state.SetHandler(std::move(handler));
  DeliverEvents(lock, state, connection);
  actions |= state.TakeRoomMade();
  return previous;
}

// Write for a threaded driver: the one write path of posix and asio. BeginWrite; with the writer
// claim, `send` sends the caller's pieces without the lock and without blocking, then (while
// ContinueAsWriter says so) what others queued meanwhile; EndWriterClaim. REQUIRES and ensures:
// `lock` locked. The driver supplies:
//   size_t send(absl::Span<const std::string_view> pieces, std::optional<CloseReason>& error):
//     sends what the socket takes now; sets `error` if the stream broke.
//   void carry(const ConnectionState::Actions&): carries out actions (lock held).
//   absl::Time now(): the driver's clock (core reads none).
// FailedPrecondition if the direct send found the stream broken (the state then closes it).
template <typename Lock, typename Send, typename Carry, typename Now>
absl::Status WriteThroughClaim(Lock& lock, ConnectionState& state,
                               absl::Span<const std::string_view> pieces, Send&& send,
                               Carry&& carry, Now&& now) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ConnectionState::WriteStart start = state.BeginWrite(pieces);
  carry(start.actions);
  if (!start.send_direct) return start.status;
  lock.unlock();
  std::optional<CloseReason> error;
  const size_t sent = send(pieces, error);
  lock.lock();
  absl::Status status;
  if (error.has_value()) {
    status = absl::FailedPreconditionError("write on a closed connection: " + error->ToString());
    carry(state.OnSendError(std::move(*error)));
  } else {
    state.OnDirectSent(pieces, sent);
  }
  // Send what others queued meanwhile too, while the socket takes it whole: on a busy connection
  // this saves handing every write to the transport sender.
  SendQueuedAsWriter(lock, state, send, carry, now);
  return status;
}

}  // namespace netlayer
