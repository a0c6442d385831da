#include "netlayer/posix/env.h"

#include <algorithm>
#include <optional>

#include "netlayer/core/assert.h"

namespace netlayer::posix {

PosixEnv::~PosixEnv() {
  std::thread thread;
  {
    MutexLock lock(mu_);
    NETLAYER_ASSERT(!thread_.joinable() || thread_.get_id() != std::this_thread::get_id(),
                    "a PosixEnv may not be destroyed by one of its timers");
    stop_ = true;
    timers_.Clear();
    thread = std::move(thread_);
  }
  cv_.NotifyAll();
  if (thread.joinable()) thread.join();
}

PosixEnv& PosixEnv::Default() {
  static PosixEnv* const env = new PosixEnv();
  return *env;
}

TimerId PosixEnv::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  MutexLock lock(mu_);
  if (stop_) return 0;  // being destroyed: the timer never runs (0 is no timer's id)
  absl::StatusOr<TimerId> id = timers_.Add(when, std::move(fn));
  NETLAYER_ASSERT(id.ok(), "PosixEnv: too many timers pending (TimerQueue bound): a timer leak");
  if (!thread_.joinable()) thread_ = std::thread([this] { TimerLoop(); });
  cv_.NotifyAll();
  return *id;
}

bool PosixEnv::CancelTimer(TimerId id) {
  MutexLock lock(mu_);
  return timers_.Cancel(id);
}

std::unique_ptr<Notification> PosixEnv::NewNotification() {
  return std::make_unique<PosixNotification>();
}

void PosixEnv::TimerLoop() {
  MutexLock lock(mu_);
  while (!stop_) {
    const std::optional<absl::Time> next = timers_.NextDeadline();
    if (!next.has_value()) {
      cv_.Wait(lock);
      continue;
    }
    const absl::Time now = absl::Now();
    std::optional<TimerQueue::Entry> due = timers_.PopDue(now);
    if (!due.has_value()) {
      // At most kMaxConditionWait at a time: a timer set for the infinite future must not spin.
      cv_.WaitUntil(lock, *next);
      continue;
    }
    lock.unlock();
    std::move(due->value)();
    due.reset();  // destroy captured state outside the lock
    lock.lock();
  }
}

}  // namespace netlayer::posix
