// The output side of ConnectionState, driven directly with no I/O and no thread: the single-sender
// claim (a direct writer, the transport), the bound, the close sequence (flush bounded by the
// linger, FIN, drain), abort, and release of the stream. Every backend maps these Actions to its
// own calls; the contract suite checks the same promises on each of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netlayer/core/connection_state.h"
#include "netlayer/core/generator.h"
#include "null_connection.h"

namespace netlayer {
namespace {

using test_support::NullConnection;

using Actions = ConnectionState::Actions;
using Kind = ConnectionState::ReadPlan::Kind;
using Phase = ConnectionState::Phase;

const absl::Time kT0 = absl::FromUnixSeconds(1000);

class Recorder : public ConnectionHandler {
 public:
  void InputData(Connection&, std::string_view data) override {
    log.push_back("in:" + std::string(data));
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    log.push_back("closed:" + reason.ToString());
  }
  std::vector<std::string> log;
};

std::string Str(const Actions& a) {
  std::string s;
  if (a.wake_transport) s += "wake_transport ";
  if (a.unblock_sender) s += "unblock_sender ";
  if (a.shutdown_write) s += "shutdown_write ";
  if (a.reset) s += "reset ";
  if (a.wake_reader) s += "wake_reader ";
  if (a.release) s += "release ";
  if (!s.empty()) s.pop_back();
  return s;
}

// A driver with no I/O: `wire` is what the network took, in order.
struct Driver {
  explicit Driver(ConnectionLimits limits = {}) : state(limits) {}
  ConnectionState state;
  std::string wire;
  int fins = 0;
  int resets = 0;
  void Carry(const Actions& a) {
    if (a.shutdown_write) ++fins;
    if (a.reset) ++resets;
  }
  // A write whose direct send (if it gets the claim) sends `direct_sent` bytes.
  absl::Status Write(std::vector<std::string_view> pieces, size_t direct_sent = 0) {
    ConnectionState::WriteStart start = state.BeginWrite(pieces);
    Carry(start.actions);
    if (!start.send_direct) return start.status;
    std::string all;
    for (std::string_view p : pieces) all.append(p);
    wire.append(all.substr(0, direct_sent));
    state.OnDirectSent(pieces, direct_sent);
    Carry(state.EndWriterClaim(kT0));
    return start.status;
  }
  // The transport sends at most `most` bytes per claim until nothing is left to claim.
  void Pump(size_t most = SIZE_MAX, absl::Time now = kT0) {
    while (state.ClaimTransport()) {
      std::string_view views[8];
      const size_t n = state.PeekOutput(absl::MakeSpan(views));
      size_t sent = 0;
      for (size_t i = 0; i < n && sent < most; ++i) {
        const std::string_view v = views[i].substr(0, most - sent);
        wire.append(v);
        sent += v.size();
      }
      Carry(state.OnSent(sent, now));
    }
  }
};

TEST(ConnectionOutputTest, IdleWriterSendsDirectlyAndItsRestGoesAheadOfLaterWrites) {
  Driver d;
  const std::vector<std::string_view> first = {"abc", "def"};
  ConnectionState::WriteStart start = d.state.BeginWrite(first);
  ASSERT_TRUE(start.status.ok());
  ASSERT_TRUE(start.send_direct);
  EXPECT_EQ(d.state.sender(), ConnectionState::Sender::kWriter);
  // Another thread writes while the first sends without the lock: queued, the transport stays
  // asleep (the writer hands over when it ends its claim).
  ConnectionState::WriteStart later = d.state.BeginWrite({"XY"});
  EXPECT_TRUE(later.status.ok());
  EXPECT_FALSE(later.send_direct);
  EXPECT_EQ(Str(later.actions), "");
  EXPECT_FALSE(d.state.ClaimTransport()) << "one sender at a time";
  d.wire = "ab";
  d.state.OnDirectSent(first, 2);
  EXPECT_FALSE(d.state.ContinueAsWriter()) << "the socket was full: hand over";
  EXPECT_EQ(Str(d.state.EndWriterClaim(kT0)), "wake_transport");
  d.Pump();
  EXPECT_EQ(d.wire, "abcdefXY");
}

TEST(ConnectionOutputTest, WriterThatSentEverythingDrainsTheQueueForBoundedRounds) {
  ConnectionLimits limits;
  limits.max_writer_drain_rounds = 2;
  Driver d(limits);
  const std::vector<std::string_view> mine = {"12"};
  ASSERT_TRUE(d.state.BeginWrite(mine).send_direct);
  ASSERT_TRUE(d.state.BeginWrite({"34"}).status.ok());
  d.state.OnDirectSent(mine, 2);
  d.wire = "12";
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(d.state.ContinueAsWriter()) << round;
    std::string_view views[4];
    const size_t n = d.state.PeekOutput(absl::MakeSpan(views));
    ASSERT_EQ(n, 1u);
    d.wire.append(views[0]);
    EXPECT_EQ(Str(d.state.OnSent(views[0].size(), kT0)), "") << "the writer keeps its claim";
    ASSERT_TRUE(d.state.BeginWrite({round == 0 ? "56" : "78"}).status.ok());
  }
  EXPECT_FALSE(d.state.ContinueAsWriter()) << "at most max_writer_drain_rounds";
  EXPECT_EQ(Str(d.state.EndWriterClaim(kT0)), "wake_transport");
  d.Pump();
  EXPECT_EQ(d.wire, "12345678");
}

TEST(ConnectionOutputTest, SentChunksAreReusedWhileOutputWaitsAndFreedWhenItDrains) {
  Driver d;
  const std::string big(256 << 10, 'a');
  const std::string other(256 << 10, 'b');
  // The first write is sent directly, but nothing of it goes out: its rest is a queued chunk.
  ASSERT_TRUE(d.Write({big}, 0).ok());
  ASSERT_TRUE(d.Write({other}).ok());
  ASSERT_TRUE(d.state.ClaimTransport());
  std::string_view views[8];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 2u);
  const char* first_storage = views[0].data();
  d.wire.append(views[0]);
  d.state.OnSent(views[0].size(), kT0);  // the first chunk is sent; the second still waits
  EXPECT_GE(d.state.spare_output_bytes(), big.size()) << "the sent chunk's storage is kept";
  // The next queued write reuses it (no fresh allocation while the connection is busy).
  ASSERT_TRUE(d.Write({std::string_view(big).substr(0, 1000), "xyz"}).ok());
  EXPECT_EQ(d.state.spare_output_bytes(), 0u);
  ASSERT_TRUE(d.state.ClaimTransport());
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 2u);
  EXPECT_EQ(views[1].data(), first_storage);
  EXPECT_EQ(views[1], big.substr(0, 1000) + "xyz");
  d.state.OnSent(0, kT0);
  d.Pump();
  EXPECT_EQ(d.wire, big + other + big.substr(0, 1000) + "xyz");
  EXPECT_EQ(d.state.spare_output_bytes(), 0u) << "an idle connection keeps no spare storage";
}

