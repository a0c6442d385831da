// What the threaded backends share (posix/ and asio/ both link it; core/ may not hold it: it
// blocks threads and reads the real clock): a Notification on a mutex and a condition variable,
// a deadline wait on a condition variable, and a generator seeded by the operating system.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/core/generator.h"

namespace netlayer::threaded {

// A Notification with a mutex and a condition variable.
class ThreadNotification final : public Notification {
 public:
  void Notify() override;
  bool HasBeenNotified() const override;
  bool WaitUntil(absl::Time deadline) override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// The longest single condition-variable wait: a wait for a deadline centuries away would
// overflow the clock arithmetic inside wait_for and return at once, turning the wait into a spin.
inline constexpr absl::Duration kMaxConditionWait = absl::Hours(1);

// Waits on `cv` with `lock` until `done()` or `deadline`; returns done(). Spurious wake-ups and
// an infinite or far-off deadline are handled.
template <typename Pred>
bool WaitUntilDeadline(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                       absl::Time deadline, Pred done) {
  while (!done()) {
    if (deadline == absl::InfiniteFuture()) {
      cv.wait(lock);
    } else {
      const absl::Time now = absl::Now();
      if (now >= deadline) return done();
      cv.wait_for(lock, absl::ToChronoNanoseconds(std::min(deadline - now, kMaxConditionWait)));
    }
  }
  return true;
}

// A Xoshiro256 seeded from the operating system (getrandom): for jitter in production.
std::unique_ptr<Generator> NewOsSeededGenerator();

}  // namespace netlayer::threaded
