#include "sim_connection.h"

#include "world_impl.h"

namespace netlayer::sim {

std::shared_ptr<ConnectionHandler> SimConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  if (checker_ == nullptr) {
    std::shared_ptr<ConnectionHandler> old = state_.SetHandler(std::move(handler));
    if (World::Impl* w = *world_) w->net.DeliverPending(shared_from_this());
    return old;
  }
  // The application's handler goes in wrapped by the promise checker; it gets its own back.
  std::shared_ptr<ConnectionHandler> old =
      state_.SetHandler(checker_->Wrap(side_, std::move(handler)));
  if (World::Impl* w = *world_) {
    checker_->BeginSetHandler(side_);
    w->net.DeliverPending(shared_from_this());
    checker_->EndSetHandler(side_);
  }
  return PromiseChecker::Unwrap(std::move(old));
}

absl::Status SimConnection::WriteV(absl::Span<const std::string_view> pieces) {
  World::Impl* w = *world_;
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
  World::Impl* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  const bool was_open = state_.phase() == ConnectionState::Phase::kOpen;
  ConnectionState::Actions a = state_.Close(w != nullptr ? w->loop.now : absl::InfinitePast());
  if (w == nullptr) return;
  if (was_open) {
    w->net.OnLocalClose(*this, a);
  } else {
    w->net.Carry(*this, a);
  }
}

void SimConnection::Abort() {
  World::Impl* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  ConnectionState::Actions a = state_.Abort();
  if (w != nullptr) w->net.Carry(*this, a);
}

}  // namespace netlayer::sim
