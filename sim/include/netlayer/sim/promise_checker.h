// PromiseChecker: watches one stream (its two ends) for a broken connection promise
// (connection.h, DESIGN.md §3) while it runs, and reports the first one.
//
// The world makes one per simulated stream (WorldOptions::check_promises, on by default), so
// every run, every scenario and every user's own test enforces the promises, not only the
// contract suite (DESIGN.md §11). It is fed by the backend at the points where the promises live:
//   - OnWrite: a Write on end `side` returned (accepted bytes are the reference stream);
//   - OnReceived: bytes from the wire were handed to end `side`'s connection state;
//   - OnBroken: the stream broke (reset): bytes not yet received are lost, legitimately;
//   - OnWriterDied: end `side`'s process died: bytes still in its output queue are lost;
//   - OnLocalClose: Close() or Abort() on end `side` (no handler call may follow);
//   - Wrap: SetHandler on end `side` installs a checking handler around the application's, which
//     sees every InputData and ConnectionClosed before passing it on; Begin/EndSetHandler bracket
//     the delivery of events queued before the handler was set.
// What it checks, and the promise number it reports:
//   1  a close delivered while input received before it was not yet delivered; bytes lost or out
//      of order while delivering input queued before the handler was set;
//   2  a handler entered while a handler call for the same end is still running;
//   3  bytes the peer's writes accepted missing from what the handlers got (skipped), or a
//      graceful end of stream (kPeerClosed) delivered before all of them arrived;
//   4  ConnectionClosed delivered twice, or any handler call after ConnectionClosed or after a
//      local Close()/Abort();
//   5  a Write accepted on an end that was not open;
//   6  bytes delivered that are not the next bytes the peer wrote (duplicated, reordered, more
//      than were written).
// The byte check is exact and incremental: each direction keeps the bytes its writer's Writes
// accepted only until the reader's handlers got them (so at most what the output queue, the
// network and the pending-input queue hold, each bounded), plus counters; a delivered chunk is
// compared with the front of that buffer. Once the reader closes locally (its input is discarded)
// the direction keeps nothing. After the first violation the checker reports nothing more.
//
// Thread rules: not thread-safe; the world's single thread uses it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/core/connection.h"

namespace netlayer::sim {

class PromiseChecker : public std::enable_shared_from_this<PromiseChecker> {
 public:
  // Called once, with the end whose handler (or write) broke the promise and an Internal status
  // "promise <n> broken on conn#<id> (<name> end): ...".
  using Report = std::function<void(int side, absl::Status why)>;

  // `names`: how each end is called in reports (the world uses its host's name; end 0 connected,
  // end 1 accepted).
  PromiseChecker(uint64_t stream_id, std::array<std::string, 2> names, Report report);
  PromiseChecker(const PromiseChecker&) = delete;
  PromiseChecker& operator=(const PromiseChecker&) = delete;

  // ---- Fed by the backend ----
  // A Write of `pieces` on end `side` returned `status`; `was_open`: the end was open before it.
  void OnWrite(int side, absl::Span<const std::string_view> pieces, const absl::Status& status,
               bool was_open);
  // `n` bytes from the wire were handed to end `side`'s connection state, to be delivered.
  void OnReceived(int side, size_t n);
  // The stream broke: what each end has not yet received is lost.
  void OnBroken();
  // The writer of end `side` died (its process crashed, its host lost power): of the bytes its
  // Writes accepted, only the first `reaches` (those its kernel put on the wire and still
  // delivers) can arrive; the rest died with its output queue, legitimately. A graceful end of
  // stream after them is then complete. May be called again with a smaller count (the kernel
  // later aborted the direction).
  void OnWriterDied(int side, uint64_t reaches);
  // Close() or Abort() was called on end `side`.
  void OnLocalClose(int side);
  // SetHandler on end `side`: the handler to install instead of `handler` (a checking handler
  // around it; nullptr stays nullptr; an already checking handler is unwrapped first).
  std::shared_ptr<ConnectionHandler> Wrap(int side, std::shared_ptr<ConnectionHandler> handler);
  // The application's handler inside a checking one (any other handler is returned as is).
  static std::shared_ptr<ConnectionHandler> Unwrap(std::shared_ptr<ConnectionHandler> handler);
  // Around SetHandler's delivery of the events that waited for a handler.
  void BeginSetHandler(int side);
  void EndSetHandler(int side);

  // ---- Introspection ----
  uint64_t stream_id() const { return stream_id_; }
  // OK, or the violation reported.
  const absl::Status& status() const { return status_; }
  // Bytes end `side` wrote (accepted) / its peer's handlers got / the buffer keeps for the check.
  uint64_t accepted(int side) const { return dir_[side].accepted; }
  uint64_t delivered(int side) const { return dir_[side].delivered; }
  size_t kept_bytes(int side) const { return dir_[side].kept.size() - dir_[side].kept_offset; }

 private:
  class CheckingHandler;

  // Bytes from end d to end 1 - d.
  struct Direction {
    uint64_t accepted = 0;   // bytes end d's Writes accepted
    uint64_t received = 0;   // bytes end 1 - d's state got from the wire
    uint64_t delivered = 0;  // bytes end 1 - d's handlers got
    // accepted bytes [delivered, accepted), while tracking; limited to `received` once broken.
    std::string kept;
    size_t kept_offset = 0;
    bool tracking = true;  // false once the reader closed locally: nothing more is kept
    bool broken = false;   // the stream broke: nothing beyond `received` will arrive
  };
  struct End {
    bool in_call = false;
    bool closed_locally = false;
    bool close_delivered = false;
    int set_handler_depth = 0;
  };

  // Handler calls, checked then passed on by CheckingHandler.
  void BeforeInput(int side, std::string_view data);
  void BeforeClose(int side, const CloseReason& reason);
  // Checks that a handler call on `side` is allowed at all (promises 2 and 4).
  bool CheckCall(int side, const char* what);
  void Fail(int side, int promise, std::string what);
  void Drop(Direction& d);
  std::string Name(int side) const;

  uint64_t stream_id_;
  std::array<std::string, 2> names_;
  Report report_;
  absl::Status status_;
  std::array<Direction, 2> dir_;
  std::array<End, 2> end_;
};

}  // namespace netlayer::sim
