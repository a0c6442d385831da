// The network model: split/merge keeps bytes exactly, back-pressure, partitions, clogs,
// connect refused / hanging / failing fast, reset, graceful close, crash and restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using testing_util::ConnectPair;
using testing_util::Pattern;
using testing_util::Recorder;

constexpr absl::Duration kLong = absl::Seconds(60);

struct Net {
  explicit Net(WorldOptions o = {}) : w(o), a(*w.AddHost("a")), b(*w.AddHost("b")) {}
  World w;
  HostId a, b;
  std::shared_ptr<Listener> listener;
};

// Small chunks, random splits and merges, both directions at once: every byte arrives, in
// order, exactly once; and deliveries really are split and merged.
TEST(Network, SplitAndMergeKeepBytesInOrderExactly) {
  std::set<size_t> delivery_sizes;
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    WorldOptions o;
    o.seed = seed;
    o.profile = DrawNetworkProfile(seed);
    o.profile.max_write_chunk = 1 + seed % 13;
    o.profile.max_read_chunk = 1 + seed % 17;
    o.profile.full_write_probability = 0.3;
    o.profile.full_read_probability = 0.3;
    Net n(o);
    auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
    ASSERT_NE(s, nullptr);
    auto rc = std::make_shared<Recorder>();
    auto rs = std::make_shared<Recorder>();
    c->SetHandler(rc);
    s->SetHandler(rs);
    const std::string up = Pattern(20000, seed);
    const std::string down = Pattern(15000, seed + 100);
    for (size_t off = 0; off < up.size(); off += 100)
      ASSERT_TRUE(c->Write(up.substr(off, 100)).ok());
    for (size_t off = 0; off < down.size(); off += 300) {
      ASSERT_TRUE(s->Write(down.substr(off, 300)).ok());
    }
    ASSERT_TRUE(n.w.RunUntil(
        [&] { return rs->received.size() >= up.size() && rc->received.size() >= down.size(); },
        n.w.Now() + kLong));
    ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
    EXPECT_TRUE(rs->received == up) << "seed " << seed;
    EXPECT_TRUE(rc->received == down) << "seed " << seed;
    delivery_sizes.insert(rs->chunks.begin(), rs->chunks.end());
  }
  EXPECT_GT(delivery_sizes.size(), 10u) << "deliveries should come in many sizes";
  EXPECT_TRUE(delivery_sizes.contains(1)) << "a single byte split off at least once";
}

// The network holds at most send_buffer_bytes per direction; a receiver that does not read
// (no handler, pending input at its bound) pushes back to the writer's output queue, whose
// bound then fails Write with ResourceExhausted. Nothing is lost once it reads again.
TEST(Network, BackPressureBoundsEveryBuffer) {
  WorldOptions o;
  o.profile.send_buffer_bytes = 4096;
  o.profile.max_write_chunk = 1000;
  o.connection_limits.max_pending_input_bytes = 8192;
  o.connection_limits.max_output_bytes = 100000;
  Net n(o);
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  const std::string data = Pattern(100000, 5);
  ASSERT_TRUE(c->Write(data).ok());
  // The write sent what the network took at once (a direct send) and queued the rest.
  EXPECT_LE(c->QueuedOutputBytes(), data.size());
  EXPECT_EQ(
      c->Write(std::string(o.connection_limits.max_output_bytes - c->QueuedOutputBytes() + 1, 'x'))
          .code(),
      absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  const size_t in_flight = *n.w.InFlightBytes(*c);
  EXPECT_LE(in_flight, 4096u);
  EXPECT_GT(in_flight, 0u);
  // At most the pending-input bound plus one read's worth sits in the receiver.
  EXPECT_GE(c->QueuedOutputBytes(), data.size() - 4096 - 8192 - 65536);
  EXPECT_TRUE(c->IsOpen());
  auto r = std::make_shared<Recorder>();
  s->SetHandler(r);
  ASSERT_TRUE(n.w.RunUntil([&] { return r->received.size() == data.size(); }, n.w.Now() + kLong));
  EXPECT_TRUE(r->received == data);
  EXPECT_EQ(c->QueuedOutputBytes(), 0u);
  EXPECT_TRUE(c->Write("more").ok());
}

TEST(Network, TwoWayPartitionStallsAndHealResumes) {
  Net n;
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(c->Write("to b").ok());
  ASSERT_TRUE(s->Write("to a").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(30)).ok());
  EXPECT_EQ(rs->received, "");
  EXPECT_EQ(rc->received, "");
  EXPECT_TRUE(c->IsOpen() && s->IsOpen()) << "a partition stalls, it does not break";
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(rs->received, "to b");
  EXPECT_EQ(rc->received, "to a");
}

