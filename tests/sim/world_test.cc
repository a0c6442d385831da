// The world itself: virtual time, event order, Env timers and notifications, the event budget,
// the trace and its hash.
#include "netlayer/sim/world.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netlayer/sim/trace.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(World, TimersRunInTimeThenSequenceOrderAndTimeJumps) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  Env& env = w.env(a);
  const absl::Time t0 = w.Now();
  EXPECT_EQ(t0, w.start());
  std::vector<std::string> order;
  std::vector<absl::Time> times;
  env.RunAt(t0 + absl::Seconds(2), [&] {
    order.push_back("2s");
    times.push_back(env.Now());
  });
  env.RunAt(t0 + absl::Seconds(1), [&] {
    order.push_back("1s-first");
    times.push_back(env.Now());
  });
  env.RunAt(t0 + absl::Seconds(1), [&] {
    order.push_back("1s-second");
    times.push_back(env.Now());
  });
  env.RunAt(t0 - absl::Seconds(5), [&] {
    order.push_back("past");
    times.push_back(env.Now());
  });
  EXPECT_TRUE(order.empty()) << "RunAt never runs the function itself";
  ASSERT_TRUE(w.RunUntilIdle().ok());
  EXPECT_THAT(order, ElementsAre("past", "1s-first", "1s-second", "2s"));
  EXPECT_THAT(times,
              ElementsAre(t0, t0 + absl::Seconds(1), t0 + absl::Seconds(1), t0 + absl::Seconds(2)));
  EXPECT_EQ(w.Now(), t0 + absl::Seconds(2));
}

TEST(World, CancelTimer) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  bool ran = false;
  TimerId id = env.RunAt(w.Now() + absl::Seconds(1), [&] { ran = true; });
  EXPECT_TRUE(env.CancelTimer(id));
  EXPECT_FALSE(env.CancelTimer(id));
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_FALSE(ran);
  TimerId id2 = env.RunAt(w.Now(), [&] { ran = true; });
  ASSERT_TRUE(w.RunUntilIdle().ok());
  EXPECT_TRUE(ran);
  EXPECT_FALSE(env.CancelTimer(id2)) << "a timer that ran cannot be cancelled";
}

TEST(World, RunForMovesTimeToTheEndEvenWithoutEvents) {
  World w(WorldOptions{});
  const absl::Time t0 = w.Now();
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(1500)).ok());
  EXPECT_EQ(w.Now(), t0 + absl::Milliseconds(1500));
}

TEST(World, NotificationWaitRunsTheWorldUntilNotifiedOrDeadline) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  const absl::Time t0 = w.Now();
  auto n = env.NewNotification();
  env.RunAt(t0 + absl::Seconds(5), [&] { n->Notify(); });
  EXPECT_TRUE(n->WaitUntil(t0 + absl::Seconds(10)));
  EXPECT_EQ(w.Now(), t0 + absl::Seconds(5)) << "stops as soon as notified";
  EXPECT_TRUE(n->HasBeenNotified());

  auto never = env.NewNotification();
  EXPECT_FALSE(never->WaitUntil(t0 + absl::Seconds(8)));
  EXPECT_EQ(w.Now(), t0 + absl::Seconds(8)) << "time advances to the deadline";
  // Infinite deadline, nothing left to run: returns at once instead of hanging.
  EXPECT_FALSE(never->WaitUntil(absl::InfiniteFuture()));
}

TEST(World, InCallbackIsTrueOnlyInsideWorldCallbacks) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  EXPECT_FALSE(w.InCallback());
  bool inside = false;
  env.RunAt(w.Now(), [&] { inside = w.InCallback(); });
  ASSERT_TRUE(w.RunUntilIdle().ok());
  EXPECT_TRUE(inside);
  EXPECT_FALSE(w.InCallback());
}

TEST(World, EventBudgetStopsALivelockWithAClearError) {
  WorldOptions o;
  o.max_events = 1000;
  World w(o);
  Env& env = w.env(*w.AddHost("a"));
  // A timer that reschedules itself at the same instant: virtual time never advances.
  std::function<void()> spin = [&] { env.RunAt(env.Now(), [&] { spin(); }); };
  spin();
  absl::Status s = w.RunFor(absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_events"));
  EXPECT_EQ(w.status(), s);
  EXPECT_EQ(w.events_run(), 1000u);
  // Halted: later runs return at once.
  EXPECT_EQ(w.RunFor(absl::Seconds(1)), s);
  EXPECT_EQ(w.events_run(), 1000u);
  EXPECT_FALSE(testing_util::Find(w, TraceKind::kWorld, "halted").empty());
}

TEST(World, RunUntilIdleReportsAWorldThatStaysBusy) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  std::function<void()> beat = [&] { env.RunAt(env.Now() + absl::Seconds(1), [&] { beat(); }); };
  beat();
  absl::Status s = w.RunUntilIdle(absl::Seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

TEST(World, CrashCancelsTheHostsTimersAndRestartRunsTheHook) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  int a_fired = 0, b_fired = 0, restarts = 0;
  w.env(a).RunAt(w.Now() + absl::Seconds(1), [&] { ++a_fired; });
  w.env(b).RunAt(w.Now() + absl::Seconds(1), [&] { ++b_fired; });
  w.SetRestartHook(a, [&] {
    ++restarts;
    EXPECT_TRUE(w.InCallback());
    EXPECT_TRUE(w.IsUp(a));
  });
  ASSERT_TRUE(w.Crash(a).ok());
  EXPECT_FALSE(w.IsUp(a));
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_EQ(a_fired, 0) << "a crashed host's timers never fire";
  EXPECT_EQ(b_fired, 1);
  ASSERT_TRUE(w.Restart(a).ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(1)).ok());
  EXPECT_EQ(restarts, 1);
}