TEST(ConnectionOutputTest, SpareChunksAreBounded) {
  Driver d;
  const std::string big(3 << 20, 'c');
  ASSERT_TRUE(d.Write({"x"}, 0).ok());  // a queued byte keeps the queue from draining
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(d.Write({big}).ok());
  // Send everything but the last byte: six large chunks become spares as they go.
  ASSERT_TRUE(d.state.ClaimTransport());
  std::string_view views[8];
  const size_t n = d.state.PeekOutput(absl::MakeSpan(views));
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += views[i].size();
  d.state.OnSent(total - 1, kT0);
  EXPECT_GT(d.state.spare_output_bytes(), 0u);
  EXPECT_LE(d.state.spare_output_bytes(), size_t{16} << 20) << "at most 16 MiB of spares";
  d.Pump();
  EXPECT_EQ(d.state.spare_output_bytes(), 0u);
}

// A sender that blocks until all it peeked is sent (posix's output thread) peeks a bounded
// amount, so the chunks it sent become spares while the rest of the queue still waits.
TEST(ConnectionOutputTest, PeekOutputViewsAtMostMaxBytes) {
  Driver d;
  const std::string a(256 << 10, 'a');
  const std::string b(256 << 10, 'b');
  ASSERT_TRUE(d.Write({a}, 0).ok());
  ASSERT_TRUE(d.Write({b}).ok());
  ASSERT_TRUE(d.state.ClaimTransport());
  std::string_view views[8];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views), 300 << 10), 2u);
  EXPECT_EQ(views[0], a);
  EXPECT_EQ(views[1], b.substr(0, (300 << 10) - a.size())) << "the last view is cut at the bound";
  d.wire.append(views[0]);
  d.wire.append(views[1]);
  d.Carry(d.state.OnSent(300 << 10, kT0));
  EXPECT_GE(d.state.spare_output_bytes(), a.size()) << "the sent chunk is a spare";
  EXPECT_EQ(d.state.output_bytes(), a.size() + b.size() - (300 << 10));
  ASSERT_TRUE(d.state.ClaimTransport());
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views), 1), 1u);
  EXPECT_EQ(views[0], "b") << "a one-byte peek views one byte";
  d.Carry(d.state.OnSent(0, kT0));
  d.Pump();
  EXPECT_EQ(d.wire, a + b);
}

