// The newer faults: frozen hosts, readers that stop, flapping servers, host clocks (offset,
// drift, steps), and swarm profiles. Each is scripted through the World API here; the random
// processes are checked for determinism and for appearing in the trace.
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
using testing_util::ConnectPair;
using testing_util::Find;
using testing_util::Pair;
using testing_util::Recorder;

// Writes back what it receives.
class Echo : public ConnectionHandler {
 public:
  void InputData(Connection& c, std::string_view data) override {
    received += data.size();
    (void)c.Write(data);
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    closes.push_back(reason);
  }
  size_t received = 0;
  std::vector<CloseReason> closes;
};

// ---- Frozen host ----

TEST(Freeze, TimerWaitsWhileFrozenAndFiresOnResume) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  Env& env = w.env(a);
  const absl::Time t0 = w.Now();
  std::vector<absl::Time> fired;
  env.RunAt(t0 + absl::Seconds(1), [&] { fired.push_back(env.Now()); });
  env.RunAt(t0 + absl::Seconds(2), [&] { fired.push_back(env.Now()); });
  ASSERT_TRUE(w.Freeze(a).ok());
  EXPECT_TRUE(w.IsFrozen(a));
  EXPECT_EQ(w.Freeze(a).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.RunFor(absl::Seconds(5)).ok());
  EXPECT_TRUE(fired.empty()) << "a frozen host's timers do not fire";
  ASSERT_TRUE(w.Resume(a).ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(1)).ok());
  ASSERT_EQ(fired.size(), 2u) << "timers due while frozen fire on resume";
  EXPECT_EQ(fired[0], t0 + absl::Seconds(5));
  EXPECT_EQ(fired[1], t0 + absl::Seconds(5));
  EXPECT_FALSE(w.IsFrozen(a));
  EXPECT_EQ(w.Resume(a).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Find(w, TraceKind::kFault, "scripted freeze").empty());
  EXPECT_FALSE(Find(w, TraceKind::kFault, "scripted resume (2 events held)").empty());
}

TEST(Freeze, HeldTimerCanBeCancelledAndTimedFreezeEnds) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  Env& env = w.env(a);
  bool cancelled_ran = false;
  bool other_ran = false;
  TimerId id = env.RunAt(w.Now() + absl::Milliseconds(10), [&] { cancelled_ran = true; });
  env.RunAt(w.Now() + absl::Milliseconds(20), [&] { other_ran = true; });
  ASSERT_TRUE(w.Freeze(a, absl::Seconds(1)).ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(500)).ok());
  EXPECT_TRUE(env.CancelTimer(id)) << "a held timer is still pending";
  EXPECT_FALSE(other_ran);
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_FALSE(w.IsFrozen(a)) << "a timed freeze ends by itself";
  EXPECT_FALSE(cancelled_ran);
  EXPECT_TRUE(other_ran);
}

