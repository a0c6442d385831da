// The Runtime's Env: a core TimerQueue and one steady_timer armed at its earliest deadline.
#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"
#include "netlayer/core/assert.h"
#include "netlayer/threaded/threaded.h"
#include "runtime_impl.h"

namespace netlayer::asio::internal {

absl::Time AsioEnv::Now() const { return absl::Now(); }

TimerId AsioEnv::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return 0;  // the Runtime is going away: the timer never runs (0 is no timer's id)
  absl::StatusOr<TimerId> id = timers_.Add(when, std::move(fn));
  NETLAYER_ASSERT(id.ok(), "asio Env: too many timers pending (TimerQueue bound): a timer leak");
  Arm();
  return *id;
}

bool AsioEnv::CancelTimer(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.Cancel(id);  // the steady_timer stays armed; an early wake-up finds nothing due
}

std::unique_ptr<Notification> AsioEnv::NewNotification() {
  return std::make_unique<threaded::ThreadNotification>();
}

void AsioEnv::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  timers_.Clear();
  ++generation_;
  armed_for_.reset();
  timer_.cancel();
}

void AsioEnv::Arm() {
  if (running_ || stopped_) return;  // the running thread re-arms when it is done
  const std::optional<absl::Time> next = timers_.NextDeadline();
  if (!next.has_value() || (armed_for_.has_value() && *armed_for_ <= *next)) return;
  armed_for_ = *next;
  const uint64_t generation = ++generation_;
  // At most kMaxConditionWait at a time: a deadline in the far future must not overflow.
  const absl::Duration wait =
      std::clamp(*next - absl::Now(), absl::ZeroDuration(), threaded::kMaxConditionWait);
  timer_.expires_after(absl::ToChronoNanoseconds(wait));  // cancels an earlier wait
  timer_.async_wait([this, generation](const std::error_code&) { OnFired(generation); });
}

void AsioEnv::OnFired(uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  if (generation != generation_ || stopped_) return;  // re-armed or cancelled meanwhile
  armed_for_.reset();
  running_ = true;
  while (!stopped_) {
    std::optional<TimerQueue::Entry> due = timers_.PopDue(absl::Now());
    if (!due.has_value()) break;
    lock.unlock();
    std::move(due->value)();
    due.reset();  // destroy captured state outside the lock
    lock.lock();
  }
  running_ = false;
  Arm();
}

}  // namespace netlayer::asio::internal