// By default an idle connection holds no spare storage. A backend that frees it once the
// connection stays idle keeps it across a drained queue, for the next burst of writes, until the
// queue has stayed drained for kSpareStorageIdleTime.
TEST(ConnectionOutputTest, SparesOutliveADrainedQueueUntilItStaysIdleWhenTheBackendAsks) {
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "kept when drained" : "freed when drained");
    Driver d;
    if (keep) d.state.KeepSparesWhenDrained();
    const std::string big(256 << 10, 'a');
    ASSERT_TRUE(d.Write({big}, 0).ok());  // nothing sent directly: one queued chunk
    ASSERT_TRUE(d.state.ClaimTransport());
    std::string_view views[8];
    ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u);
    const char* storage = views[0].data();
    d.Carry(d.state.OnSent(views[0].size(), kT0));
    EXPECT_EQ(d.state.output_bytes(), 0u);
    if (!keep) {
      EXPECT_EQ(d.state.spare_output_bytes(), 0u) << "an idle connection keeps no spare storage";
      EXPECT_EQ(d.state.SpareStorageDeadline(), absl::InfiniteFuture());
      continue;
    }
    EXPECT_GE(d.state.spare_output_bytes(), big.size());
    EXPECT_EQ(d.state.SpareStorageDeadline(), kT0 + ConnectionState::kSpareStorageIdleTime);
    d.state.OnSpareStorageDeadline(kT0 + ConnectionState::kSpareStorageIdleTime / 2);
    EXPECT_GE(d.state.spare_output_bytes(), big.size()) << "not idle long enough yet";
    // The next burst: a direct send that the socket does not take is copied into the spare.
    ASSERT_TRUE(d.Write({std::string_view(big).substr(0, 1000)}, 10).ok());
    EXPECT_EQ(d.state.spare_output_bytes(), 0u) << "the spare was taken";
    ASSERT_TRUE(d.state.ClaimTransport());
    ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u);
    EXPECT_EQ(views[0].data(), storage) << "the queued rest reuses the spare's storage";
    EXPECT_EQ(d.state.SpareStorageDeadline(), absl::InfiniteFuture()) << "output is queued";
    const absl::Time t1 = kT0 + absl::Seconds(1);
    d.Carry(d.state.OnSent(views[0].size(), t1));
    EXPECT_GT(d.state.spare_output_bytes(), 0u);
    // Idle again from t1: the deadline counts from the last drain, not the first.
    EXPECT_EQ(d.state.SpareStorageDeadline(), t1 + ConnectionState::kSpareStorageIdleTime);
    d.state.OnSpareStorageDeadline(t1 + ConnectionState::kSpareStorageIdleTime);
    EXPECT_EQ(d.state.spare_output_bytes(), 0u) << "freed once idle for the idle time";
    EXPECT_EQ(d.state.SpareStorageDeadline(), absl::InfiniteFuture()) << "nothing left to free";
  }
}

TEST(ConnectionOutputTest, BoundCountsTheDirectWritersBytesAllOrNothing) {
  ConnectionLimits limits;
  limits.max_output_bytes = 10;
  Driver d(limits);
  const std::vector<std::string_view> eight = {"12345678"};
  ASSERT_TRUE(d.state.BeginWrite(eight).send_direct);
  absl::Status over = d.state.BeginWrite({"ab", "c"}).status;
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.message()), testing::HasSubstr("limit of 10"));
  EXPECT_TRUE(d.state.BeginWrite({"ab"}).status.ok());
  d.state.OnDirectSent(eight, 0);  // nothing went: the whole write is queued ahead of "ab"
  EXPECT_EQ(d.state.output_bytes(), 10u);
  d.Carry(d.state.EndWriterClaim(kT0));
  EXPECT_EQ(d.Write({"x"}).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(d.state.IsOpen());
  d.Pump();
  EXPECT_EQ(d.wire, "12345678ab");
  EXPECT_EQ(d.state.BeginWrite({std::string(11, 'z')}).status.code(),
            absl::StatusCode::kResourceExhausted)
      << "a write larger than the bound never claims";
}

