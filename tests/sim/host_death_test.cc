// Hosts that die as real machines do (DESIGN.md §12): a crashed process's kernel sends a FIN
// (or an RST where input was unread) that crosses the network like data; a machine that loses
// power sends nothing; a restarted kernel answers bytes of a stream it forgot with an RST.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "netlayer/sim/fault_tape.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using testing_util::ConnectPair;
using testing_util::Pattern;
using testing_util::Recorder;

using Net = testing_util::RecordedPair;

// A crashed process's FIN is queued behind its bytes in flight, waits out the partition (the
// kernel retransmits it) and arrives after the heal: the peer reads every byte, then the end.
TEST(HostDeath, ACrashedProcessesFinArrivesOnlyAfterTheHeal) {
  Net n;
  ASSERT_TRUE(n.server->Write("last words").ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "nothing crosses a partition";
  EXPECT_TRUE(n.rc->closes.empty());
  EXPECT_TRUE(n.rc->received.empty());
  EXPECT_TRUE(n.rs->closes.empty()) << "the dead process runs no handler";
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(n.rc->received, "last words");
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kPeerClosed) << n.rc->closes[0];
  EXPECT_FALSE(n.client->IsOpen());
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

// Without a partition the FIN arrives one latency later, not at once.
TEST(HostDeath, ACrashIsLearnedOneLatencyLaterNotAtOnce) {
  Net n;
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "the peer cannot know at the instant of the crash";
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kPeerClosed);
}

// A process that dies with unread input in its socket makes its kernel send an RST, not a FIN.
TEST(HostDeath, ACrashWithUnreadInputSendsAnRstNotAFin) {
  Net n;
  ASSERT_TRUE(n.w.StopReading(*n.server).ok());
  ASSERT_TRUE(n.client->Write(Pattern(1000, 1)).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Milliseconds(100)).ok());
  ASSERT_EQ(*n.w.InFlightBytes(*n.client), 1000u) << "the bytes wait, unread, in b's socket";
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
  EXPECT_THAT(n.rc->closes[0].detail(), HasSubstr("unread"));
  EXPECT_GE(n.TraceHas("RST: b's process crashed with 1000 unread bytes"), 1);
}