TEST(Network, OneWayPartitionBlocksOnlyOneDirection) {
  Net n;
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}, /*one_way=*/true).ok());
  ASSERT_TRUE(c->Write("a to b").ok());
  ASSERT_TRUE(s->Write("b to a").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  EXPECT_EQ(rs->received, "") << "a -> b is blocked";
  EXPECT_EQ(rc->received, "b to a") << "b -> a flows";
  n.w.HealAll();
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(rs->received, "a to b");
}

TEST(Network, ClogDelaysOneDirectionForItsDuration) {
  Net n;
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rs = std::make_shared<Recorder>();
  s->SetHandler(rs);
  const absl::Time t0 = n.w.Now();
  ASSERT_TRUE(n.w.Clog(n.a, n.b, absl::Seconds(5)).ok());
  ASSERT_TRUE(c->Write("clogged").ok());
  EXPECT_FALSE(n.w.RunUntil([] { return false; }, t0 + absl::Milliseconds(4999)));
  EXPECT_EQ(rs->received, "");
  ASSERT_TRUE(n.w.RunUntil([&] { return !rs->received.empty(); }, t0 + absl::Seconds(6)));
  EXPECT_EQ(rs->received, "clogged");
  EXPECT_GE(n.w.Now(), t0 + absl::Seconds(5));
}

TEST(Network, ConnectIsRefusedWithoutAListener) {
  Net n;
  ConnectOptions o;
  o.max_attempts = 1;
  auto c = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 9)}, o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("connection refused"));
  EXPECT_LT(n.w.Elapsed(), absl::Seconds(1)) << "a refusal is fast";
}

TEST(Network, ConnectUnderAPartitionHangsUntilTheAttemptTimeout) {
  Net n;
  ASSERT_TRUE(n.w.server_factory(n.b).Listen(Address::HostName("b", 8100)).ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ConnectOptions o;
  o.max_attempts = 1;
  o.attempt_timeout = absl::Seconds(3);
  const absl::Time t0 = n.w.Now();
  auto c = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("timed out"));
  EXPECT_EQ(n.w.Now(), t0 + absl::Seconds(3)) << "fails exactly at the attempt deadline";
  EXPECT_FALSE(testing_util::Find(n.w, TraceKind::kConnect, "SYN to b:8100 lost").empty());
}

TEST(Network, ConnectHealedBeforeTheTimeoutSucceedsOnRetransmit) {
  Net n;
  auto l = *n.w.server_factory(n.b).Listen(Address::HostName("b", 8100));
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.At(n.w.Now() + absl::Milliseconds(1500), [&] { n.w.HealAll(); }).ok());
  ConnectOptions o;
  o.max_attempts = 1;
  o.attempt_timeout = absl::Seconds(10);
  auto c = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  ASSERT_TRUE(c.ok()) << c.status();
  // SYN at 0 lost, retransmitted at 1 s (lost), 3 s (arrives).
  EXPECT_GE(n.w.Elapsed(), absl::Seconds(3));
  EXPECT_NE(l->Accept(n.w.Now() + absl::Seconds(1)), nullptr);
}

TEST(Network, ConnectFailsFastAtRandom) {
  WorldOptions wo;
  wo.profile.connect_fail_probability = 1.0;
  Net n(wo);
  ASSERT_TRUE(n.w.server_factory(n.b).Listen(Address::HostName("b", 8100)).ok());
  ConnectOptions o;
  o.max_attempts = 2;
  o.min_delay = o.max_delay = absl::Milliseconds(10);
  auto c = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("injected"));
  EXPECT_LT(n.w.Elapsed(), absl::Seconds(1));
  // The liveness phase turns it off.
  n.w.StopFaults();
  EXPECT_TRUE(n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o).ok());
}

