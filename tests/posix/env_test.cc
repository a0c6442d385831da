// PosixEnv: the real clock, the timer thread and notifications.
#include "netlayer/posix/env.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace netlayer::posix {
namespace {

TEST(PosixEnvTest, TimersRunInTimeOrderOnTheTimerThread) {
  PosixEnv env;
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  auto done = env.NewNotification();
  const absl::Time now = env.Now();
  auto record = [&](int i) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(i);
    threads.push_back(std::this_thread::get_id());
  };
  env.RunAt(now + absl::Milliseconds(30), [&] {
    record(3);
    done->Notify();
  });
  env.RunAt(now + absl::Milliseconds(10), [&] { record(1); });
  env.RunAt(now + absl::Milliseconds(10), [&] { record(2); });  // same time: set order
  ASSERT_TRUE(done->WaitUntil(absl::Now() + absl::Seconds(20)));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  for (auto id : threads) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(PosixEnvTest, CancelledTimersNeverRun) {
  PosixEnv env;
  std::atomic<int> ran{0};
  TimerId id = env.RunAt(env.Now() + absl::Milliseconds(20), [&] { ++ran; });
  EXPECT_TRUE(env.CancelTimer(id));
  EXPECT_FALSE(env.CancelTimer(id));
  auto done = env.NewNotification();
  TimerId later = env.RunAt(env.Now() + absl::Milliseconds(40), [&] { done->Notify(); });
  ASSERT_TRUE(done->WaitUntil(absl::Now() + absl::Seconds(20)));
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(env.CancelTimer(later)) << "a timer that ran cannot be cancelled";
}

TEST(PosixEnvTest, TimersMaySetTimers) {
  PosixEnv env;
  auto done = env.NewNotification();
  env.RunAt(env.Now(), [&] { env.RunAt(env.Now(), [&] { done->Notify(); }); });
  EXPECT_TRUE(done->WaitUntil(absl::Now() + absl::Seconds(20)));
}

TEST(PosixEnvTest, NotificationTimesOutOrWakes) {
  PosixEnv env;
  auto n = env.NewNotification();
  EXPECT_FALSE(n->HasBeenNotified());
  EXPECT_FALSE(n->WaitUntil(absl::Now() + absl::Milliseconds(10)));
  std::thread notifier([&] { n->Notify(); });
  EXPECT_TRUE(n->WaitUntil(absl::InfiniteFuture()));
  notifier.join();
  EXPECT_TRUE(n->HasBeenNotified());
  EXPECT_TRUE(n->WaitUntil(absl::InfinitePast()));
}

TEST(PosixEnvTest, DestroyingDropsPendingTimers) {
  std::atomic<int> ran{0};
  {
    PosixEnv env;
    env.RunAt(env.Now() + absl::Hours(1), [&] { ++ran; });
  }  // joins the timer thread without waiting an hour
  EXPECT_EQ(ran.load(), 0);
}

TEST(PosixEnvTest, FarFutureTimersNeitherSpinNorBlockOthersOrTeardown) {
  // A wait for these deadlines once overflowed inside wait_for and returned at once: the timer
  // thread spun holding the mutex, and the destructor could starve on it (this test then hung).
  std::atomic<int> ran{0};
  {
    PosixEnv env;
    env.RunAt(absl::InfiniteFuture(), [&] { ++ran; });
    env.RunAt(env.Now() + absl::Hours(24 * 365 * 400), [&] { ++ran; });
    auto done = env.NewNotification();
    env.RunAt(env.Now() + absl::Milliseconds(5), [&] { done->Notify(); });
    ASSERT_TRUE(done->WaitUntil(absl::Now() + absl::Seconds(20)));
    // A far-off deadline in a notification wait is clamped the same way.
    auto n = env.NewNotification();
    std::thread notifier([&] { n->Notify(); });
    EXPECT_TRUE(n->WaitUntil(absl::Now() + absl::Hours(24 * 365 * 400)));
    notifier.join();
  }
  EXPECT_EQ(ran.load(), 0);
}

TEST(PosixEnvTest, OsSeededGeneratorsDiffer) {
  auto a = NewOsSeededGenerator();
  auto b = NewOsSeededGenerator();
  EXPECT_NE(a->Next(), b->Next());
}

}  // namespace
}  // namespace netlayer::posix
