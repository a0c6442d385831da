// ConnectionState: the sans-I/O state machine behind every Connection, on every backend.
//
// It holds the handler slot, the events waiting for delivery, the output queue with its bound,
// and the open / closing / closed phases. It never calls out: methods return what the driver
// (a backend) must do, and the driver does it after releasing its own lock. This is where the
// promises of connection.h are enforced, once:
//   1 (queue until a handler)     -> events_ is delivered only while handler_ is set.
//   2 (never re-entered)          -> the delivery claim: one deliverer at a time (ClaimDelivery).
//   3 (close flushes)             -> kClosing keeps the output queue until it drains.
//   4 (closed once, never local)  -> close_delivered_ / local close drops pending events.
//   5 (write after close errors)  -> Write checks the phase.
//   6 (in order, no duplicates)   -> one FIFO for input, one for output, consumed by byte count.
//
// Thread rules: not thread-safe. A threaded backend guards it with one mutex; the sim calls it
// from the world's thread. Driving loop for deliveries (see DeliverEvents below):
//   lock; state.OnInput(...); unlock; DeliverEvents(lock, state, connection);
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connection.h"

namespace netlayer {

struct ConnectionLimits {
  // Bytes written but not yet sent. A Write that would exceed it fails ResourceExhausted.
  size_t max_output_bytes = size_t{64} << 20;
  // Bytes received but not yet delivered (no handler set, or a slow handler). Above it the
  // backend stops reading (WantRead() is false): back-pressure to the peer, never unbounded
  // memory.
  size_t max_pending_input_bytes = size_t{16} << 20;
};

class ConnectionState {
 public:
  enum class Phase {
    kOpen,     // reading and writing
    kClosing,  // closed locally; flushing output, then shut down
    kClosed,   // nothing more is sent or delivered (but a queued close notification)
  };

  // One event for the handler. `handler` is the handler it goes to (a snapshot, so the driver
  // can call it without the lock). `close` is set for the close notification; otherwise the
  // event is `input`.
  struct Delivery {
    std::shared_ptr<ConnectionHandler> handler;
    std::string input;
    std::optional<CloseReason> close;
  };

  explicit ConnectionState(ConnectionLimits limits = {});

  Phase phase() const { return phase_; }
  bool IsOpen() const { return phase_ == Phase::kOpen; }
  const ConnectionLimits& limits() const { return limits_; }

  // ---- Application side ----

  // Swaps the handler. If the new one is set and events wait, the caller should then try
  // ClaimDelivery() and deliver.
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler> handler);

  // Appends the pieces to the output queue, all or nothing.
  // FailedPrecondition after Close() or a remote close; ResourceExhausted over the bound.
  absl::Status Write(absl::Span<const std::string_view> pieces);

  // Local close. Returns true if the driver must shut the stream down now (nothing left to
  // flush); false if it is already closed or must first flush (then ConsumeOutput returns true
  // when the last byte is sent). Undelivered events are dropped, including a remote close that
  // was seen but not yet delivered: after Close() the handler is called no more. Idempotent.
  bool Close();

  // ---- Network side ----

  // Bytes arrived. If they can go straight to the handler (it is set, nothing is queued and no
  // one is delivering), returns that handler with the delivery claim taken: the caller calls
  // handler->InputData(data) without its lock, then drains with DeliverEvents. Otherwise the
  // bytes are copied into the queue and nullptr is returned. Input after a close is discarded.
  std::shared_ptr<ConnectionHandler> OnInput(std::string_view data);

  // The stream ended: end of file from the peer, a reset, or an error. The output queue is
  // discarded; the close notification is queued (once) unless the connection was closed
  // locally. Returns true if the driver must release the stream's resources now (it was not
  // already closed).
  bool OnRemoteClosed(CloseReason reason);

  // ---- Output ----

  size_t output_bytes() const { return output_bytes_; }
  bool HasOutput() const { return output_bytes_ > 0; }
  // Fills `out` with views of the first queued bytes, in order (at most out.size() pieces);
  // returns how many were filled. The views stay valid until ConsumeOutput or Close/
  // OnRemoteClosed discard them; only the single sender may hold them.
  size_t PeekOutput(absl::Span<std::string_view> out);
  // `n` bytes from the front were sent. Returns true if this finished a flush after Close():
  // the driver must now shut the stream down.
  bool ConsumeOutput(size_t n);

  // ---- Delivery ----

  // Back-pressure on input: false while undelivered input is at or over its bound.
  bool WantRead() const;
  // True if the caller is now the (single) deliverer and must call NextDelivery until it
  // returns nullopt. False if someone else is delivering or there is nothing to deliver.
  bool ClaimDelivery();
  // Moves the next event for the claimed deliverer into `out` and returns true; or returns false
  // and releases the claim.
  bool NextDelivery(Delivery& out);
  bool delivering() const { return delivering_; }
  size_t pending_input_bytes() const { return pending_input_bytes_; }

 private:
  struct Event {
    std::optional<std::string> input;
    std::optional<CloseReason> close;
  };

  bool HasDeliverable() const { return handler_ != nullptr && !events_.empty(); }
  void DiscardOutput();

  ConnectionLimits limits_;
  Phase phase_ = Phase::kOpen;
  bool closed_locally_ = false;
  bool close_queued_ = false;  // the one close notification has been queued
  std::shared_ptr<ConnectionHandler> handler_;
  std::deque<Event> events_;
  size_t pending_input_bytes_ = 0;
  bool delivering_ = false;
  // Output: whole chunks; the first one partly sent up to output_offset_.
  std::deque<std::string> output_;
  size_t output_offset_ = 0;
  size_t output_bytes_ = 0;
  // The first pinned_chunks_ chunks are viewed by the sender (PeekOutput) until ConsumeOutput:
  // they are neither appended to nor freed.
  size_t pinned_chunks_ = 0;
};

// The one delivery loop both backends use. REQUIRES: `lock` is locked. Delivers every deliverable
// event to its handler with `lock` unlocked around each call, in order, if this thread can claim
// delivery (otherwise returns at once: the claimant will deliver). Returns with `lock` locked.
// `Lock` is std::unique_lock<std::mutex> on posix and a no-op lock in the simulator.
template <typename Lock>
void DrainClaimedDeliveries(Lock& lock, ConnectionState& state, Connection& connection) {
  ConnectionState::Delivery d;
  while (state.NextDelivery(d)) {
    lock.unlock();
    if (d.close) {
      d.handler->ConnectionClosed(connection, *d.close);
    } else {
      d.handler->InputData(connection, d.input);
    }
    d.handler.reset();  // drop the handler snapshot outside the lock
    lock.lock();
  }
}

template <typename Lock>
void DeliverEvents(Lock& lock, ConnectionState& state, Connection& connection) {
  if (state.ClaimDelivery()) DrainClaimedDeliveries(lock, state, connection);
}

// Hands received bytes to the state machine and delivers: straight from the caller's buffer when
// nothing is queued (no copy), else through the queue. REQUIRES and ensures: `lock` locked.
template <typename Lock>
void ReceiveInput(Lock& lock, ConnectionState& state, Connection& connection,
                  std::string_view data) {
  if (std::shared_ptr<ConnectionHandler> direct = state.OnInput(data)) {
    lock.unlock();
    direct->InputData(connection, data);
    direct.reset();
    lock.lock();
    DrainClaimedDeliveries(lock, state, connection);
  } else {
    DeliverEvents(lock, state, connection);
  }
}

// A lock that does nothing, for single-threaded drivers (the simulator).
struct NoLock {
  void lock() {}
  void unlock() {}
};

}  // namespace netlayer
