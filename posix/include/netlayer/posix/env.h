// PosixEnv: the real clock, a timer thread and condition-variable notifications.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/core/generator.h"
#include "netlayer/core/mutex.h"
#include "netlayer/core/timer_queue.h"
#include "netlayer/threaded/file_system.h"
#include "netlayer/threaded/threaded.h"

namespace netlayer::posix {

// A Notification with a mutex and a condition variable; deadline waits; an OS-seeded generator
// for jitter. Shared with the asio backend (netlayer/threaded/threaded.h).
using PosixNotification = threaded::ThreadNotification;
using threaded::kMaxConditionWait;
using threaded::NewOsSeededGenerator;
using threaded::WaitUntilDeadline;

// A condition variable for a netlayer::MutexLock (core/mutex.h, checked by -Wthread-safety).
// Waits return with the lock held.
class CondVar {
 public:
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }
  void Wait(MutexLock& lock) { cv_.wait(lock.native()); }
  // Until `deadline` or a notification (or a spurious wake-up, after at most kMaxConditionWait).
  void WaitUntil(MutexLock& lock, absl::Time deadline) {
    const absl::Time now = absl::Now();
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(lock.native());
    } else if (deadline > now) {
      cv_.wait_for(lock.native(),
                   absl::ToChronoNanoseconds(std::min(deadline - now, kMaxConditionWait)));
    }
  }
  // Until `done()` (run with the lock held: call the mutex's AssertHeld() in it) or `deadline`;
  // returns done().
  template <typename Pred>
  bool WaitUntil(MutexLock& lock, absl::Time deadline, Pred done) {
    return WaitUntilDeadline(cv_, lock.native(), deadline, std::move(done));
  }

 private:
  std::condition_variable cv_;
};

// Thread rules: every method may be called from any thread, including from a timer callback.
// Timer callbacks run one at a time on the Env's timer thread (started on the first RunAt),
// with no lock held. The destructor cancels pending timers and joins the timer thread; it must
// not run on the timer thread itself (from a timer callback); RunAt during or after destruction
// schedules nothing and returns 0 (no timer's id).
// Bound: at most TimerQueue::kDefaultMaxPending timers pending at once; RunAt past it stops the
// process with a clear message (a timer leak: a timer that silently never ran would break every
// deadline built on it).
class PosixEnv final : public Env {
 public:
  PosixEnv() = default;
  ~PosixEnv() override;
  PosixEnv(const PosixEnv&) = delete;
  PosixEnv& operator=(const PosixEnv&) = delete;

  absl::Time Now() const override { return absl::Now(); }
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;
  // The real file system (threaded/file_system.h: PosixFileSystem::Default()).
  FileSystem& fs() override { return threaded::PosixFileSystem::Default(); }

  // The process-wide Env (never destroyed).
  static PosixEnv& Default();

 private:
  void TimerLoop();

  Mutex mu_;
  CondVar cv_;
  // Timers due at the same time run in the order they were set.
  TimerQueue timers_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);  // started by the first RunAt
};

}  // namespace netlayer::posix
