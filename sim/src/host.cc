#include "host.h"

#include "connector.h"
#include "listener.h"
#include "netlayer/core/assert.h"
#include "world_parts.h"

namespace netlayer::sim {

Host::Host() = default;
Host::~Host() = default;
Host::Host(Host&&) noexcept = default;
Host& Host::operator=(Host&&) noexcept = default;

bool SimNotification::WaitUntil(absl::Time deadline) {
  if (notified_) return true;
  WorldParts* w = *world_;
  if (w == nullptr) return false;
  return w->loop.RunUntil([this]() { return notified_; }, deadline);
}

namespace {
__extension__ typedef __int128 Nanos;  // products of nanoseconds and ppb
constexpr Nanos kBillion = 1'000'000'000;
// About 290 years: beyond it a time is "never".
constexpr int64_t kFar = int64_t{1} << 62;
}  // namespace

absl::Time HostClock::Local(absl::Time world) const {
  if (!skewed) return world;
  NETLAYER_ASSERT(world >= anchor_world, "a host clock is read at or after its anchor");
  if (world == absl::InfiniteFuture()) return world;
  const Nanos e = absl::ToInt64Nanoseconds(world - anchor_world);
  const Nanos local = e + e * drift_ppb / kBillion;
  return anchor_local + absl::Nanoseconds(static_cast<int64_t>(local));
}

absl::Time HostClock::WorldTime(absl::Time local) const {
  if (!skewed) return local;
  if (local <= anchor_local) return anchor_world;
  const absl::Duration ahead = local - anchor_local;
  if (ahead >= absl::Nanoseconds(kFar)) return absl::InfiniteFuture();
  const Nanos target = absl::ToInt64Nanoseconds(ahead);
  auto f = [this](Nanos e) { return e + e * drift_ppb / kBillion; };
  Nanos e = target * kBillion / (kBillion + drift_ppb);
  while (f(e) < target) ++e;
  while (e > 0 && f(e - 1) >= target) --e;
  const absl::Time world = anchor_world + absl::Nanoseconds(static_cast<int64_t>(e));
  // The contract every host timer relies on: the first world tick at which the clock reads
  // `local` or later, so a timer fires neither before its host-time deadline nor after that tick.
  NETLAYER_ASSERT(Local(world) >= local, "a host timer never fires before its host-clock time");
  NETLAYER_ASSERT(world == anchor_world || Local(world - absl::Nanoseconds(1)) < local,
                  "a host timer fires at the first world tick its clock reaches its time");
  NETLAYER_ASSERT(Local(world) - local <= kHostTimerSlack,
                  "a host clock reads at most kHostTimerSlack past a time it reaches");
  return world;
}

absl::Time HostEnv::Now() const { return world_->host(host_).clock.Local(world_->loop.now); }

TimerId HostEnv::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  const HostClock& clock = world_->host(host_).clock;
  // The world time at which this host's clock reaches `when`. The host-clock time is kept even
  // while the clock is the world's, so a later SetClock or step moves the timer with the clock
  // (a timer never fires after the first world tick at which its host's clock reaches it).
  const absl::Time at = when <= Now() ? world_->loop.now : clock.WorldTime(when);
  return world_->loop.Schedule(at, host_, true, std::move(fn), when);
}

bool HostEnv::CancelTimer(TimerId id) {
  // An Env cancels only timers: an id naming one of the world's own events is not its to cancel.
  const auto* event = world_->loop.events.Find(id);
  if (event != nullptr) return event->timer && world_->loop.Cancel(id);
  // A timer held back while the host is frozen.
  std::deque<Host::Held>& held = world_->host(host_).held;
  for (auto it = held.begin(); it != held.end(); ++it) {
    if (it->id == id && it->event.timer) {
      Host::Held doomed = std::move(*it);
      held.erase(it);
      return true;  // `doomed` dies here, with the list consistent
    }
  }
  return false;
}

std::unique_ptr<Notification> HostEnv::NewNotification() {
  return std::make_unique<SimNotification>(world_->ref);
}

}  // namespace netlayer::sim