TEST(Freeze, FrozenReceiverHoldsBytesUpToTheBufferThenTheSenderQueues) {
  WorldOptions o;
  o.profile.send_buffer_bytes = 4096;
  World w(o);
  const HostId c = *w.AddHost("client");
  const HostId s = *w.AddHost("server");
  std::shared_ptr<Listener> l;
  Pair p = ConnectPair(w, c, l, s);
  ASSERT_NE(p.server, nullptr);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  ASSERT_TRUE(w.Freeze(s).ok());
  const std::string data(10000, 'x');
  ASSERT_TRUE(p.client->Write(data).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rec->received.empty()) << "a frozen process reads nothing";
  EXPECT_EQ(*w.InFlightBytes(*p.client), 4096u) << "its socket takes bytes up to the buffer";
  EXPECT_EQ(p.client->QueuedOutputBytes(), 10000u - 4096u);
  ASSERT_TRUE(w.Resume(s).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(rec->received, data);
  EXPECT_EQ(p.client->QueuedOutputBytes(), 0u);
}

TEST(Freeze, FrozenSenderSendsNothingAndConnectsWait) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("client");
  const HostId s = *w.AddHost("server");
  std::shared_ptr<Listener> l;
  Pair p = ConnectPair(w, c, l, s);
  ASSERT_NE(p.server, nullptr);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  // Output queued by the transport (not a direct write) waits while the sender is frozen.
  ASSERT_TRUE(w.Freeze(c).ok());
  ASSERT_TRUE(w.StopReading(s).ok());
  ASSERT_TRUE(p.client->Write(std::string(1 << 20, 'y')).ok());
  ASSERT_TRUE(w.ResumeReading(s).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  const size_t got_while_frozen = rec->received.size();
  EXPECT_LT(got_while_frozen, size_t{1} << 20);
  ASSERT_TRUE(w.Resume(c).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_EQ(rec->received.size(), size_t{1} << 20);

  // A connect started by the process waits with it.
  class Done : public ConnectHandler {
   public:
    void Connected(std::shared_ptr<Connection> c) override { conn = std::move(c); }
    void FailedConnection(const absl::Status&) override { failed = true; }
    std::shared_ptr<Connection> conn;
    bool failed = false;
  };
  auto done = std::make_shared<Done>();
  ASSERT_TRUE(w.client_factory(c).Connect({Address::HostName("server", 8100)}, {}, done).ok());
  ASSERT_TRUE(w.Freeze(c).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_EQ(done->conn, nullptr);
  ASSERT_TRUE(w.Resume(c).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_NE(done->conn, nullptr);
}

TEST(Freeze, StopFaultsResumesAndCrashEndsAFreeze) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  bool ran = false;
  w.env(a).RunAt(w.Now() + absl::Seconds(1), [&] { ran = true; });
  ASSERT_TRUE(w.Freeze(a).ok());
  ASSERT_TRUE(w.Freeze(b).ok());
  ASSERT_TRUE(w.Crash(b).ok());
  EXPECT_FALSE(w.IsFrozen(b));
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_FALSE(ran);
  w.StopFaults();
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(ran);
  EXPECT_FALSE(w.IsFrozen(a));
}

// ---- Readers that stop ----

TEST(StopReading, NonReadingPeerFillsTheSendersQueueUntilTheWriteBoundFails) {
  WorldOptions o;
  o.profile.send_buffer_bytes = 16384;
  o.connection_limits.max_output_bytes = 100000;
  World w(o);
  const HostId c = *w.AddHost("client");
  const HostId s = *w.AddHost("server");
  std::shared_ptr<Listener> l;
  Pair p = ConnectPair(w, c, l, s);
  ASSERT_NE(p.server, nullptr);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  ASSERT_TRUE(w.StopReading(*p.server).ok());
  const std::string chunk(10000, 'z');
  absl::Status last;
  size_t previous = 0;
  int writes = 0;
  for (; writes < 100; ++writes) {
    last = p.client->Write(chunk);
    if (!last.ok()) break;
    ASSERT_TRUE(w.RunFor(absl::Milliseconds(10)).ok());
    EXPECT_GE(p.client->QueuedOutputBytes(), previous) << "the queue only grows";
    previous = p.client->QueuedOutputBytes();
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  EXPECT_GT(previous, 100000u - 10000u);
  EXPECT_TRUE(rec->received.empty());
  EXPECT_EQ(*w.InFlightBytes(*p.client), 16384u);
  ASSERT_TRUE(w.ResumeReading(*p.server).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(5)).ok());
  EXPECT_EQ(rec->received.size(), 10000u * writes) << "nothing lost, nothing duplicated";
  EXPECT_EQ(p.client->QueuedOutputBytes(), 0u);
  EXPECT_FALSE(Find(w, TraceKind::kFault, "scripted stop reading conn#").empty());
}

TEST(StopReading, HostStallForAWhileEndsByItself) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("client");
  const HostId s = *w.AddHost("server");
  std::shared_ptr<Listener> l;
  Pair p = ConnectPair(w, c, l, s);
  ASSERT_NE(p.server, nullptr);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  ASSERT_TRUE(w.StopReading(s, absl::Seconds(2)).ok());
  ASSERT_TRUE(p.client->Write("hello").ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(rec->received, "");
  ASSERT_TRUE(w.RunFor(absl::Seconds(2)).ok());
  EXPECT_EQ(rec->received, "hello");
  EXPECT_EQ(w.StopReading(s, absl::ZeroDuration()).code(), absl::StatusCode::kInvalidArgument);
}

// ---- Flapping server ----

struct Flapped {
  std::shared_ptr<Listener> listener;
  std::shared_ptr<Connection> client;
  std::shared_ptr<Recorder> rec;
};

Flapped ConnectToFlapper(World& w, HostId c, Flap flap, std::shared_ptr<Echo> echo) {
  const HostId s = *w.FindHost("server");
  EXPECT_TRUE(w.SetFlapping(s, flap).ok());
  auto l = w.server_factory(s).Listen(
      Address::HostName("server", 8100),
      [echo](std::shared_ptr<Connection> conn) { conn->SetHandler(echo); });
  EXPECT_TRUE(l.ok());
  auto conn = w.client_factory(c).ConnectBlocking({Address::HostName("server", 8100)}, {});
  EXPECT_TRUE(conn.ok()) << conn.status();
  Flapped f{*l, *conn, std::make_shared<Recorder>()};
  f.client->SetHandler(f.rec);
  return f;
}

TEST(Flap, AcceptedAndClosedAtOnce) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("client");
  (void)*w.AddHost("server");
  auto echo = std::make_shared<Echo>();
  Flapped f = ConnectToFlapper(w, c, Flap{Flap::Kind::kAtOnce, 0}, echo);
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(f.rec->closes.size(), 1u);
  EXPECT_EQ(f.rec->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_EQ(echo->received, 0u) << "the application never saw it";
  EXPECT_FALSE(Find(w, TraceKind::kFault, "flapping server closes conn#").empty());
}

TEST(Flap, ResetAfterAFewBytes) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("client");
  (void)*w.AddHost("server");
  auto echo = std::make_shared<Echo>();
  Flapped f = ConnectToFlapper(w, c, Flap{Flap::Kind::kAfterBytes, 10}, echo);
  ASSERT_TRUE(f.client->Write(std::string(100, 'a')).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(f.rec->closes.size(), 1u);
  EXPECT_EQ(f.rec->closes[0].kind(), CloseReason::Kind::kReset);
  EXPECT_GE(echo->received, 10u);
  EXPECT_FALSE(f.client->IsOpen());
}

TEST(Flap, ResetAfterRoundTrips) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("client");
  (void)*w.AddHost("server");
  auto echo = std::make_shared<Echo>();
  Flapped f = ConnectToFlapper(w, c, Flap{Flap::Kind::kAfterRoundTrips, 2}, echo);
  ASSERT_TRUE(f.client->Write("ping1").ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(100)).ok());
  EXPECT_EQ(f.rec->received, "ping1");
  EXPECT_TRUE(f.rec->closes.empty()) << "one round trip is allowed";
  ASSERT_TRUE(f.client->Write("ping2").ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(100)).ok());
  EXPECT_EQ(f.rec->received, "ping1ping2") << "the second answer arrives, then the drop";
  ASSERT_EQ(f.rec->closes.size(), 1u);
  EXPECT_EQ(f.rec->closes[0].kind(), CloseReason::Kind::kReset);
}

