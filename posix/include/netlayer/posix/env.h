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
#include "netlayer/core/timer_queue.h"
#include "netlayer/threaded/threaded.h"

namespace netlayer::posix {

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

  // The process-wide Env (never destroyed).
  static PosixEnv& Default();

 private:
  void TimerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  // Timers due at the same time run in the order they were set.
  TimerQueue timers_;
  bool stop_ = false;
  std::thread thread_;  // started by the first RunAt
};

// A Notification with a mutex and a condition variable; deadline waits; an OS-seeded generator
// for jitter. Shared with the asio backend (netlayer/threaded/threaded.h).
using PosixNotification = threaded::ThreadNotification;
using threaded::kMaxConditionWait;
using threaded::NewOsSeededGenerator;
using threaded::WaitUntilDeadline;

}  // namespace netlayer::posix