TEST(World, AtRunsAScriptedActionAtAnExactTime) {
  World w(WorldOptions{});
  absl::Time when;
  ASSERT_TRUE(w.At(w.Now() + absl::Milliseconds(250), [&] { when = w.Now(); }).ok());
  ASSERT_TRUE(w.RunUntilIdle().ok());
  EXPECT_EQ(when, w.start() + absl::Milliseconds(250));
}

TEST(Trace, Fnv1aMatchesTheReferenceVectors) {
  EXPECT_EQ(Fnv1a64(Trace::kFnvOffsetBasis, ""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64(Trace::kFnvOffsetBasis, "a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64(Trace::kFnvOffsetBasis, "foobar"), 0x85944171f73967e8ULL);
}

TEST(Trace, HashCoversEveryCanonicalLineAndTheRingIsBounded) {
  Trace t(4);
  uint64_t expected = Trace::kFnvOffsetBasis;
  std::vector<std::string> seen;
  t.SetSink([&](const TraceEvent& e) { seen.push_back(e.CanonicalLine()); });
  for (int i = 0; i < 10; ++i) {
    t.Add(absl::Milliseconds(i), i % 2 ? "a" : "-", TraceKind::kApp, "note " + std::to_string(i));
    expected = Fnv1a64(expected, seen.back() + "\n");
  }
  EXPECT_EQ(t.hash(), expected);
  EXPECT_EQ(t.count(), 10u);
  ASSERT_EQ(t.Recent().size(), 4u);
  EXPECT_EQ(t.Recent().front().seq, 6u);
  EXPECT_EQ(t.Last(2).back().detail, "note 9");
  EXPECT_EQ(seen[3], "3 3000000 a app note 3");
  EXPECT_EQ(t.HashHex().size(), 16u);
}

TEST(Trace, HumanAndJsonLines) {
  TraceEvent e;
  e.seq = 7;
  e.time = absl::Milliseconds(1250);
  e.host = "client";
  e.kind = TraceKind::kDeliver;
  e.detail = "say \"hi\"\n";
  EXPECT_EQ(e.JsonLine(),
            "{\"seq\":7,\"t_ns\":1250000000,\"host\":\"client\",\"kind\":\"deliver\","
            "\"detail\":\"say \\\"hi\\\"\\n\"}");
  EXPECT_THAT(e.HumanLine(), HasSubstr("1.250000000s"));
  EXPECT_THAT(e.HumanLine(), HasSubstr("client"));
  EXPECT_THAT(e.HumanLine(), HasSubstr("deliver"));
}

TEST(Trace, WorldRecordsNotesAndTimers) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  w.env(a).RunAt(w.Now() + absl::Seconds(1), [] {});
  w.Note(a, "hello from the app");
  ASSERT_TRUE(w.RunUntilIdle().ok());
  auto notes = testing_util::Find(w, TraceKind::kApp, "hello from the app");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].host, "a");
  auto timers = testing_util::Find(w, TraceKind::kTimer, "fired");
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].time, absl::Seconds(1));
}

}  // namespace
}  // namespace netlayer::sim

namespace netlayer::sim {
namespace {

TEST(World, StopFromACallbackEndsTheRunWithItsReason) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  int after = 0;
  env.RunAt(w.Now() + absl::Seconds(1), [&] { w.Stop(absl::InternalError("invariant broken")); });
  env.RunAt(w.Now() + absl::Seconds(2), [&] { ++after; });
  absl::Status s = w.RunFor(absl::Seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "invariant broken");
  EXPECT_EQ(after, 0);
  EXPECT_EQ(w.Elapsed(), absl::Seconds(1)) << "time stops where the run stopped";
  EXPECT_FALSE(testing_util::Find(w, TraceKind::kWorld, "stopped: INTERNAL").empty());
}

TEST(Trace, StreamEventsCarryStructuredFields) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> l;
  auto pair = testing_util::ConnectPair(w, a, l, b);
  ASSERT_NE(pair.server, nullptr);
  ASSERT_TRUE(pair.client->Write("12345").ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  auto sends = testing_util::Find(w, TraceKind::kSend, "a->b");
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].conn, *w.ConnectionId(*pair.client));
  EXPECT_EQ(sends[0].peer, "b");
  EXPECT_EQ(sends[0].bytes, 5u);
  EXPECT_THAT(sends[0].JsonLine(), ::testing::HasSubstr(",\"conn\":1,\"peer\":\"b\",\"bytes\":5}"));
}

}  // namespace
}  // namespace netlayer::sim

namespace netlayer::sim {
namespace {

TEST(World, ATimerAtTheInfiniteFutureNeverRuns) {
  World w(WorldOptions{});
  Env& env = w.env(*w.AddHost("a"));
  bool ran = false;
  TimerId id = env.RunAt(absl::InfiniteFuture(), [&] { ran = true; });
  auto n = env.NewNotification();
  EXPECT_FALSE(n->WaitUntil(absl::InfiniteFuture()));
  EXPECT_FALSE(ran);
  EXPECT_EQ(w.Now(), w.start());
  EXPECT_EQ(w.RunUntilIdle(absl::Seconds(1)).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(env.CancelTimer(id));
  EXPECT_TRUE(w.RunUntilIdle().ok());
}

}  // namespace
}  // namespace netlayer::sim