TEST(Network, ResetLosesUnreadDataAndBothEndsSeeAnError) {
  Net n;
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  ASSERT_TRUE(c->Write(Pattern(50000, 1)).ok());
  ASSERT_TRUE(n.w.Reset(*c).ok());
  EXPECT_FALSE(c->IsOpen());
  EXPECT_TRUE(s->IsOpen()) << "the RST is on its way";
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_FALSE(s->IsOpen());
  ASSERT_EQ(rc->closes.size(), 1u);
  ASSERT_EQ(rs->closes.size(), 1u);
  EXPECT_EQ(rc->closes[0].kind(), CloseReason::Kind::kReset);
  EXPECT_EQ(rs->closes[0].kind(), CloseReason::Kind::kReset);
  EXPECT_LT(rs->received.size(), 50000u) << "data in the network is lost";
  EXPECT_EQ(c->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(n.w.Reset(*c).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

TEST(Network, GracefulCloseDeliversInFlightDataThenEndOfStream) {
  WorldOptions wo;
  wo.profile.max_write_chunk = 777;
  wo.profile.send_buffer_bytes = 5000;
  Net n(wo);
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  const std::string data = Pattern(100000, 2);
  ASSERT_TRUE(c->Write(data).ok());
  c->Close();
  EXPECT_FALSE(c->IsOpen());
  ASSERT_TRUE(n.w.RunUntil([&] { return !rs->closes.empty(); }, n.w.Now() + kLong));
  EXPECT_TRUE(rs->received == data);
  EXPECT_EQ(rs->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_FALSE(s->IsOpen());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(rc->closes.empty()) << "a local close is never notified";
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

TEST(Network, CrashBreaksConnectionsAndListenersAndRestartBringsTheAppBack) {
  Net n;
  auto [c, s] = ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  auto rs = std::make_shared<Recorder>();
  c->SetHandler(rc);
  s->SetHandler(rs);
  std::shared_ptr<Listener> relisten;
  n.w.SetRestartHook(
      n.b, [&] { relisten = *n.w.server_factory(n.b).Listen(Address::HostName("b", 8100)); });
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  EXPECT_FALSE(n.listener->IsOpen()) << "a crashed host's listeners vanish";
  EXPECT_EQ(n.listener->Accept(), nullptr);
  EXPECT_FALSE(s->IsOpen());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  // Its kernel closed the stream: the peer reads a FIN (DESIGN.md §12).
  ASSERT_EQ(rc->closes.size(), 1u);
  EXPECT_EQ(rc->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_TRUE(rs->closes.empty()) << "the dead process runs no handler";
  EXPECT_EQ(n.w.server_factory(n.b).Listen(Address::HostName("b", 1)).status().code(),
            absl::StatusCode::kUnavailable);
  // Connecting to a host whose process crashed is refused by its kernel (nobody listens).
  ConnectOptions o;
  o.max_attempts = 1;
  o.attempt_timeout = absl::Seconds(2);
  auto fail = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  EXPECT_THAT(std::string(fail.status().message()), HasSubstr("refused"));
  ASSERT_TRUE(n.w.Restart(n.b).ok());
  auto ok = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_NE(relisten, nullptr);
  EXPECT_NE(relisten->Accept(n.w.Now() + absl::Seconds(1)), nullptr);
}

TEST(Network, StopFaultsHealsEverythingAndRestartsDownHosts) {
  Net n;
  int restarts = 0;
  n.w.SetRestartHook(n.b, [&] { ++restarts; });
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  n.w.StopFaults();
  EXPECT_TRUE(n.w.faults_stopped());
  EXPECT_TRUE(n.w.IsUp(n.b));
  ASSERT_TRUE(n.w.RunFor(absl::Milliseconds(1)).ok());
  EXPECT_EQ(restarts, 1);
  auto l = *n.w.server_factory(n.b).Listen(Address::HostName("b", 8100));
  ConnectOptions o;
  o.max_attempts = 1;
  EXPECT_TRUE(n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, o).ok());
}

TEST(Network, ListenerCloseResetsQueuedConnectionsAndWakesAccept) {
  Net n;
  auto l = *n.w.server_factory(n.b).Listen(Address::HostName("b", 8100));
  auto c = *n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, {});
  auto rc = std::make_shared<Recorder>();
  c->SetHandler(rc);
  ASSERT_TRUE(n.w.At(n.w.Now() + absl::Seconds(1), [&] { l->Close(); }).ok());
  // The queued connection is reset by the close, and Accept returns nullptr.
  EXPECT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  EXPECT_EQ(l->Accept(absl::InfiniteFuture()), nullptr);
  ASSERT_EQ(rc->closes.size(), 1u);
  EXPECT_EQ(rc->closes[0].kind(), CloseReason::Kind::kReset);
  // Listening again on the port works.
  EXPECT_TRUE(n.w.server_factory(n.b).Listen(Address::HostName("b", 8100)).ok());
}

TEST(Network, CallbackListenerAndRangeFor) {
  Net n;
  std::vector<std::shared_ptr<Connection>> got;
  auto cb = *n.w.server_factory(n.b).Listen(Address::HostName("b", 1),
                                            [&](std::shared_ptr<Connection> c) {
                                              EXPECT_TRUE(n.w.InCallback());
                                              got.push_back(std::move(c));
                                            });
  EXPECT_EQ(cb->Accept(), nullptr) << "the callback form takes connections itself";
  ASSERT_TRUE(n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 1)}, {}).ok());
  EXPECT_EQ(got.size(), 1u);

  auto l = *n.w.server_factory(n.b).Listen(Address::HostName("b", 0));
  EXPECT_GE(l->address().port(), 49152) << "port 0 gives an ephemeral port";
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(n.w.client_factory(n.a).Connect({l->address()}, {}, nullptr).status().code() ==
                absl::StatusCode::kInvalidArgument);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(n.w.client_factory(n.a).ConnectBlocking({l->address()}, {}).ok());
  }
  ASSERT_TRUE(n.w.At(n.w.Now() + absl::Seconds(1), [&] { l->Close(); }).ok());
  int accepted = 0;
  for (const std::shared_ptr<Connection>& c : *l) {
    EXPECT_TRUE(c->IsOpen());
    if (++accepted == 3) break;
  }
  EXPECT_EQ(accepted, 3);
}

