// DeliveryQueue: the one place where events meet a handler, for bytes (ConnectionState) and for
// messages (smac::MessageConnection). It keeps promises 1, 2 and 4 of connection.h for whatever
// it carries:
//   1 (queue until a handler)  -> events wait in one FIFO and leave it only while a handler is set.
//   2 (never re-entered)       -> the delivery claim: one deliverer at a time. Direct delivery
//                                 (ClaimDirect) takes it only when nothing waits and no one
//                                 delivers; otherwise the event is queued and the claimant
//                                 delivers it in turn.
//   4 (closed once, not local) -> a close is queued at most once and is the last event; a local
//                                 close (CloseLocally) drops every queued event, an undelivered
//                                 close included, and accepts nothing after it.
//
// Events are input (a std::string: bytes, or one message) or a close (CloseReason). The user
// supplies the policy: `merge_input_up_to` merges queued input into the last event up to that
// size (a byte stream, where promise 6 allows merging) or never (0: messages); `max_queued_bytes`
// is the byte bound, reported by below_bound() (back-pressure: stop reading) and HasRoomFor()
// (a hard bound: refuse, and close). The queue itself never refuses input for its size.
//
// The drain loop (Deliver / DrainClaimed / DeliverDirect) is templated on the caller's lock:
// std::unique_lock<std::mutex> on posix and smac, NoLock in the simulator. It calls the handler
// with the lock released, one event at a time, in order, and returns with the lock held. The
// `dispatch` argument maps an event onto the handler's methods: it must be callable as
// dispatch(Handler&, std::string_view input) and dispatch(Handler&, const CloseReason&).
//
// Thread rules: not thread-safe; the caller's lock guards it (REQUIRES: held for every method,
// and on entry to the drain loop).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/close_reason.h"

namespace netlayer {

// A lock that does nothing, for single-threaded drivers (the simulator).
struct NoLock {
  void lock() {}
  void unlock() {}
};

template <typename Handler>
class DeliveryQueue {
 public:
  struct Policy {
    // The byte bound on queued input (see below_bound and HasRoomFor). Must be positive.
    size_t max_queued_bytes = size_t{16} << 20;
    // Queued input is appended to the last queued input while the result stays within this size.
    // 0: never merge, every input is an event of its own (messages, including empty ones).
    size_t merge_input_up_to = 0;
  };

  // One event for the handler. `handler` is the handler it goes to (a snapshot, so it can be
  // called without the lock). `close` is set for the close notification; otherwise the event is
  // `input`.
  struct Delivery {
    std::shared_ptr<Handler> handler;
    std::string input;
    std::optional<CloseReason> close;
  };

  explicit DeliveryQueue(Policy policy) : policy_(policy) {
    NETLAYER_ASSERT(policy_.max_queued_bytes > 0, "a delivery queue's bound must be positive");
  }
  DeliveryQueue(const DeliveryQueue&) = delete;
  DeliveryQueue& operator=(const DeliveryQueue&) = delete;

  // ---- The handler slot ----

  // Installs `handler` (nullptr removes it) and returns the previous one. Events that wait go to
  // the new handler, in order, at the next Deliver.
  std::shared_ptr<Handler> SetHandler(std::shared_ptr<Handler> handler) {
    std::swap(handler_, handler);
    return handler;
  }
  const std::shared_ptr<Handler>& handler() const { return handler_; }

  // ---- Events ----

  // Direct delivery: if a handler is set, nothing waits, no one delivers and the queue is not
  // closed, takes the delivery claim and returns the handler: the caller hands it the input
  // itself (no copy), then calls DeliverDirect or DrainClaimed. Otherwise returns nullptr and the
  // caller queues the input with Push (or drops it, if closed()).
  std::shared_ptr<Handler> ClaimDirect() {
    if (closed() || handler_ == nullptr || !events_.empty() || delivering_) return nullptr;
    delivering_ = true;
    return handler_;
  }

  // Queues input at the back (merged into the last input as the policy allows). If `owned` is
  // set it holds the same bytes as `input` and may be moved from instead of copying them. Dropped,
  // with false, once closed().
  bool Push(std::string_view input, std::string* owned = nullptr) {
    const size_t n = input.size();
    NETLAYER_ASSERT(owned == nullptr || owned->size() == n, "owned input is the input");
    if (closed()) return false;
    if (CanMerge(n)) {
      events_.back().input->append(input);
    } else if (owned != nullptr) {
      events_.push_back(Event{std::move(*owned), std::nullopt});
    } else {
      events_.push_back(Event{std::string(input), std::nullopt});
    }
    NETLAYER_ASSERT(queued_bytes_ + n >= queued_bytes_, "queued byte count overflows");
    queued_bytes_ += n;  // `input` may view *owned: only its size is used after the move
    return true;
  }

  // Queues the close notification: the last event, at most once. False (nothing queued) if a
  // close was already queued or the queue was closed locally.
  bool PushClose(CloseReason reason) {
    if (closed()) return false;
    close_queued_ = true;
    events_.push_back(Event{std::nullopt, std::move(reason)});
    return true;
  }

  // A local close: drops every queued event (input, and a close not yet delivered: after it the
  // handler hears nothing more) and accepts no event after it. A delivery in progress ends after
  // its current call. Idempotent.
  void CloseLocally() {
    closed_locally_ = true;
    events_.clear();
    queued_bytes_ = 0;
  }