TEST(ConnectionOutputTest, CloseFlushesThenSendsFinThenDrainsUntilThePeersEnd) {
  Driver d;
  ASSERT_TRUE(d.Write({"hello", " ", "world"}).ok());
  Actions a = d.state.Close(kT0);
  EXPECT_EQ(Str(a), "wake_transport wake_reader");
  EXPECT_EQ(d.state.phase(), Phase::kClosing);
  ConnectionState::ReadPlan plan = d.state.PlanRead();
  EXPECT_EQ(plan.kind, Kind::kRead);
  EXPECT_TRUE(plan.discard);
  EXPECT_EQ(plan.deadline, kT0 + d.state.limits().close_linger);
  d.Pump(6, kT0 + absl::Seconds(1));
  EXPECT_EQ(d.wire, "hello world");
  EXPECT_EQ(d.fins, 1);
  EXPECT_EQ(d.state.phase(), Phase::kClosed);
  plan = d.state.PlanRead();
  EXPECT_EQ(plan.kind, Kind::kRead) << "draining";
  EXPECT_EQ(plan.deadline, kT0 + absl::Seconds(1) + d.state.limits().close_drain);
  EXPECT_EQ(Str(d.state.OnEndOfStream()), "wake_reader");
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
  EXPECT_EQ(Str(d.state.OnTransportDone()), "release");
  EXPECT_EQ(d.resets, 0);
}

TEST(ConnectionOutputTest, CloseWithNothingQueuedSendsFinAtOnceAndIsIdempotent) {
  Driver d;
  EXPECT_EQ(Str(d.state.Close(kT0)), "wake_transport shutdown_write wake_reader");
  EXPECT_EQ(Str(d.state.Close(kT0)), "");
  EXPECT_EQ(Str(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, ""))),
            "wake_transport wake_reader")
      << "a reset while draining ends the drain";
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
}

TEST(ConnectionOutputTest, CloseWhileAWriterSendsFlushesItsRestBeforeTheFin) {
  Driver d;
  const std::vector<std::string_view> w = {"direct-write"};
  ASSERT_TRUE(d.state.BeginWrite(w).send_direct);
  EXPECT_EQ(Str(d.state.Close(kT0)), "wake_reader") << "the writer still holds the claim";
  d.wire = "direct";
  d.state.OnDirectSent(w, 6);
  EXPECT_EQ(Str(d.state.EndWriterClaim(kT0)), "wake_transport");
  d.Pump();
  EXPECT_EQ(d.wire, "direct-write");
  EXPECT_EQ(d.fins, 1);
}

TEST(ConnectionOutputTest, LingerPassedWithOutputUnsentAbortsTheStream) {
  Driver d;
  ASSERT_TRUE(d.Write({"never read"}).ok());
  d.Carry(d.state.Close(kT0));
  const absl::Time linger = kT0 + d.state.limits().close_linger;
  EXPECT_EQ(Str(d.state.OnDeadline(linger - absl::Nanoseconds(1))), "");
  EXPECT_EQ(d.state.phase(), Phase::kClosing);
  // The transport is blocked in a send to a peer that does not read.
  ASSERT_TRUE(d.state.ClaimTransport());
  std::string_view views[2];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u);
  EXPECT_EQ(Str(d.state.OnDeadline(linger)), "wake_transport unblock_sender reset wake_reader");
  EXPECT_EQ(views[0], "never read") << "views stay valid until the sender reports";
  d.Carry(d.state.OnSendError(CloseReason(CloseReason::Kind::kError, "EPIPE")));
  EXPECT_EQ(d.state.phase(), Phase::kClosed);
  EXPECT_EQ(d.state.output_bytes(), 0u);
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
  EXPECT_EQ(d.fins, 0) << "an aborted stream sends no FIN";
}

