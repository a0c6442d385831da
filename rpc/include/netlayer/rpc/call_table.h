// CallTable: the rpc client's call bookkeeping as a sans-I/O state machine (DESIGN.md §2, §6).
//
// It numbers calls, keeps the calls waiting for an answer and the messages waiting for a
// connection (the unsent queue, in order), enforces the bound on both, matches replies to calls
// by id and connection generation, expires calls at their deadline, and fails every affected
// call when a connection is lost or the client closes. It holds no lock, reads no clock (the
// time is an argument), arms no timer (it stores the driver's TimerId so the driver can cancel
// it) and sends nothing: it says what to send, and returns the completions the driver must run
// (outside its lock, in order).
//
// The link to the server, from the table's point of view:
//   kWaiting   no usable connection: new calls and one-way calls wait in the unsent queue
//   kFlushing  a connection completed its handshake; the driver is sending the queue
//              (TakeUnsent), and new messages still queue behind it, so order is kept
//   kOpen      new calls are sent at once by their caller (StartCall says so)
//   kClosed    every call fails at once with closed_status(); nothing waits any more
// Transitions: kWaiting -BeginFlush-> kFlushing -TakeUnsent (queue empty)-> kOpen
//              -ConnectionLost-> kWaiting;  any -Close-> kClosed (final).
//
// Invariants (asserted): ids are unique and increase; a call is pending at most once and
// completes at most once; a call queued as unsent has generation 0; the bound counts pending
// calls plus queued one-way calls and is never exceeded.
//
// Thread rules: not thread-safe; the driver (rpc::Client) serialises calls with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/rpc/envelope.h"

namespace netlayer::rpc {

using CallResult = absl::StatusOr<std::string>;
using CallCallback = absl::AnyInvocable<void(CallResult) &&>;

// A call or one-way call to send: from the unsent queue (TakeUnsent).
struct OutgoingMessage {
  MessageKind kind = MessageKind::kCall;  // kCall or kOneWay
  uint64_t id = 0;                        // 0 for one-way calls
  std::string method;
  std::string payload;
};

class CallTable {
 public:
  enum class Link { kWaiting, kFlushing, kOpen, kClosed };

  // A finished call: the driver cancels `timer` (if any) and runs `done` with `result`.
  struct Completion {
    uint64_t id = 0;
    CallCallback done;
    std::optional<TimerId> timer;
    CallResult result;
    std::string method;  // for the stats
    absl::Time started;  // StartCall's `now`
  };
  using Completions = std::vector<Completion>;

  // A call that StartCall accepted. `send_now`: the link is open and the caller sends the call
  // now, on connection generation(); otherwise it waits in the unsent queue.
  struct Started {
    uint64_t id = 0;
    bool send_now = false;
  };

  // REQUIRES: max_pending > 0 (asserted; ValidateClientOptions checks it first).
  explicit CallTable(size_t max_pending);

  // A new call. On success `done` is moved into the table. Errors (nothing recorded, `done`
  // untouched): InvalidArgument for a method name that is empty or over kMaxMethodLength;
  // closed_status() once closed; ResourceExhausted past the bound; DeadlineExceeded if
  // `deadline` <= `now`.
  absl::StatusOr<Started> StartCall(std::string_view method, std::string_view payload,
                                    absl::Time deadline, absl::Time now, CallCallback& done);
  // Remembers the deadline timer of a pending call (ignored if it already completed).
  void SetTimer(uint64_t id, TimerId timer);
  // A one-way call: true if the caller sends it now, false if it was queued. Errors as
  // StartCall (no deadline).
  absl::StatusOr<bool> StartOneWay(std::string_view method, std::string_view payload);
  // A heartbeat id (same counter as calls: ids are never reused).
  uint64_t NextId();

  // Connection `generation` (> the previous one) completed its handshake: kWaiting -> kFlushing.
  // REQUIRES: link() == kWaiting.
  void BeginFlush(uint64_t generation);
  // While flushing `generation`: the queued messages in order, calls among them now counted as
  // sent on it (expired calls are skipped). When the queue is empty the link becomes kOpen and
  // the result is empty. Empty, with no change, when not flushing `generation` (it was lost).
  std::vector<OutgoingMessage> TakeUnsent(uint64_t generation);
  // The send of call `id` failed with `status`: its completion, if it is still pending.
  std::optional<Completion> SendFailed(uint64_t id, const absl::Status& status);

  // A reply or error reply to `id` arrived on connection `generation`: the call's completion,
  // or nullopt for a call that is unknown, expired, or was not sent on that connection.
  std::optional<Completion> OnReply(uint64_t generation, uint64_t id, CallResult result);
  // Call `id` reached its deadline: its completion (DeadlineExceeded naming the method and id,
  // and "while waiting for a connection (last error: `last_error`)" if it was never sent).
  std::optional<Completion> Expire(uint64_t id, const absl::Status& last_error);

  // Connection `generation` is gone: every call sent on it fails with `status` (kUnavailable:
  // the close reason). Calls still queued keep waiting for the next connection; link -> kWaiting
  // (unless closed). Nothing happens for another generation. `planted_keep_calls` is a test hook
  // (rpc/src/testing_plants.h), false outside planted-bug runs: the calls sent on the lost
  // connection are kept pending (they end only at their deadline).
  Completions ConnectionLost(uint64_t generation, const absl::Status& status,
                             bool planted_keep_calls = false);
  // Final: every pending call fails with `status`, queued one-way calls are dropped, and later
  // calls fail with it (closed_status()). A second Close changes nothing and returns nothing.
  // REQUIRES: !status.ok().
  Completions Close(absl::Status status);

  Link link() const { return link_; }
  uint64_t generation() const { return generation_; }
  // Calls waiting for an answer or for a connection.
  size_t pending() const { return pending_.size(); }
  // Messages in the unsent queue (including calls that have expired meanwhile).
  size_t unsent() const { return unsent_.size(); }
  const absl::Status& closed_status() const { return closed_status_; }

 private:
  struct PendingCall {
    std::string method;
    CallCallback done;
    std::optional<TimerId> timer;
    uint64_t generation = 0;  // the connection it was sent on; 0 while unsent
    absl::Time started;
  };

  absl::Status Admit(std::string_view method) const;
  Completion Finish(std::map<uint64_t, PendingCall>::iterator it, CallResult result);
  void CheckInvariants() const;

  const size_t max_pending_;
  Link link_ = Link::kWaiting;
  uint64_t generation_ = 0;  // the connection being flushed or open; the last one otherwise
  uint64_t next_id_ = 1;
  std::map<uint64_t, PendingCall> pending_;  // by id: ordered, so completions are in id order
  std::deque<OutgoingMessage> unsent_;
  size_t unsent_one_way_ = 0;
  absl::Status closed_status_;
};

const char* LinkName(CallTable::Link link);

}  // namespace netlayer::rpc