// That RST, sent into a partition, is lost for good: the peer hears nothing, even after the
// heal, until it sends bytes of its own, which the kernel answers with another RST.
TEST(HostDeath, AnRstSentIntoAPartitionIsLost) {
  Net n;
  ASSERT_TRUE(n.w.StopReading(*n.server).ok());
  ASSERT_TRUE(n.client->Write(Pattern(1000, 2)).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Milliseconds(100)).ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  EXPECT_TRUE(n.rc->closes.empty()) << "the RST never arrives";
  EXPECT_TRUE(n.client->IsOpen());
  EXPECT_GE(n.TraceHas("RST lost (partition)"), 1);
  ASSERT_TRUE(n.client->Write("anyone there?").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
}

// Bytes for a crashed process's closed socket are answered with an RST (the peer had not read
// the FIN yet: it was not reading).
TEST(HostDeath, BytesForACrashedProcessesSocketGetAnRst) {
  Net n;
  ASSERT_TRUE(n.w.StopReading(*n.client).ok());
  ASSERT_TRUE(n.w.Crash(n.b).ok());
  ASSERT_TRUE(n.client->Write("late").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
}

// A machine that loses power sends nothing: its peer's connection stays open and silent, its
// writes fill the path to the send buffer and then its own output queue, until its own deadline
// (here the close linger) ends it.
TEST(HostDeath, APoweredOffHostsPeersSeeNothingUntilTheirOwnTimeouts) {
  WorldOptions o;
  o.profile.send_buffer_bytes = 16384;
  o.connection_limits.close_linger = absl::Seconds(3);
  Net n(o);
  ASSERT_TRUE(n.w.PowerOff(n.b).ok());
  EXPECT_FALSE(n.w.IsUp(n.b));
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(30)).ok());
  EXPECT_TRUE(n.client->IsOpen());
  EXPECT_TRUE(n.rc->closes.empty());
  EXPECT_TRUE(n.rs->closes.empty());
  const std::string data = Pattern(100000, 3);
  ASSERT_TRUE(n.client->Write(data).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(30)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "nothing tells the peer";
  EXPECT_TRUE(n.rc->closes.empty());
  EXPECT_EQ(*n.w.InFlightBytes(*n.client), 16384u) << "the path fills to the send buffer";
  EXPECT_EQ(n.client->QueuedOutputBytes(), data.size() - 16384) << "then the output queue grows";
  EXPECT_EQ(n.w.LiveConnections(), 1u);
  // SYNs to it are lost, not refused.
  ConnectOptions co;
  co.max_attempts = 1;
  co.attempt_timeout = absl::Seconds(2);
  auto fail = n.w.client_factory(n.a).ConnectBlocking({Address::HostName("b", 8100)}, co);
  EXPECT_THAT(std::string(fail.status().message()), HasSubstr("timed out"));
  // Its own deadline ends it: the close cannot flush, and the linger aborts it.
  n.client->Close();
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  EXPECT_EQ(n.w.LiveConnections(), 0u);
  EXPECT_TRUE(n.rc->closes.empty()) << "no ConnectionClosed after a local Close";
}

// The machine comes back as a new incarnation: its kernel answers the bytes of a stream it
// forgot with an RST, and the peer learns then.
TEST(HostDeath, BytesSentToARestartedHostGetAnRst) {
  Net n;
  ASSERT_TRUE(n.w.PowerOff(n.b).ok());
  ASSERT_TRUE(n.client->Write("before the restart").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  EXPECT_TRUE(n.rc->closes.empty());
  ASSERT_TRUE(n.w.Restart(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u) << "the waiting bytes met the new kernel";
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
  EXPECT_THAT(n.rc->closes[0].detail(), HasSubstr("does not know"));
  EXPECT_TRUE(n.rs->closes.empty());
}

TEST(HostDeath, BytesWrittenAfterTheRestartGetAnRstToo) {
  Net n;
  ASSERT_TRUE(n.w.PowerOff(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  ASSERT_TRUE(n.w.Restart(n.b).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "a silent stream stays open until its bytes are answered";
  ASSERT_TRUE(n.client->Write("hello?").ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset);
}

// PowerOff's preconditions, and the liveness phase powers hosts back on.
TEST(HostDeath, PowerOffPreconditionsAndTheLivenessPhase) {
  Net n;
  EXPECT_EQ(n.w.PowerOff(HostId{42}).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(n.w.PowerOff(n.b).ok());
  EXPECT_EQ(n.w.PowerOff(n.b).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(n.w.Crash(n.b).code(), absl::StatusCode::kFailedPrecondition);
  n.w.StopFaults();
  EXPECT_TRUE(n.w.IsUp(n.b));
}

// The random power-failure process: drawn, traced, recorded on the fault tape as "power-off",
// and replayed to the same trace hash.
TEST(HostDeath, RandomPowerOffsAreRecordedAndReplayed) {
  auto run = [](FaultTape* record, const FaultTape* replay) {
    WorldOptions o;
    o.seed = 7;
    o.profile.power_off_rate = 2.0;
    o.profile.down_mean = absl::Milliseconds(300);
    o.record_tape = record;
    o.replay_tape = replay;
    World w(o);
    const HostId a = *w.AddHost("a");
    const HostId b = *w.AddHost("b");
    w.SetCrashable(b, true);
    std::shared_ptr<Listener> l;
    w.SetRestartHook(b, [&] { l = *w.server_factory(b).Listen(Address::HostName("b", 8100)); });
    l = *w.server_factory(b).Listen(Address::HostName("b", 8100), [](auto c) {
      c->SetHandler(std::make_shared<Recorder>());
    });
    std::vector<std::shared_ptr<Connection>> conns;
    for (int i = 0; i < 20; ++i) {
      ConnectOptions co;
      co.max_attempts = 1;
      co.attempt_timeout = absl::Milliseconds(200);
      auto c = w.client_factory(a).ConnectBlocking({Address::HostName("b", 8100)}, co);
      if (c.ok()) {
        (*c)->SetHandler(std::make_shared<Recorder>());
        (void)(*c)->Write("ping");
        conns.push_back(*c);
      }
      EXPECT_TRUE(w.RunFor(absl::Milliseconds(300)).ok());
    }
    int power_offs = 0;
    for (const TraceEvent& e : w.trace().Recent()) {
      power_offs += e.detail == "random power off" ? 1 : 0;
    }
    return std::pair{w.trace().hash(), power_offs};
  };
  FaultTape tape;
  const auto [hash, power_offs] = run(&tape, nullptr);
  EXPECT_GT(power_offs, 0);
  int on_tape = 0;
  for (const TapeEntry& e : tape.entries) on_tape += e.kind == "power-off" ? 1 : 0;
  EXPECT_EQ(on_tape, power_offs);
  absl::StatusOr<FaultTape> parsed = FaultTape::Parse(tape.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto [replayed, replay_offs] = run(nullptr, &*parsed);
  EXPECT_EQ(replayed, hash);
  EXPECT_EQ(replay_offs, power_offs);
}

// DrawFaultProfile turns the power-failure process on for some seeds only (swarm testing).
TEST(HostDeath, SomeSeedsDrawPowerOffsAndSomeDoNot) {
  int on = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) on += DrawFaultProfile(seed).power_off_rate > 0;
  EXPECT_GT(on, 0);
  EXPECT_LT(on, 40);
}

}  // namespace
}  // namespace netlayer::sim