TEST(ConnectionOutputTest, DrainDeadlineEndsTheWaitForThePeer) {
  Driver d;
  d.Carry(d.state.Close(kT0));
  ASSERT_EQ(d.fins, 1);
  const absl::Time drain = kT0 + d.state.limits().close_drain;
  EXPECT_EQ(d.state.PlanRead().deadline, drain);
  EXPECT_EQ(Str(d.state.OnDeadline(drain)), "wake_reader");
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
}

TEST(ConnectionOutputTest, AbortDiscardsOutputResetsOnceAndNeverNotifiesLocally) {
  Driver d;
  NullConnection conn;
  NoLock lock;
  ASSERT_TRUE(d.Write({"unsent"}).ok());
  ASSERT_EQ(d.state.OnInput("undelivered"), nullptr);
  EXPECT_EQ(Str(d.state.Abort()), "wake_transport reset wake_reader");
  EXPECT_EQ(Str(d.state.Abort()), "") << "idempotent";
  EXPECT_EQ(d.state.output_bytes(), 0u);
  absl::Status s = d.Write({"x"});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), testing::HasSubstr("aborted"));
  EXPECT_EQ(Str(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, ""))), "");
  auto h = std::make_shared<Recorder>();
  d.state.SetHandler(h);
  DeliverEvents(lock, d.state, conn);
  EXPECT_TRUE(h->log.empty());
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
}

TEST(ConnectionOutputTest, AbortAfterARemoteCloseDoesNothing) {
  Driver d;
  d.Carry(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, "")));
  EXPECT_EQ(Str(d.state.Abort()), "");
}

TEST(ConnectionOutputTest, AbortCutsAFlushShort) {
  Driver d;
  ASSERT_TRUE(d.Write({"slow"}).ok());
  d.Carry(d.state.Close(kT0));
  EXPECT_EQ(Str(d.state.Abort()), "wake_transport reset wake_reader");
  EXPECT_FALSE(d.state.ClaimTransport());
}

TEST(ConnectionOutputTest, RemoteCloseWhileAWriterSendsDropsItsRest) {
  Driver d;
  const std::vector<std::string_view> w = {"abcdef"};
  ASSERT_TRUE(d.state.BeginWrite(w).send_direct);
  d.Carry(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "rst")));
  d.state.OnDirectSent(w, 2);
  EXPECT_EQ(d.state.output_bytes(), 0u);
  EXPECT_FALSE(d.state.ContinueAsWriter());
  d.Carry(d.state.EndWriterClaim(kT0));
  EXPECT_FALSE(d.state.ClaimTransport());
}

TEST(ConnectionOutputTest, ReleaseWaitsForAWriterStillSending) {
  Driver d;
  const std::vector<std::string_view> w = {"abc"};
  ASSERT_TRUE(d.state.BeginWrite(w).send_direct);
  d.Carry(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "rst")));
  EXPECT_EQ(Str(d.state.OnTransportDone()), "") << "the writer is using the descriptor";
  d.state.OnDirectSent(w, 3);
  EXPECT_EQ(Str(d.state.EndWriterClaim(kT0)), "release");
  EXPECT_TRUE(d.state.released());
}

TEST(ConnectionOutputTest, WriteAfterCloseOrRemoteCloseFailsCleanly) {
  Driver closed;
  closed.Carry(closed.state.Close(kT0));
  EXPECT_EQ(closed.Write({"x"}).code(), absl::StatusCode::kFailedPrecondition);
  Driver remote;
  remote.Carry(remote.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, "")));
  EXPECT_EQ(remote.Write({"x"}).code(), absl::StatusCode::kFailedPrecondition);
  Driver flushing;
  ASSERT_TRUE(flushing.Write({"x"}).ok());
  flushing.Carry(flushing.state.Close(kT0));
  EXPECT_EQ(flushing.Write({"y"}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConnectionOutputTest, RemoteCloseWhileTheTransportHoldsViewsKeepsThemValid) {
  Driver d;
  ASSERT_TRUE(d.Write({std::string(1000, 'z')}).ok());
  ASSERT_TRUE(d.state.ClaimTransport());
  std::string_view pieces[2];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(pieces)), 1u);
  EXPECT_EQ(Str(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, ""))),
            "wake_transport unblock_sender wake_reader");
  EXPECT_EQ(pieces[0][999], 'z');  // ASan would flag a use after free here
  d.Carry(d.state.OnSent(1000, kT0));
  EXPECT_FALSE(d.state.ClaimTransport());
}