// ---- Host clocks ----

TEST(Clock, OffsetAndDriftStayWithinTheirBoundAndTimersFollowTheHostClock) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  ASSERT_TRUE(w.SetClock(a, absl::Milliseconds(300), 200).ok());
  Env& env = w.env(a);
  EXPECT_EQ(w.HostNow(a), w.Now() + absl::Milliseconds(300));
  absl::Time last = env.Now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
    const absl::Duration skew = w.HostNow(a) - w.Now();
    const absl::Duration drift = absl::Microseconds(200) * (i + 1);  // 200 ppm of the elapsed
    EXPECT_GE(skew, absl::Milliseconds(300) + drift - absl::Nanoseconds(1));
    EXPECT_LE(skew, absl::Milliseconds(300) + drift + absl::Nanoseconds(1));
    EXPECT_GE(env.Now(), last) << "a host clock never goes backwards";
    last = env.Now();
  }
  // A timer for host time T fires when the host clock reads T (the world reads less).
  const absl::Time due = env.Now() + absl::Seconds(10);
  absl::Time fired_host, fired_world;
  env.RunAt(due, [&] {
    fired_host = env.Now();
    fired_world = w.Now();
  });
  ASSERT_TRUE(w.RunFor(absl::Seconds(20)).ok());
  EXPECT_GE(fired_host, due);
  EXPECT_LT(fired_host - due, absl::Microseconds(1));
  EXPECT_LT(fired_world, due);
  EXPECT_EQ(w.SetClock(a, absl::ZeroDuration(), 0).code(), absl::StatusCode::kFailedPrecondition)
      << "moving the clock back is refused";
  EXPECT_EQ(w.SetClock(a, absl::Seconds(1), 5000).code(), absl::StatusCode::kInvalidArgument);
}