  // A close was queued (or delivered), or the queue was closed locally: no more events.
  bool closed() const { return close_queued_ || closed_locally_; }
  bool closed_locally() const { return closed_locally_; }
  bool close_queued() const { return close_queued_; }

  // ---- The bound ----

  size_t queued_bytes() const { return queued_bytes_; }
  // True once after deliveries brought the queued bytes from the bound back under it (a reader
  // paused on the bound may resume). Clears the flag.
  bool TakeRoomMade() { return std::exchange(room_made_, false); }
  // Back-pressure: false while the queued input is at or over the bound.
  bool below_bound() const { return queued_bytes_ < policy_.max_queued_bytes; }
  // A hard bound: true if `n` more bytes keep the queued input within the bound.
  bool HasRoomFor(size_t n) const {
    return queued_bytes_ <= policy_.max_queued_bytes &&
           n <= policy_.max_queued_bytes - queued_bytes_;
  }
  const Policy& policy() const { return policy_; }

  // ---- The delivery claim ----

  bool delivering() const { return delivering_; }
  bool empty() const { return events_.empty(); }
  // True if the caller is now the (single) deliverer and must call NextDelivery until it returns
  // false. False if someone else is delivering or nothing can be delivered.
  bool ClaimDelivery() {
    if (delivering_ || !HasDeliverable()) return false;
    delivering_ = true;
    return true;
  }
  // REQUIRES: the claim. Moves the next event into `out` and returns true; or returns false and
  // releases the claim (nothing waits, or no handler is set).
  bool NextDelivery(Delivery& out) {
    NETLAYER_ASSERT(delivering_, "NextDelivery is for the claimed deliverer");
    if (!HasDeliverable()) {
      delivering_ = false;
      return false;
    }
    Event& event = events_.front();
    out.handler = handler_;
    out.close = std::move(event.close);
    if (event.input) {
      NETLAYER_ASSERT(queued_bytes_ >= event.input->size(), "queued byte accounting");
      const bool was_full = !below_bound();
      queued_bytes_ -= event.input->size();
      if (was_full && below_bound()) room_made_ = true;
      out.input = std::move(*event.input);
    } else {
      NETLAYER_ASSERT(out.close.has_value(), "an event is input or a close");
      NETLAYER_ASSERT(events_.size() == 1, "the close is the last event");
      out.input.clear();
    }
    events_.pop_front();
    NETLAYER_ASSERT(!events_.empty() || queued_bytes_ == 0, "no queued bytes once all is taken");
    return true;
  }

  // ---- The drain loop ----

  // REQUIRES: `lock` locked and the claim held. Delivers every deliverable event to its handler
  // with `lock` unlocked around each call, in order, then releases the claim. Returns with `lock`
  // locked.
  // (-Wthread-safety cannot follow a lock passed as a template parameter: the three loops that
  // release and retake it are exempt; their callers are checked.)
  template <typename Lock, typename Dispatch>
  void DrainClaimed(Lock& lock, const Dispatch& dispatch) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    NETLAYER_ASSERT(delivering_, "DrainClaimed is for the claimed deliverer");
    Delivery d;
    while (NextDelivery(d)) {
      lock.unlock();
      if (d.close) {
        dispatch(*d.handler, *d.close);
      } else {
        dispatch(*d.handler, std::string_view(d.input));
      }
      d = Delivery{};  // the handler snapshot and the event are released outside the lock
      lock.lock();
    }
  }

  // REQUIRES and ensures: `lock` locked. Delivers what waits if this caller can claim delivery;
  // otherwise returns at once (the claimant delivers it, or the next SetHandler's Deliver does).
  template <typename Lock, typename Dispatch>
  void Deliver(Lock& lock, const Dispatch& dispatch) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (ClaimDelivery()) DrainClaimed(lock, dispatch);
  }

  // REQUIRES and ensures: `lock` locked; `handler` came from ClaimDirect (the claim is held).
  // Hands `input` (the caller's buffer, not copied) to it with `lock` unlocked, then delivers
  // what was queued meanwhile.
  template <typename Lock, typename Dispatch>
  void DeliverDirect(Lock& lock, std::shared_ptr<Handler> handler, std::string_view input,
                     const Dispatch& dispatch) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    NETLAYER_ASSERT(delivering_ && handler != nullptr, "DeliverDirect needs ClaimDirect's claim");
    lock.unlock();
    dispatch(*handler, input);
    handler.reset();  // the snapshot is released outside the lock
    lock.lock();
    DrainClaimed(lock, dispatch);
  }

 private:
  struct Event {
    std::optional<std::string> input;
    std::optional<CloseReason> close;
  };

  bool HasDeliverable() const { return handler_ != nullptr && !events_.empty(); }
  bool CanMerge(size_t n) const {
    return policy_.merge_input_up_to != 0 && !events_.empty() && events_.back().input &&
           events_.back().input->size() + n <= policy_.merge_input_up_to;
  }

  const Policy policy_;
  std::shared_ptr<Handler> handler_;
  std::deque<Event> events_;
  bool room_made_ = false;   // a delivery brought the queue back under its bound
  size_t queued_bytes_ = 0;  // the sum of the queued inputs' sizes
  bool delivering_ = false;  // the delivery claim is held
  bool close_queued_ = false;
  bool closed_locally_ = false;
};

}  // namespace netlayer
