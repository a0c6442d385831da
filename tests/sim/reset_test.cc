// RSTs other than a dying host's (an abort, World::Reset and the random reset fault, a close
// with unread input, a flapping server) travel the network like any segment (docs/SIMULATOR.md
// §10): the resetting end closes at once, its peer learns of it one latency later, and an RST
// sent into a partition is lost; the peer then hears of the reset only from the RST that
// answers its next bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using testing_util::ConnectPair;
using testing_util::Pattern;
using testing_util::Recorder;

struct Net : testing_util::RecordedPair {
  // After the partition healed and the client stayed open: its next bytes reach the server's
  // forgotten socket, whose kernel answers with an RST.
  void ExpectTheClientsNextBytesGetAnRst() {
    ASSERT_TRUE(client->Write("anyone there?").ok());
    ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
    ASSERT_EQ(rc->closes.size(), 1u);
    EXPECT_EQ(rc->closes[0].kind(), CloseReason::Kind::kReset) << rc->closes[0];
    EXPECT_FALSE(client->IsOpen());
    EXPECT_EQ(w.LiveConnections(), 0u);
  }
};

TEST(Reset, AnAbortsRstReachesThePeerOneLatencyLater) {
  Net n;
  n.server->Abort();
  EXPECT_FALSE(n.server->IsOpen());
  EXPECT_TRUE(n.client->IsOpen()) << "the peer cannot know at the instant of the abort";
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
  EXPECT_THAT(n.rc->closes[0].detail(), HasSubstr("abort"));
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

TEST(Reset, AnAbortsRstSentIntoAPartitionIsLost) {
  Net n;
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  n.server->Abort();
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(5)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "the RST never arrives";
  EXPECT_TRUE(n.rc->closes.empty());
  EXPECT_GE(n.TraceHas("RST lost (partition): abort"), 1);
  n.ExpectTheClientsNextBytesGetAnRst();
}

TEST(Reset, AScriptedResetDuringAPartitionClosesOnlyTheResettingEnd) {
  Net n;
  ASSERT_TRUE(n.client->Write(Pattern(2000, 3)).ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.Reset(*n.server).ok());
  EXPECT_FALSE(n.server->IsOpen());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  ASSERT_EQ(n.rs->closes.size(), 1u);
  EXPECT_EQ(n.rs->closes[0].kind(), CloseReason::Kind::kReset) << n.rs->closes[0];
  EXPECT_TRUE(n.rs->received.empty()) << "the bytes waiting in the partition are lost";
  EXPECT_EQ(n.w.Reset(*n.server).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  // The client's bytes, retransmitted after the heal, reach a socket its kernel forgot.
  ASSERT_EQ(n.rc->closes.size(), 1u);
  EXPECT_EQ(n.rc->closes[0].kind(), CloseReason::Kind::kReset) << n.rc->closes[0];
  EXPECT_EQ(n.w.LiveConnections(), 0u);
}

TEST(Reset, AScriptedResetWithNothingInFlightWaitsForThePeersNextBytes) {
  Net n;
  ASSERT_TRUE(n.w.Partition({n.b}, {n.a}, /*one_way=*/true).ok());  // only b -> a is blocked
  ASSERT_TRUE(n.w.Reset(*n.server).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "nothing told the client";
  n.ExpectTheClientsNextBytesGetAnRst();
}

// Closing with unread input makes the kernel send an RST (a real close() does); across a
// partition it is lost.
TEST(Reset, ACloseWithUnreadInputSendsAnRstThatAPartitionLoses) {
  Net n;
  ASSERT_TRUE(n.w.StopReading(*n.server).ok());
  ASSERT_TRUE(n.client->Write(Pattern(1000, 4)).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Milliseconds(100)).ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  n.server->Close();
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(30)).ok());
  EXPECT_FALSE(n.server->IsOpen());
  EXPECT_GE(n.TraceHas("RST lost (partition): closed with unread data"), 1);
  ASSERT_TRUE(n.w.Heal({n.a}, {n.b}).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(2)).ok());
  EXPECT_TRUE(n.client->IsOpen()) << "the RST never arrives";
  n.ExpectTheClientsNextBytesGetAnRst();
}

// A locally closed end can stay in the network long after the close (its RST lost, a peer that
// never writes again), but it lets go of its handler at the close, as a posix or asio
// connection does when its handle goes: what the handler holds (an smac partial frame's buffer
// and its memory-budget charge) does not outlive the close (hostile-peers seeds 152 and 171).
TEST(Reset, ALocallyClosedEndLetsGoOfItsHandlerAlthoughItsPeerNeverHears) {
  Net n;
  std::weak_ptr<Recorder> weak = n.rs;
  ASSERT_TRUE(n.w.StopReading(*n.server).ok());
  ASSERT_TRUE(n.client->Write(Pattern(1000, 5)).ok());
  ASSERT_TRUE(n.w.RunFor(absl::Milliseconds(100)).ok());
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  n.rs.reset();  // the end's slot holds the only reference now
  ASSERT_FALSE(weak.expired());
  n.server->Close();
  ASSERT_TRUE(n.w.RunFor(absl::Seconds(30)).ok());
  EXPECT_GE(n.TraceHas("RST lost (partition): closed with unread data"), 1);
  EXPECT_TRUE(n.client->IsOpen()) << "the peer never heard of the close";
  EXPECT_TRUE(weak.expired()) << "the closed end still holds its handler";
  auto installed = n.w.InstalledHandler(*n.server);
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(*installed, nullptr);
}

TEST(Reset, AnAbortedEndLetsGoOfItsHandler) {
  Net n;
  std::weak_ptr<Recorder> weak = n.rc;
  ASSERT_TRUE(n.w.Partition({n.a}, {n.b}).ok());
  n.rc.reset();
  n.client->Abort();
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(n.server->IsOpen()) << "the RST is lost in the partition";
}

}  // namespace
}  // namespace netlayer::sim