TEST(Clock, SlowClockTimersFireLaterInWorldTime) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  ASSERT_TRUE(w.SetClock(a, absl::ZeroDuration(), -1000).ok());
  Env& env = w.env(a);
  absl::Time fired_world;
  const absl::Time due = env.Now() + absl::Seconds(100);
  env.RunAt(due, [&] { fired_world = w.Now(); });
  ASSERT_TRUE(w.RunFor(absl::Seconds(200)).ok());
  // 100 s on a clock 1000 ppm slow take 100/(1 - 0.001) s of world time.
  EXPECT_GT(fired_world - w.start(), absl::Seconds(100) + absl::Milliseconds(100));
  EXPECT_LT(fired_world - w.start(), absl::Seconds(100) + absl::Milliseconds(101));
}

TEST(Clock, ForwardStepFiresTimersThatAreNowDue) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  ASSERT_TRUE(w.SetClock(a, absl::ZeroDuration(), 0).ok());
  Env& env = w.env(a);
  bool ran = false;
  env.RunAt(env.Now() + absl::Seconds(10), [&] { ran = true; });
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  ASSERT_TRUE(w.StepClock(a, absl::Seconds(9)).ok());
  EXPECT_EQ(w.HostNow(a) - w.Now(), absl::Seconds(9));
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(1)).ok());
  EXPECT_TRUE(ran) << "the host clock reached the timer's time at the step";
  EXPECT_FALSE(Find(w, TraceKind::kFault, "scripted clock step +9s").empty());
  EXPECT_EQ(w.StepClock(a, absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
}

// A timer keeps its host-clock time from the moment it is set: a clock skewed or stepped later
// (the random clock process draws a skew or a step at any time) moves it. Before, a timer set
// while the host's clock was still the world's stayed at its world time and fired late.
TEST(Clock, TimersSetBeforeTheClockIsSkewedFollowIt) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  Env& env = w.env(a);
  bool stepped_ran = false;
  env.RunAt(env.Now() + absl::Seconds(10), [&] { stepped_ran = true; });
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  ASSERT_TRUE(w.StepClock(a, absl::Seconds(9)).ok());
  ASSERT_TRUE(w.RunFor(absl::Milliseconds(1)).ok());
  EXPECT_TRUE(stepped_ran) << "the step took the host clock to the timer's time";

  Env& env_b = w.env(b);
  const absl::Time due = env_b.Now() + absl::Seconds(10);
  absl::Time fired_host, fired_world;
  env_b.RunAt(due, [&] {
    fired_host = env_b.Now();
    fired_world = w.Now();
  });
  const absl::Time skewed_at = w.Now();
  ASSERT_TRUE(w.SetClock(b, absl::Seconds(4), 0).ok());
  ASSERT_TRUE(w.RunFor(absl::Seconds(20)).ok());
  EXPECT_EQ(fired_host, due) << "fired when b's clock read its time, not 4 s after";
  EXPECT_EQ(fired_world, skewed_at + absl::Seconds(6));
}