TEST(ConnectionOutputTest, RemoteCloseWhileFlushingIsNotNotified) {
  Driver d;
  NullConnection conn;
  NoLock lock;
  auto h = std::make_shared<Recorder>();
  d.state.SetHandler(h);
  ASSERT_TRUE(d.Write({"pending"}).ok());
  d.Carry(d.state.Close(kT0));
  d.Carry(d.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "rst")));
  DeliverEvents(lock, d.state, conn);
  EXPECT_TRUE(h->log.empty());
  EXPECT_FALSE(d.state.HasOutput());
  EXPECT_EQ(d.state.PlanRead().kind, Kind::kStop);
}

// The cork (BeginCork .. EndCork): the delivering thread's small writes wait for the end of its
// delivery, then leave together, sent by that thread as the writer.
TEST(ConnectionOutputTest, CorkedSmallWritesWaitForEndCorkThenLeaveInOneGather) {
  Driver d;
  d.state.BeginCork();
  for (std::string_view answer : {"one;", "two;", "three;"}) {
    ConnectionState::WriteStart start = d.state.BeginWrite({answer});
    ASSERT_TRUE(start.status.ok());
    EXPECT_FALSE(start.send_direct) << answer;
    EXPECT_EQ(Str(start.actions), "") << "the transport is not woken: the reader will send";
  }
  ASSERT_TRUE(d.state.EndCork()) << "output waits, no one sends: the reader becomes the writer";
  EXPECT_FALSE(d.state.corked());
  EXPECT_EQ(d.state.sender(), ConnectionState::Sender::kWriter);
  ASSERT_TRUE(d.state.ContinueAsWriter());
  std::string_view views[4];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u) << "coalesced in one chunk";
  EXPECT_EQ(views[0], "one;two;three;");
  EXPECT_EQ(Str(d.state.OnSent(views[0].size(), kT0)), "");
  EXPECT_FALSE(d.state.ContinueAsWriter());
  EXPECT_EQ(Str(d.state.EndWriterClaim(kT0)), "");
  EXPECT_FALSE(d.state.HasOutput());
}

TEST(ConnectionOutputTest, EndCorkHandsNothingWhenNothingWaitsOrASenderHasIt) {
  Driver d;
  d.state.BeginCork();
  EXPECT_FALSE(d.state.EndCork()) << "nothing written";
  d.state.BeginCork();
  ASSERT_TRUE(d.state.BeginWrite({"a"}).status.ok());
  ASSERT_TRUE(d.state.ClaimTransport()) << "a transport sender may still take corked output";
  EXPECT_FALSE(d.state.EndCork()) << "the transport sends it";
  std::string_view views[2];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u);
  d.Carry(d.state.OnSent(1, kT0));
  EXPECT_FALSE(d.state.HasOutput());
}

TEST(ConnectionOutputTest, ALargeWriteDuringACorkGoesDirectlyWhenNothingIsQueued) {
  Driver d;
  d.state.BeginCork();
  const std::string large(ConnectionState::kCorkWriteUpTo + 1, 'L');
  ConnectionState::WriteStart start = d.state.BeginWrite({large});
  ASSERT_TRUE(start.send_direct) << "no copy of a large answer";
  d.state.OnDirectSent({large}, large.size());
  d.Carry(d.state.EndWriterClaim(kT0));
  // Behind a small corked one it is queued, and wakes the transport once over kCorkUpTo.
  ASSERT_FALSE(d.state.BeginWrite({"s"}).send_direct);
  size_t queued = 1;
  bool woken = false;
  while (!woken) {
    ConnectionState::WriteStart next = d.state.BeginWrite({large});
    ASSERT_TRUE(next.status.ok());
    ASSERT_FALSE(next.send_direct);
    queued += large.size();
    woken = next.actions.wake_transport;
    if (!woken) {
      ASSERT_LE(queued, ConnectionState::kCorkUpTo);
    }
  }
  EXPECT_GT(queued, ConnectionState::kCorkUpTo) << "woken only past the cork's bound";
  d.Pump();
  EXPECT_FALSE(d.state.EndCork()) << "the transport sent it";
  EXPECT_EQ(d.wire.size(), queued);
}

