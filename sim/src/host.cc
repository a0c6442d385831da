#include "host.h"

#include "connector.h"
#include "listener.h"
#include "world_impl.h"

namespace netlayer::sim {

Host::Host() = default;
Host::~Host() = default;
Host::Host(Host&&) noexcept = default;
Host& Host::operator=(Host&&) noexcept = default;

bool SimNotification::WaitUntil(absl::Time deadline) {
  if (notified_) return true;
  World::Impl* w = *world_;
  if (w == nullptr) return false;
  return w->loop.RunUntil([this]() { return notified_; }, deadline);
}

absl::Time HostEnv::Now() const { return world_->loop.now; }

TimerId HostEnv::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  return world_->loop.Schedule(when, host_, true, std::move(fn));
}

bool HostEnv::CancelTimer(TimerId id) {
  // An Env cancels only timers: an id naming one of the world's own events is not its to cancel.
  const auto* event = world_->loop.events.Find(id);
  return event != nullptr && event->timer && world_->loop.Cancel(id);
}

std::unique_ptr<Notification> HostEnv::NewNotification() {
  return std::make_unique<SimNotification>(world_->ref);
}

}  // namespace netlayer::sim
