#include "netlayer/core/connect_schedule.h"

#include <gtest/gtest.h>

#include <vector>

namespace netlayer {
namespace {

using Kind = ConnectSchedule::Action::Kind;
const absl::Time kT0 = absl::FromUnixSeconds(1000);

std::vector<Address> Addrs(std::initializer_list<const char*> texts) {
  std::vector<Address> out;
  for (const char* t : texts) out.push_back(*Address::Parse(t));
  return out;
}

struct Attempt {
  double at_seconds;  // since kT0
  size_t address;
};

// Runs the schedule with every attempt failing instantly (refused), returning the attempts made
// and the final action.
std::pair<std::vector<Attempt>, ConnectSchedule::Action> RunAllFailing(ConnectSchedule& s,
                                                                       int max_attempts_seen) {
  std::vector<Attempt> attempts;
  absl::Time now = kT0;
  ConnectSchedule::Action a = s.Start(now);
  while (static_cast<int>(attempts.size()) < max_attempts_seen) {
    if (a.kind == Kind::kTryAddress) {
      attempts.push_back({absl::ToDoubleSeconds(now - kT0), a.address_index});
      a = s.OnAttemptFailed(now, absl::UnavailableError("connection refused"));
    } else if (a.kind == Kind::kWaitUntil) {
      EXPECT_GE(a.wake_at, now);
      now = a.wake_at;
      a = s.OnWakeUp(now);
    } else {
      break;
    }
  }
  return {attempts, a};
}

TEST(ConnectScheduleTest, ExactAttemptTimesWithBackoffAndCap) {
  // min 1 s, max 30 s, backoff 2, three addresses: rounds start at 0, 1, 3, 7, 15, 31, 61, 91.
  ConnectOptions o;
  o.min_delay = absl::Seconds(1);
  o.max_delay = absl::Seconds(30);
  o.delay_backoff = 2;
  auto s = ConnectSchedule::Create(Addrs({"a:1", "b:2", "c:3"}), o);
  ASSERT_TRUE(s.ok()) << s.status();
  auto [attempts, last] = RunAllFailing(*s, 24);
  const double round_starts[] = {0, 1, 3, 7, 15, 31, 61, 91};
  ASSERT_EQ(attempts.size(), 24u);
  for (size_t i = 0; i < attempts.size(); ++i) {
    EXPECT_DOUBLE_EQ(attempts[i].at_seconds, round_starts[i / 3]) << "attempt " << i;
    EXPECT_EQ(attempts[i].address, i % 3) << "attempt " << i;
  }
  EXPECT_EQ(s->round(), 8);
}

TEST(ConnectScheduleTest, SeedDefaultsRetryEverySecondForever) {
  auto s = ConnectSchedule::Create(Addrs({"a:1"}), ConnectOptions{});
  ASSERT_TRUE(s.ok());
  auto [attempts, last] = RunAllFailing(*s, 10);
  ASSERT_EQ(attempts.size(), 10u);
  for (size_t i = 0; i < attempts.size(); ++i) EXPECT_DOUBLE_EQ(attempts[i].at_seconds, i);
  EXPECT_FALSE(s->done());
}

TEST(ConnectScheduleTest, MaxAttemptsReportsEveryReason) {
  ConnectOptions o;
  o.max_attempts = 2;
  auto s = ConnectSchedule::Create(Addrs({"a:1", "b:2"}), o);
  ASSERT_TRUE(s.ok());
  absl::Time now = kT0;
  auto a = s->Start(now);
  std::vector<std::string> reasons = {"refused-a1", "refused-b1", "refused-a2", "timeout-b2"};
  for (size_t i = 0; i < reasons.size(); ++i) {
    ASSERT_EQ(a.kind, Kind::kTryAddress) << i;
    a = s->OnAttemptFailed(now, absl::UnavailableError(reasons[i]));
    if (a.kind == Kind::kWaitUntil) {
      EXPECT_EQ(a.wake_at, now + absl::Seconds(1));
      now = a.wake_at;
      a = s->OnWakeUp(now);
    }
  }
  ASSERT_EQ(a.kind, Kind::kFailed);
  EXPECT_EQ(a.status.code(), absl::StatusCode::kUnavailable);
  for (const auto& r : reasons) EXPECT_NE(a.status.message().find(r), std::string::npos) << r;
  EXPECT_NE(a.status.message().find("b:2"), std::string::npos);
  EXPECT_TRUE(s->done());
}

TEST(ConnectScheduleTest, SuccessOnSecondAddressOfThirdRound) {
  ConnectOptions o;
  o.min_delay = absl::Milliseconds(100);
  o.max_delay = absl::Seconds(1);
  o.delay_backoff = 3;
  auto s = ConnectSchedule::Create(Addrs({"a:1", "b:2"}), o);
  ASSERT_TRUE(s.ok());
  absl::Time now = kT0;
  auto a = s->Start(now);
  for (int i = 0; i < 4; ++i) {  // rounds 1 and 2 fail
    a = s->OnAttemptFailed(now, absl::UnavailableError("x"));
    if (a.kind == Kind::kWaitUntil) {
      now = a.wake_at;
      a = s->OnWakeUp(now);
    }
  }
  EXPECT_EQ(now - kT0, absl::Milliseconds(400));             // 100 ms, then 300 ms
  a = s->OnAttemptFailed(now, absl::UnavailableError("x"));  // round 3, address a
  ASSERT_EQ(a.kind, Kind::kTryAddress);
  EXPECT_EQ(a.address_index, 1u);
  a = s->OnAttemptSucceeded(now);
  EXPECT_EQ(a.kind, Kind::kConnected);
  EXPECT_EQ(a.address_index, 1u);
  EXPECT_TRUE(s->done());
}

TEST(ConnectScheduleTest, AttemptDeadlineAndGiveUp) {
  ConnectOptions o;
  o.attempt_timeout = absl::Seconds(5);
  o.give_up_after = absl::Seconds(12);
  auto s = ConnectSchedule::Create(Addrs({"a:1"}), o);
  ASSERT_TRUE(s.ok());
  absl::Time now = kT0;
  auto a = s->Start(now);
  EXPECT_EQ(a.attempt_deadline, kT0 + absl::Seconds(5));
  int rounds = 0;
  while (a.kind != Kind::kFailed) {
    if (a.kind == Kind::kTryAddress) {
      ++rounds;
      EXPECT_LE(a.attempt_deadline, kT0 + absl::Seconds(12));
      now = a.attempt_deadline;  // the attempt hangs until its deadline
      a = s->OnAttemptFailed(now, absl::DeadlineExceededError("attempt timed out"));
    } else {
      now = a.wake_at;
      a = s->OnWakeUp(now);
    }
  }
  EXPECT_EQ(a.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LE(now, kT0 + absl::Seconds(12));
  EXPECT_EQ(rounds, 2);  // 0..5, wait 1, 6..11, wait would pass 12
}

TEST(ConnectScheduleTest, CancelEndsItOnce) {
  auto s = ConnectSchedule::Create(Addrs({"a:1"}), ConnectOptions{});
  ASSERT_TRUE(s.ok());
  s->Start(kT0);
  auto a = s->Cancel();
  EXPECT_EQ(a.kind, Kind::kFailed);
  EXPECT_EQ(a.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(s->done());
  EXPECT_EQ(s->Cancel().kind, Kind::kFailed);
}

TEST(ConnectScheduleTest, JitterStaysInBoundsAndIsSeeded) {
  ConnectOptions o;
  o.min_delay = absl::Seconds(10);
  o.max_delay = absl::Seconds(10);
  o.jitter = 0.5;
  std::vector<absl::Duration> waits[2];
  for (int run = 0; run < 2; ++run) {
    Xoshiro256 gen(99);
    auto s = ConnectSchedule::Create(Addrs({"a:1"}), o, &gen);
    ASSERT_TRUE(s.ok());
    absl::Time now = kT0;
    auto a = s->Start(now);
    for (int i = 0; i < 50; ++i) {
      a = s->OnAttemptFailed(now, absl::UnavailableError("x"));
      ASSERT_EQ(a.kind, Kind::kWaitUntil);
      waits[run].push_back(a.wake_at - now);
      EXPECT_GE(a.wake_at - now, absl::Seconds(5));
      EXPECT_LE(a.wake_at - now, absl::Seconds(15));
      now = a.wake_at;
      a = s->OnWakeUp(now);
    }
  }
  EXPECT_EQ(waits[0], waits[1]);
  EXPECT_NE(waits[0][0], waits[0][1]);
}

TEST(ConnectScheduleTest, JitterNeverPassesMaxDelay) {
  ConnectOptions o;
  o.min_delay = absl::Seconds(1);
  o.max_delay = absl::Seconds(4);
  o.delay_backoff = 2;
  o.jitter = 0.9;
  Xoshiro256 gen(5);
  auto s = ConnectSchedule::Create(Addrs({"a:1"}), o, &gen);
  ASSERT_TRUE(s.ok());
  absl::Time now = kT0;
  auto a = s->Start(now);
  bool capped = false;
  for (int i = 0; i < 200; ++i) {
    a = s->OnAttemptFailed(now, absl::UnavailableError("x"));
    ASSERT_EQ(a.kind, Kind::kWaitUntil);
    EXPECT_LE(a.wake_at - now, absl::Seconds(4));
    capped |= (a.wake_at - now == absl::Seconds(4));
    now = a.wake_at;
    a = s->OnWakeUp(now);
  }
  EXPECT_TRUE(capped);
}

TEST(ConnectScheduleTest, ManyReasonsAreCountedNotLost) {
  ConnectOptions o;
  o.max_attempts = 30;
  o.min_delay = absl::Milliseconds(1);
  o.max_delay = absl::Milliseconds(1);
  auto s = ConnectSchedule::Create(Addrs({"a:1", "b:2", "c:3"}), o);
  ASSERT_TRUE(s.ok());
  auto [attempts, last] = RunAllFailing(*s, 1000);
  ASSERT_EQ(attempts.size(), 90u);
  ASSERT_EQ(last.kind, Kind::kFailed);
  EXPECT_NE(last.status.message().find("and 26 more"), std::string::npos) << last.status;
}

TEST(ConnectScheduleTest, BadArgumentsAreInvalidArgument) {
  auto bad = [](std::vector<Address> addrs, ConnectOptions o) {
    auto s = ConnectSchedule::Create(std::move(addrs), o);
    EXPECT_FALSE(s.ok());
    return s.ok() ? absl::StatusCode::kOk : s.status().code();
  };
  const auto one = Addrs({"a:1"});
  EXPECT_EQ(bad({}, ConnectOptions{}), absl::StatusCode::kInvalidArgument);
  ConnectOptions o;
  o.delay_backoff = 0.5;
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.min_delay = absl::Seconds(5);
  o.max_delay = absl::Seconds(1);
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.min_delay = absl::ZeroDuration();
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.min_delay = absl::Seconds(-1);
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.max_attempts = 0;
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.delay_backoff = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.jitter = 1.0;
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
  o = {};
  o.jitter = 0.1;  // jitter without a generator
  EXPECT_EQ(bad(one, o), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace netlayer
