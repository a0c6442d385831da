#include "sim_connection.h"

#include "netlayer/core/assert.h"
#include "world_parts.h"

namespace netlayer::sim {

const char* SimConnection::FateName(Fate f) {
  switch (f) {
    case Fate::kLive:
      return "live";
    case Fate::kClosedByKernel:
      return "closed by its kernel";
    case Fate::kForgotten:
      return "forgotten";
    case Fate::kSilent:
      return "silent";
  }
  return "?";
}

void SimConnection::set_fate(Fate next) {
  const bool allowed =
      next == fate_ ||
      (fate_ == Fate::kLive && next != Fate::kLive) ||
      (fate_ == Fate::kClosedByKernel && next == Fate::kForgotten) ||
      (fate_ == Fate::kSilent && next == Fate::kForgotten);
  NETLAYER_ASSERT(allowed, "a sim connection end's fate moves only as sim_connection.h lists");
  fate_ = next;
  CheckInvariants();
}

void SimConnection::CheckInvariants() const {
  NETLAYER_ASSERT(side_ == 0 || side_ == 1, "a sim connection end is side 0 or 1");
  NETLAYER_ASSERT(
      link_ == nullptr || (link_->end[side_].get() == this && link_->host[side_] == host_),
      "a sim connection end in the network is its link's end, on its link's host");
  // A dead end has no process behind it: its state is closed.
  NETLAYER_ASSERT(fate_ == Fate::kLive || state_.phase() == ConnectionState::Phase::kClosed,
                  "an end without a process is closed");
  NETLAYER_ASSERT(!closed_by_application_ || state_.phase() != ConnectionState::Phase::kOpen,
                  "an end its application closed is not open");
}

std::shared_ptr<ConnectionHandler> SimConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  if (checker_ == nullptr) {
    std::shared_ptr<ConnectionHandler> old = state_.SetHandler(std::move(handler));
    if (WorldParts* w = *world_) w->net.DeliverPending(shared_from_this());
    return old;
  }
  // The application's handler goes in wrapped by the promise checker; it gets its own back.
  std::shared_ptr<ConnectionHandler> old =
      state_.SetHandler(checker_->Wrap(side_, std::move(handler)));
  if (WorldParts* w = *world_) {
    checker_->BeginSetHandler(side_);
    w->net.DeliverPending(shared_from_this());
    checker_->EndSetHandler(side_);
  }
  return PromiseChecker::Unwrap(std::move(old));
}

absl::Status SimConnection::WriteV(absl::Span<const std::string_view> pieces) {
  WorldParts* w = *world_;
  if (w == nullptr) return absl::FailedPreconditionError("write after the simulation ended");
  const bool was_open = state_.IsOpen();
  ConnectionState::WriteStart start = state_.BeginWrite(pieces);
  if (checker_ != nullptr) checker_->OnWrite(side_, pieces, start.status, was_open);
  if (start.send_direct) {
    w->net.DirectSend(*this, pieces);
  } else {
    w->net.Carry(*this, start.actions);
  }
  return start.status;
}

void SimConnection::Close() {
  // Always tell the state: after a remote close seen but not yet delivered (a reset, an end of
  // stream queued for a handler not yet set), Close() still drops the queued input and close
  // notification (connection.h: no ConnectionClosed after a local Close). Idempotent.
  WorldParts* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  const bool was_open = state_.phase() == ConnectionState::Phase::kOpen;
  ConnectionState::Actions a = state_.Close(w != nullptr ? w->loop.now : absl::InfinitePast());
  // Released when this returns, after the network has taken the close's actions.
  std::shared_ptr<ConnectionHandler> released = ReleaseHandlerAfterLocalClose();
  if (w == nullptr) return;
  if (was_open) {
    w->net.OnLocalClose(*this, a);
  } else {
    w->net.Carry(*this, a);
  }
  CheckInvariants();
}

void SimConnection::Abort() {
  WorldParts* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  ConnectionState::Actions a = state_.Abort();
  std::shared_ptr<ConnectionHandler> released = ReleaseHandlerAfterLocalClose();
  if (w != nullptr) w->net.Carry(*this, a);
  CheckInvariants();
}

std::shared_ptr<ConnectionHandler> SimConnection::ReleaseHandlerAfterLocalClose() {
  // After a local close the handler is called no more (connection.h, promise 4), but this end
  // can stay in the network long after it: its peer has not heard yet (a FIN waiting in a
  // partition) or never will (an RST lost in one, a peer that never reads or writes again). A
  // posix or asio connection lets go of its handler when its handle goes; the application's
  // handle here is this end itself, so it lets go now. What the handler holds goes with it
  // (an smac partial frame's buffer and its memory-budget charge: hostile-peers seeds 152, 171).
  // A delivery running now keeps its own reference and ends after its current call. The planted
  // bug close-after-local-close keeps the handler subscribed on purpose.
  closed_by_application_ = true;
  if (state_.limits().planted_close_after_local_close) return nullptr;
  return state_.SetHandler(nullptr);
}

}  // namespace netlayer::sim
