// Regressions found in review: each test failed before its fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_util::ConnectPair;
using testing_util::Pattern;
using testing_util::Recorder;

constexpr absl::Duration kLong = absl::Seconds(60);

// A send takes up to max_write_chunk bytes, however many output chunks hold them: with a
// 1 MiB max_write_chunk and alternating 1-byte / 64 KiB writes, more than 16 chunks (one peek)
// are needed for one send.
TEST(Regression, ASendLargerThanSixteenOutputChunks) {
  WorldOptions o;
  o.profile.max_write_chunk = size_t{1} << 20;
  o.profile.send_buffer_bytes = size_t{4} << 20;
  o.profile.full_write_probability = 1.0;
  World w(o);
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> listener;
  auto [c, s] = ConnectPair(w, a, listener, b);
  ASSERT_NE(s, nullptr);
  auto r = std::make_shared<Recorder>();
  s->SetHandler(r);
  // The first write fills the network (a direct send); the next ones queue behind it in many
  // chunks, which the network pump then sends more than its peek holds at a time.
  std::string expected = Pattern(size_t{4} << 20, 99);
  ASSERT_TRUE(c->Write(expected).ok());
  for (int i = 0; i < 100; ++i) {
    const std::string piece = Pattern(i % 2 == 0 ? 1 : 64 << 10, static_cast<uint64_t>(i));
    ASSERT_TRUE(c->Write(piece).ok());
    expected += piece;
  }
  EXPECT_GT(c->QueuedOutputBytes(), 0u);
  ASSERT_TRUE(w.RunUntil([&] { return r->received.size() >= expected.size(); }, w.Now() + kLong));
  EXPECT_TRUE(r->received == expected);
}

// When give_up_after ends an attempt before its attempt_timeout, the reason says so instead
// of "timed out after <attempt_timeout>".
TEST(Regression, AnAttemptCutShortByGiveUpAfterNamesTheRealReason) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  ASSERT_TRUE(w.server_factory(b).Listen(Address::HostName("b", 8100)).ok());
  ASSERT_TRUE(w.Partition({a}, {b}).ok());
  ConnectOptions o;
  o.attempt_timeout = absl::Seconds(10);
  o.give_up_after = absl::Milliseconds(1500);
  auto r = w.client_factory(a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  const std::string message(r.status().message());
  EXPECT_THAT(message, HasSubstr("b:8100 stopped after 1.5s: give_up_after (1.5s) reached"));
  EXPECT_THAT(message, Not(HasSubstr("timed out after 10s")));
  EXPECT_EQ(w.Elapsed(), absl::Milliseconds(1500));
  // An attempt that really times out still says so.
  o.give_up_after = absl::InfiniteDuration();
  o.attempt_timeout = absl::Seconds(2);
  o.max_attempts = 1;
  r = w.client_factory(a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("b:8100 timed out after 2s"));
}