// On a drifting clock a timer fires at the first world nanosecond at which its host's clock
// reads its time or later: never before it, and at most kHostTimerSlack after it (a clock that
// runs fast moves up to 2 ns in one world nanosecond).
TEST(Clock, DriftingTimersFireAtTheFirstWorldTickTheirClockReachesTheirTime) {
  for (const int64_t ppb : {1'000'000, 999'999, 123'457, 1, -1, -654'321, -1'000'000}) {
    SCOPED_TRACE(ppb);
    World w(WorldOptions{});
    const HostId a = *w.AddHost("a");
    const absl::Time anchor = w.Now();
    ASSERT_TRUE(w.SetClock(a, absl::ZeroDuration(), static_cast<double>(ppb) / 1000).ok());
    // The host clock the world keeps: anchor + e + e * ppb / 1e9 (integer nanoseconds; e stays
    // under 2 s here, so the product fits in 64 bits).
    auto local = [&](absl::Time world) {
      const int64_t e = absl::ToInt64Nanoseconds(world - anchor);
      return anchor + absl::Nanoseconds(e + e * ppb / 1'000'000'000);
    };
    Env& env = w.env(a);
    struct Fired {
      absl::Time due, host, world;
    };
    std::vector<Fired> fired;
    for (int64_t i = 1; i <= 400; ++i) {
      const absl::Time due = env.Now() + absl::Nanoseconds(i * 1'000'003 + i % 7);
      env.RunAt(due, [&, due] { fired.push_back({due, env.Now(), w.Now()}); });
    }
    ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
    ASSERT_EQ(fired.size(), 400u);
    int skipped = 0;
    for (const Fired& f : fired) {
      EXPECT_EQ(f.host, local(f.world));
      EXPECT_GE(f.host, f.due) << "never before its time";
      EXPECT_LE(f.host - f.due, kHostTimerSlack);
      EXPECT_LT(local(f.world - absl::Nanoseconds(1)), f.due) << "the first tick that reaches it";
      if (f.host > f.due) ++skipped;
    }
    if (ppb < 0) {
      EXPECT_EQ(skipped, 0) << "a slow clock reads every nanosecond";
    }
  }
}

TEST(Clock, ProfileSkewsOnlyHostsThatAllowIt) {
  WorldOptions o;
  o.seed = 7;
  o.profile.clock_offset_max = absl::Milliseconds(200);
  o.profile.clock_drift_ppm = 200;
  World w(o);
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  w.SetClockSkewable(a, true);
  ASSERT_TRUE(w.RunFor(absl::Seconds(1000)).ok());
  EXPECT_EQ(w.HostNow(b), w.Now());
  const absl::Duration skew = w.HostNow(a) - w.Now();
  // offset in [0, 200 ms] plus at most 200 ppm of 1000 s either way.
  EXPECT_GE(skew, -absl::Milliseconds(200));
  EXPECT_LE(skew, absl::Milliseconds(400));
  EXPECT_FALSE(Find(w, TraceKind::kFault, "random clock offset").empty());
}

// ---- Profiles ----

TEST(Profile, SwarmDrawsASubsetOfKindsPerSeedAndDescribesIt) {
  int flap = 0, stall = 0, freeze = 0, clock = 0;
  for (uint64_t seed = 1; seed <= 64; ++seed) {
    const FaultProfile p = DrawFaultProfile(seed);
    ASSERT_TRUE(p.Validate().ok()) << p.ToString();
    flap += p.flap_probability > 0;
    stall += p.stall_rate > 0;
    freeze += p.freeze_rate > 0;
    clock += p.clock_drift_ppm > 0 || p.clock_offset_max > absl::ZeroDuration();
    EXPECT_LE(p.clock_drift_ppm, 200);
    const std::string d = p.Describe();
    EXPECT_THAT(d, HasSubstr("profile: "));
    EXPECT_THAT(d, HasSubstr(p.freeze_rate > 0 ? "freeze=0" : "freeze=off"));
    EXPECT_EQ(d.find('\n'), std::string::npos);
    // The older kinds of a seed are as they were before the newer ones were added.
    EXPECT_EQ(DrawFaultProfile(seed).ToString(), p.ToString());
  }
  for (int n : {flap, stall, freeze, clock}) {
    EXPECT_GT(n, 10);
    EXPECT_LT(n, 54);
  }
  EXPECT_FALSE(FaultProfile::Calm().HasRandomFaults());
  EXPECT_THAT(FaultProfile::Calm().Describe(),
              HasSubstr("flap=off stall=off freeze=off clock=off"));
  FaultProfile bad;
  bad.clock_drift_ppm = 2000;
  EXPECT_EQ(bad.Validate().code(), absl::StatusCode::kInvalidArgument);
}

// A world with every newer random fault on, and hosts that allow freezes and skew: the faults
// happen, appear in the trace, and the same seed gives the same hash.
std::string RunNewFaults(uint64_t seed, std::vector<std::string>* kinds) {
  WorldOptions o;
  o.seed = seed;
  o.profile = DrawNetworkProfile(seed);
  o.profile.flap_probability = 0.3;
  o.profile.stall_rate = 2;
  o.profile.stall_mean = absl::Milliseconds(200);
  o.profile.stall_forever_probability = 0.1;
  o.profile.freeze_rate = 2;
  o.profile.freeze_mean = absl::Milliseconds(200);
  o.profile.clock_offset_max = absl::Milliseconds(100);
  o.profile.clock_drift_ppm = 200;
  o.profile.clock_step_rate = 1;
  o.trace_capacity = size_t{1} << 20;
  World w(o);
  const HostId c = *w.AddHost("client");
  const HostId s = *w.AddHost("server");
  for (HostId h : {c, s}) {
    w.SetFreezable(h, true);
    w.SetClockSkewable(h, true);
  }
  auto echo = std::make_shared<Echo>();
  auto l = *w.server_factory(s).Listen(
      Address::HostName("server", 8100),
      [echo](std::shared_ptr<Connection> conn) { conn->SetHandler(echo); });
  // A client that reconnects and writes on a timer.
  std::shared_ptr<Connection> conn;
  Env& env = w.env(c);
  class Keep : public ConnectHandler {
   public:
    explicit Keep(std::shared_ptr<Connection>* slot) : slot_(slot) {}
    void Connected(std::shared_ptr<Connection> c) override {
      *slot_ = c;
      c->SetHandler(std::make_shared<Recorder>());
    }
    void FailedConnection(const absl::Status&) override {}

   private:
    std::shared_ptr<Connection>* slot_;
  };
  std::function<void()> tick = [&] {
    if (conn == nullptr || !conn->IsOpen()) {
      conn = nullptr;
      ConnectOptions co;
      co.max_attempts = 1;
      (void)w.client_factory(c).Connect({Address::HostName("server", 8100)}, co,
                                        std::make_shared<Keep>(&conn));
    } else {
      (void)conn->Write(std::string(1000, 'q'));
    }
    env.RunAt(env.Now() + absl::Milliseconds(20), tick);
  };
  env.RunAt(env.Now(), tick);
  EXPECT_TRUE(w.RunFor(absl::Seconds(20)).ok());
  w.StopFaults();
  EXPECT_TRUE(w.RunFor(absl::Seconds(5)).ok());
  EXPECT_FALSE(w.IsFrozen(c));
  EXPECT_FALSE(w.IsFrozen(s));
  for (const char* k : {"random freeze", "random resume", "random stop reading", "flapping server",
                        "random clock step", "random clock offset"}) {
    bool seen = false;
    for (const TraceEvent& e : w.trace().Recent()) seen |= e.detail.find(k) != std::string::npos;
    if (seen) kinds->push_back(k);
  }
  return w.trace().HashHex();
}

TEST(Profile, NewRandomFaultsAreTracedAndDeterministic) {
  std::vector<std::string> kinds_a, kinds_b;
  const std::string a = RunNewFaults(11, &kinds_a);
  const std::string b = RunNewFaults(11, &kinds_b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(kinds_a, kinds_b);
  EXPECT_NE(RunNewFaults(12, &kinds_b), a);
  EXPECT_THAT(kinds_a, ::testing::IsSupersetOf({"random freeze", "random stop reading",
                                                "flapping server", "random clock offset"}));
}

}  // namespace
}  // namespace netlayer::sim
