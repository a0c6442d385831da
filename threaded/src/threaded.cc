#include "netlayer/threaded/threaded.h"

#include <sys/random.h>

#include <cstdint>

namespace netlayer::threaded {

void ThreadNotification::Notify() {
  // Notify under the lock: a waiter that sees the flag may destroy the notification as soon as
  // it can take the lock, so the condition variable must not be touched after unlocking.
  std::lock_guard<std::mutex> lock(mu_);
  notified_ = true;
  cv_.notify_all();
}

bool ThreadNotification::HasBeenNotified() const {
  std::lock_guard<std::mutex> lock(mu_);
  return notified_;
}

bool ThreadNotification::WaitUntil(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return WaitUntilDeadline(cv_, lock, deadline, [this] { return notified_; });
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

}  // namespace netlayer::threaded