// Crash, Restart, Crash, Restart in one callback: the hook runs once (for the last restart);
// the first restart's hook belongs to an incarnation that crashed.
TEST(Regression, TheRestartHookRunsOncePerLiveRestart) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  int hooks = 0;
  w.SetRestartHook(a, [&] { ++hooks; });
  ASSERT_TRUE(w.At(w.Now(), [&] {
                 ASSERT_TRUE(w.Crash(a).ok());
                 ASSERT_TRUE(w.Restart(a).ok());
                 ASSERT_TRUE(w.Crash(a).ok());
                 ASSERT_TRUE(w.Restart(a).ok());
               }).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(hooks, 1);
  EXPECT_TRUE(w.IsUp(a));
  // A crash right after a restart cancels that restart's hook altogether.
  ASSERT_TRUE(w.At(w.Now(), [&] {
                 ASSERT_TRUE(w.Crash(a).ok());
                 ASSERT_TRUE(w.Restart(a).ok());
                 ASSERT_TRUE(w.Crash(a).ok());
               }).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(hooks, 1);
  EXPECT_FALSE(w.IsUp(a));
}

// A stream reset and then its host crashed at the same instant: the reset's notification is
// still queued when the process dies, and the dead process's handler must not get it.
TEST(Regression, ACrashedHostsHandlerIsNotCalledForAResetJustBeforeTheCrash) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> listener;
  auto [c, s] = ConnectPair(w, a, listener, b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  ASSERT_TRUE(w.At(w.Now(), [&] {
                 ASSERT_TRUE(w.Reset(*c).ok());
                 ASSERT_TRUE(w.Crash(a).ok());
               }).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rc->closes.empty()) << "the dead process runs no handler";
  ASSERT_EQ(rs->closes.size(), 1u);
  EXPECT_EQ(rs->closes[0].kind(), CloseReason::Kind::kReset);
  // Restarted, the host's old connection stays silent.
  ASSERT_TRUE(w.Restart(a).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rc->closes.empty());
}

// Destroying the world destroys closures that may own application objects whose destructors
// call back into the Env (an RPC responder answering as it dies, say). They find a world that
// refuses politely (a dead timer id, nothing to cancel) instead of a container mid-clear.
TEST(Regression, DestructorsRunByTheWorldsDestructionMayCallTheEnv) {
  struct Calls {
    std::vector<TimerId> ids;
    std::vector<bool> cancelled;
  };
  struct CallsBackOnDestruction {
    CallsBackOnDestruction(Env* e, Calls* c) : env(e), calls(c) {}
    CallsBackOnDestruction(const CallsBackOnDestruction&) = delete;
    CallsBackOnDestruction& operator=(const CallsBackOnDestruction&) = delete;
    Env* env;
    Calls* calls;
    ~CallsBackOnDestruction() {
      for (int i = 0; i < 20; ++i) {
        const TimerId id = env->RunAt(env->Now() + absl::Seconds(i), [] {});
        calls->ids.push_back(id);
        calls->cancelled.push_back(env->CancelTimer(id));
      }
    }
  };
  Calls calls;
  {
    World w(WorldOptions{});
    const HostId a = *w.AddHost("a");
    Env& env = w.env(a);
    for (int i = 0; i < 50; ++i) {
      auto owned = std::make_shared<CallsBackOnDestruction>(&env, &calls);
      env.RunAt(w.Now() + absl::Seconds(10 + i), [owned] {});
      ASSERT_TRUE(w.At(w.Now() + absl::Seconds(100 + i), [owned] {}).ok());
    }
    ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
    EXPECT_TRUE(calls.ids.empty());
  }
  ASSERT_EQ(calls.ids.size(), 50u * 20u);
  for (size_t i = 0; i < calls.ids.size(); ++i) {
    EXPECT_EQ(calls.ids[i], 0u) << "no timer is scheduled in a world being destroyed";
    EXPECT_FALSE(calls.cancelled[i]);
  }
}

// A local Close() after a remote close that is seen but not yet delivered drops it
// (connection.h: undelivered input is discarded and no ConnectionClosed is delivered).
TEST(Regression, CloseAfterAResetNotYetDeliveredDropsTheNotification) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> listener;
  auto [c, s] = ConnectPair(w, a, listener, b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  ASSERT_TRUE(w.At(w.Now(), [&] {
                 ASSERT_TRUE(w.Reset(*c).ok());
                 c->Close();
               }).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rc->closes.empty()) << "closed locally before the reset was delivered";
  ASSERT_EQ(rs->closes.size(), 1u);
  EXPECT_EQ(rs->closes[0].kind(), CloseReason::Kind::kReset);
}

TEST(Regression, CloseAfterAnEndOfStreamQueuedForNoHandlerDropsInputAndClose) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> listener;
  auto [c, s] = ConnectPair(w, a, listener, b);
  ASSERT_NE(s, nullptr);
  // No handler on c yet: the data and the end of stream wait in c's state.
  ASSERT_TRUE(s->Write("hello").ok());
  s->Close();
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_FALSE(c->IsOpen());
  EXPECT_EQ(w.LiveConnections(), 0u);
  c->Close();
  auto rc = std::make_shared<Recorder>();
  c->SetHandler(rc);
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rc->received.empty());
  EXPECT_TRUE(rc->closes.empty());
  // Closing twice, or closing an ended stream, traces no second local close.
  c->Close();
  s->Close();
  EXPECT_EQ(testing_util::Find(w, TraceKind::kClose, "local close").size(), 1u);
}

}  // namespace
}  // namespace netlayer::sim