TEST(Network, FaultProfileDrawsDifferFromSeedToSeedAndValidate) {
  std::set<std::string> profiles;
  int with_faults = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    FaultProfile p = DrawFaultProfile(seed);
    EXPECT_TRUE(p.Validate().ok()) << p.ToString();
    EXPECT_FALSE(DrawNetworkProfile(seed).HasRandomFaults());
    EXPECT_EQ(DrawNetworkProfile(seed).max_write_chunk, p.max_write_chunk);
    with_faults += p.HasRandomFaults();
    profiles.insert(p.ToString());
    EXPECT_EQ(DrawFaultProfile(seed).ToString(), p.ToString()) << "drawing is deterministic";
  }
  EXPECT_EQ(profiles.size(), 50u);
  EXPECT_GT(with_faults, 40);
}

}  // namespace
}  // namespace netlayer::sim

namespace netlayer::sim {
namespace {

// A reader that never reads, then closes: what waits for it is discarded, which unblocks the
// writer, and the writer then sees the end of the stream.
TEST(Network, ClosingAReaderThatWasBlockedUnblocksTheWriter) {
  WorldOptions o;
  o.profile.send_buffer_bytes = 4096;
  o.connection_limits.max_pending_input_bytes = 4096;
  Net n(o);
  auto [c, s] = testing_util::ConnectPair(n.w, n.a, n.listener, n.b);
  ASSERT_NE(s, nullptr);
  auto rc = std::make_shared<Recorder>();
  c->SetHandler(rc);
  ASSERT_TRUE(c->Write(Pattern(100000, 9)).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_GT(c->QueuedOutputBytes(), 0u) << "the writer is held back";
  s->Close();
  ASSERT_TRUE(n.w.RunUntil([&] { return !rc->closes.empty(); }, n.w.Now() + absl::Seconds(10)));
  EXPECT_EQ(rc->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

}  // namespace
}  // namespace netlayer::sim