TEST(ConnectionOutputTest, CloseDuringACorkSendsTheAnswersThenTheFin) {
  Driver d;
  d.state.BeginCork();
  ASSERT_TRUE(d.state.BeginWrite({"bye"}).status.ok());
  d.Carry(d.state.Close(kT0));
  EXPECT_EQ(d.fins, 0) << "the answer is not sent yet";
  ASSERT_TRUE(d.state.EndCork());
  ASSERT_TRUE(d.state.ContinueAsWriter());
  std::string_view views[2];
  ASSERT_EQ(d.state.PeekOutput(absl::MakeSpan(views)), 1u);
  d.wire.append(views[0]);
  d.Carry(d.state.OnSent(views[0].size(), kT0));
  EXPECT_FALSE(d.state.ContinueAsWriter());
  d.Carry(d.state.EndWriterClaim(kT0));
  EXPECT_EQ(d.wire, "bye");
  EXPECT_EQ(d.fins, 1);
}

// Many writers, direct sends of random lengths, transport sends of random lengths, random
// handovers: the wire always carries exactly the accepted writes, in order (promises 3 and 6).
TEST(ConnectionOutputTest, RandomInterleavingsKeepEveryAcceptedByteInOrder) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Xoshiro256 rng(seed);
    ConnectionLimits limits;
    limits.max_output_bytes = 64;
    limits.max_writer_drain_rounds = static_cast<int>(UniformInt(rng, 0, 3));
    Driver d(limits);
    std::string accepted;
    int counter = 0;
    // The claiming writer sends the queue while ContinueAsWriter says so, the socket taking a
    // random part each time, then ends its claim.
    auto SendAsWriter = [&] {
      while (d.state.ContinueAsWriter()) {
        std::string_view views[4];
        const size_t n = d.state.PeekOutput(absl::MakeSpan(views));
        std::string seen;
        for (size_t i = 0; i < n; ++i) seen.append(views[i]);
        const size_t take =
            static_cast<size_t>(UniformInt(rng, 0, static_cast<int64_t>(seen.size())));
        d.wire += seen.substr(0, take);
        d.Carry(d.state.OnSent(take, kT0));
      }
      d.Carry(d.state.EndWriterClaim(kT0));
    };
    for (int step = 0; step < 300; ++step) {
      const int64_t what = UniformInt(rng, 0, 3);
      if (what == 3) {
        // A corked delivery: the reader's handler answers (small writes, queued), then the
        // reader sends them as the writer, the socket taking a random part.
        d.state.BeginCork();
        const int answers = static_cast<int>(UniformInt(rng, 0, 3));
        for (int k = 0; k < answers; ++k) {
          std::string o = "[" + std::to_string(counter++) + "]";
          ConnectionState::WriteStart start = d.state.BeginWrite({o});
          if (!start.status.ok()) continue;
          accepted += o;
          ASSERT_FALSE(start.send_direct) << seed;
          d.Carry(start.actions);
        }
        if (d.state.EndCork()) {
          SendAsWriter();
        }
      } else if (what == 0) {
        std::string a = std::to_string(counter++) + ",";
        std::string b(static_cast<size_t>(UniformInt(rng, 0, 20)),
                      static_cast<char>('a' + step % 26));
        const std::vector<std::string_view> w = {a, b};
        ConnectionState::WriteStart start = d.state.BeginWrite(w);
        if (!start.status.ok()) {
          ASSERT_EQ(start.status.code(), absl::StatusCode::kResourceExhausted) << seed;
          continue;
        }
        accepted += a + b;
        if (!start.send_direct) continue;
        // Others write while this one sends.
        const int others = static_cast<int>(UniformInt(rng, 0, 2));
        for (int k = 0; k < others; ++k) {
          std::string o = "<" + std::to_string(counter++) + ">";
          if (d.state.BeginWrite({o}).status.ok()) accepted += o;
        }
        const size_t total = a.size() + b.size();
        const size_t sent = static_cast<size_t>(UniformInt(rng, 0, static_cast<int64_t>(total)));
        d.wire += (a + b).substr(0, sent);
        d.state.OnDirectSent(w, sent);
        SendAsWriter();
      } else if (what == 1) {
        d.Pump(static_cast<size_t>(UniformInt(rng, 1, 16)));
      }
      ASSERT_LE(d.state.output_bytes(), limits.max_output_bytes) << seed;
    }
    d.Carry(d.state.Close(kT0));
    d.Pump();
    ASSERT_EQ(d.wire, accepted) << "seed " << seed;
    ASSERT_EQ(d.fins, 1) << seed;
  }
}

}  // namespace
}  // namespace netlayer
