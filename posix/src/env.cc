#include "netlayer/posix/env.h"

#include <sys/random.h>

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

void PosixNotification::Notify() {
  // Notify under the lock: a waiter that sees the flag may destroy the notification as soon as
  // it can take the lock, so the condition variable must not be touched after unlocking.
  MutexLock lock(mu_);
  notified_ = true;
  cv_.NotifyAll();
}

bool PosixNotification::HasBeenNotified() const {
  MutexLock lock(mu_);
  return notified_;
}

bool PosixNotification::WaitUntil(absl::Time deadline) {
  MutexLock lock(mu_);
  return cv_.WaitUntil(lock, deadline, [this] {
    mu_.AssertHeld();
    return notified_;
  });
}

std::unique_ptr<Generator> NewOsSeededGenerator() {
  uint64_t seed = 0;
  ssize_t got = ::getrandom(&seed, sizeof seed, 0);
  if (got != static_cast<ssize_t>(sizeof seed)) {
    // Fall back on the clock: jitter needs spread, not secrecy.
    seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  }
  return std::make_unique<Xoshiro256>(seed);
}

}  // namespace netlayer::posix
