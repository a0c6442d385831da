// The posix Connection under injected faults (through FaultSys), with a raw socket as the peer.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netlayer/core/connection_state.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/posix/sys.h"
#include "test_util.h"

namespace netlayer::posix {
namespace {

using testing::LiveThreads;
using testing::OpenFds;
using testing::Pattern;
using testing::ReadRaw;
using testing::Recorder;
using testing::WaitFor;
using testing::WriteRaw;
using Op = FaultSys::Op;

struct RawPair {
  int ours = -1;    // handed to AdoptSocket
  int theirs = -1;  // the test's raw peer
};

RawPair UnixPair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  return {sv[0], sv[1]};
}

RawPair TcpPair() {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(::listen(lfd, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  const int s = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(lfd);
  return {c, s};
}

// Holds the next direct send (a write from the caller's thread: MSG_DONTWAIT) once armed, until
// released, so a test can act while a writer is in the middle of it; that send then moves at
// most `max_bytes`.
class GatedSys : public FaultSys {
 public:
  // The threads may still call SendMsg on this object's members: wait for them first.
  ~GatedSys() override { WaitForConnectionThreads(absl::Now() + absl::Minutes(1)); }
  void Arm(size_t max_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
    max_bytes_ = max_bytes;
  }
  bool WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // errno of the held send (0 if it succeeded); -1 until it has returned.
  int held_errno() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_errno_;
  }

  ssize_t SendMsg(int fd, const msghdr* msg, int flags) override {
    size_t max_bytes;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!armed_ || (flags & MSG_DONTWAIT) == 0) {
        lock.unlock();
        return FaultSys::SendMsg(fd, msg, flags);
      }
      armed_ = false;
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
      max_bytes = max_bytes_;
    }
    std::vector<iovec> iov;
    for (size_t i = 0; i < msg->msg_iovlen && max_bytes > 0; ++i) {
      const size_t n = std::min(max_bytes, msg->msg_iov[i].iov_len);
      iov.push_back(iovec{msg->msg_iov[i].iov_base, n});
      max_bytes -= n;
    }
    msghdr limited = *msg;
    limited.msg_iov = iov.data();
    limited.msg_iovlen = iov.size();
    const ssize_t n = FaultSys::SendMsg(fd, &limited, flags);
    const int err = errno;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_errno_ = n < 0 ? err : 0;
    }
    errno = err;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool entered_ = false;
  bool released_ = false;
  size_t max_bytes_ = 0;
  int held_errno_ = -1;
};

class ConnectionTest : public ::testing::Test {
 protected:
  std::shared_ptr<Connection> Adopt(int fd) {
    auto c = AdoptSocket(fd, options_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  // Connection threads end by themselves after the last reference; they may use sys_.
  void TearDown() override {
    ASSERT_TRUE(WaitForConnectionThreads(absl::Now() + absl::Minutes(1)));
  }
  FaultSys sys_;
  PosixOptions options_ = testing::WithSys(&sys_);
};

// ConnectionState's cork (core) is keyed by the delivering thread; a core test cannot start a
// second thread (the guard), so this one lives here.
TEST(ConnectionStateCorkTest, ACorkHoldsOnlyTheDeliveringThreadsWrites) {
  ConnectionState state;
  const absl::Time now = absl::Now();
  state.BeginCork();
  bool direct = false;
  std::thread other([&] {
    const std::string_view piece = "other";
    ConnectionState::WriteStart start = state.BeginWrite(absl::MakeConstSpan(&piece, 1));
    direct = start.send_direct;
    if (direct) {
      state.OnDirectSent(absl::MakeConstSpan(&piece, 1), piece.size());
      state.EndWriterClaim(now);
    }
  });
  other.join();
  EXPECT_TRUE(direct) << "another thread's write is sent directly as usual";
  const std::string_view mine = "mine";
  ConnectionState::WriteStart start = state.BeginWrite(absl::MakeConstSpan(&mine, 1));
  EXPECT_FALSE(start.send_direct) << "the delivering thread's own answer waits for EndCork";
  EXPECT_FALSE(start.actions.wake_transport);
  ASSERT_TRUE(state.EndCork());
  EXPECT_EQ(state.sender(), ConnectionState::Sender::kWriter);
  ASSERT_TRUE(state.ContinueAsWriter());
  std::string_view views[2];
  ASSERT_EQ(state.PeekOutput(absl::MakeSpan(views)), 1u);
  EXPECT_EQ(views[0], "mine");
  state.OnSent(views[0].size(), now);
  state.EndWriterClaim(now);
  EXPECT_FALSE(state.HasOutput());
}

TEST_F(ConnectionTest, EchoesBothWaysAndReportsPeerClose) {
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  ASSERT_TRUE(conn->Write("hello").ok());
  EXPECT_EQ(ReadRaw(p.theirs, 5), "hello");
  ASSERT_TRUE(WriteRaw(p.theirs, "world"));
  ASSERT_TRUE(WaitFor([&] { return rec->bytes() == 5; }));
  EXPECT_EQ(rec->Received(), "world");
  ::close(p.theirs);
  ASSERT_TRUE(WaitFor([&] { return rec->closed() == 1; }));
  EXPECT_EQ(rec->Closes()[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_FALSE(conn->IsOpen());
  EXPECT_EQ(conn->Write("x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ConnectionTest, RetriesEintrAndShortReadsWithoutLosingBytes) {
  RawPair p = UnixPair();
  sys_.FailNext(Op::kSelect, EINTR, 3);
  sys_.FailNext(Op::kRecv, EINTR, 3);
  sys_.ShortNext(Op::kRecv, 7, 200);  // every read returns at most 7 bytes for a while
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  const std::string data = Pattern(100000);
  ASSERT_TRUE(WriteRaw(p.theirs, data));
  ASSERT_TRUE(WaitFor([&] { return rec->bytes() == data.size(); }));
  EXPECT_EQ(rec->Received(), data);
  EXPECT_EQ(sys_.Pending(Op::kRecv), 0u);
  EXPECT_EQ(sys_.Pending(Op::kSelect), 0u);
  EXPECT_EQ(rec->closed(), 0);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, RetriesEintrEagainAndShortWritesWithoutLosingBytes) {
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  sys_.FailNext(Op::kSend, EINTR, 2);
  sys_.FailNext(Op::kSend, EAGAIN, 2);  // the direct send gives up: the output thread sends
  sys_.ShortNext(Op::kSend, 5, 50);
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string piece = "message " + std::to_string(i) + ";";
    expected += piece;
    ASSERT_TRUE(conn->Write(piece).ok());
  }
  EXPECT_EQ(ReadRaw(p.theirs, expected.size()), expected);
  EXPECT_EQ(sys_.Pending(Op::kSend), 0u);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, ConnectionResetOnReadIsReportedOnceAsReset) {
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  sys_.FailNext(Op::kRecv, ECONNRESET);
  ASSERT_TRUE(WriteRaw(p.theirs, "x"));  // makes the socket readable; the read fails
  ASSERT_TRUE(WaitFor([&] { return rec->closed() == 1; }));
  EXPECT_EQ(rec->Closes()[0].kind(), CloseReason::Kind::kReset) << rec->Closes()[0];
  EXPECT_FALSE(conn->IsOpen());
  ::close(p.theirs);
}

TEST_F(ConnectionTest, BrokenPipeOnWriteClosesAndReportsOnce) {
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  sys_.FailNext(Op::kSend, EPIPE);
  EXPECT_EQ(conn->Write("lost").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(WaitFor([&] { return rec->closed() == 1; }));
  EXPECT_EQ(rec->Closes()[0].kind(), CloseReason::Kind::kReset);
  EXPECT_EQ(conn->Write("more").code(), absl::StatusCode::kFailedPrecondition);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, RealTcpResetIsReportedAsReset) {
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  linger lg{1, 0};
  ::setsockopt(p.theirs, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(p.theirs);
  ASSERT_TRUE(WaitFor([&] { return rec->closed() == 1; }));
  EXPECT_EQ(rec->Closes()[0].kind(), CloseReason::Kind::kReset) << rec->Closes()[0];
}

TEST_F(ConnectionTest, WritingToAVanishedPeerNeverRaisesSigpipe) {
  RawPair p = TcpPair();
  auto conn = *AdoptSocket(p.ours);  // the real Sys: real EPIPE / ECONNRESET
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  linger lg{1, 0};
  ::setsockopt(p.theirs, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(p.theirs);
  // Keep writing (directly and through the output thread) until the connection reports the
  // failure; a send without MSG_NOSIGNAL would kill the process with SIGPIPE here.
  const std::string chunk = Pattern(64 << 10);
  ASSERT_TRUE(WaitFor([&] {
    (void)conn->Write(chunk);
    return rec->closed() == 1;
  }));
  EXPECT_FALSE(conn->IsOpen());
  EXPECT_EQ(rec->Closes()[0].kind(), CloseReason::Kind::kReset) << rec->Closes()[0];
}

TEST_F(ConnectionTest, AbortResetsThePeer) {
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  conn->Abort();
  conn->Abort();  // idempotent
  EXPECT_FALSE(conn->IsOpen());
  EXPECT_EQ(conn->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  char c;
  EXPECT_EQ(::recv(p.theirs, &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  ::close(p.theirs);
  ASSERT_TRUE(WaitForConnectionThreads(absl::Now() + absl::Seconds(20)));
  EXPECT_EQ(rec->closed(), 0) << "an abort is local: no ConnectionClosed (as Close())";
}

TEST_F(ConnectionTest, CloseFlushesEverythingThenEndsTheStream) {
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  const std::string data = Pattern(8 << 20);  // more than the socket buffers hold
  ASSERT_TRUE(conn->Write(data).ok());
  conn->Close();
  EXPECT_EQ(conn->Write("late").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadRaw(p.theirs, data.size() + 1), data);  // then end of stream
  ::close(p.theirs);
  conn.reset();  // returns at once; the threads end by themselves
}

TEST_F(ConnectionTest, ClosingToAPeerThatNeverReadsIsBoundedByTheLinger) {
  options_.limits.close_linger = absl::Milliseconds(200);
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  ASSERT_TRUE(conn->Write(Pattern(16 << 20)).ok());
  conn->Close();
  conn.reset();  // returns at once: the threads reset the socket once the linger passes
  ASSERT_TRUE(WaitForConnectionThreads(absl::Now() + absl::Seconds(30)));
  // The peer finds the stream reset after the bytes it could buffer.
  char buf[65536];
  ssize_t r;
  while ((r = ::recv(p.theirs, buf, sizeof buf, 0)) > 0) {
  }
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, ECONNRESET);
  ::close(p.theirs);
}

// Issue 12, bug 2: dropping a connection whose close must wait (a peer that never reads) from
// a timer callback returns at once, so the Env's next timer still fires; the teardown runs on
// the connection's own threads. (Before: the destructor joined the input thread, which waited
// for the whole close linger, and every later timer of the Env waited with it.)
TEST_F(ConnectionTest, DroppingAClosingConnectionInATimerNeverHoldsUpTheNextTimer) {
  options_.limits.close_linger = absl::Minutes(10);
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  ASSERT_TRUE(conn->Write(Pattern(32 << 20)).ok());  // the peer never reads: the flush waits
  PosixEnv env;
  std::atomic<bool> dropped{false};
  std::atomic<bool> next_fired{false};
  env.RunAt(absl::Now(), [&] {
    conn.reset();  // the last reference: Close() and return
    dropped = true;
  });
  env.RunAt(absl::Now() + absl::Milliseconds(1), [&] { next_fired = true; });
  EXPECT_TRUE(WaitFor([&] { return next_fired.load(); }, absl::Seconds(30)))
      << "a timer waited for a connection's teardown";
  EXPECT_TRUE(dropped.load());
  ::close(p.theirs);  // the peer goes away: the teardown ends (a send error) long before the linger
}

TEST_F(ConnectionTest, OutputQueueIsBounded) {
  options_.limits.max_output_bytes = 1 << 20;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  const std::string chunk = Pattern(64 << 10);
  absl::Status status;
  for (int i = 0; i < 1000 && status.ok(); ++i) status = conn->Write(chunk);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(conn->IsOpen());
  EXPECT_LE(conn->QueuedOutputBytes(), size_t{1} << 20);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, InputWithoutAHandlerStopsReadingAtTheBoundThenDeliversAll) {
  options_.limits.max_pending_input_bytes = 256 << 10;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  ASSERT_EQ(::fcntl(p.theirs, F_SETFL, O_NONBLOCK), 0);
  // The peer writes until its socket stays full: the backend stopped reading (back-pressure).
  // Without a bound the backend would read everything, and the loop would stop at 64 MiB.
  std::string sent;
  const std::string chunk = Pattern(4096);
  while (sent.size() < (size_t{64} << 20)) {
    ssize_t r = ::send(p.theirs, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (r > 0) {
      sent.append(chunk, 0, static_cast<size_t>(r));
      continue;
    }
    ASSERT_TRUE(r < 0 && errno == EAGAIN) << "send failed: " << errno;
    pollfd pfd{p.theirs, POLLOUT, 0};
    if (::poll(&pfd, 1, 300) == 0) break;  // still full: the reader has stopped
  }
  EXPECT_LT(sent.size(), size_t{64} << 20) << "the backend kept reading past its bound";
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  ASSERT_TRUE(WaitFor([&] { return rec->bytes() == sent.size(); }));
  EXPECT_EQ(rec->Received(), sent);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, HandlerDroppingTheLastReferenceOnTheInputThreadIsSafe) {
  const int threads_before = LiveThreads();
  const int fds_before = OpenFds();
  for (int i = 0; i < 20; ++i) {
    RawPair p = UnixPair();
    // The real Sys: the detached threads may outlive this test's FaultSys.
    auto conn = *AdoptSocket(p.ours);
    auto rec = std::make_shared<Recorder>();
    // The handler holds the only reference and drops it from inside its own callback.
    auto holder = std::make_shared<std::shared_ptr<Connection>>(conn);
    rec->OnInput([holder](Connection& c, std::string_view) {
      c.Close();
      holder->reset();  // the destructor runs on the input thread: no self-join
    });
    conn->SetHandler(rec);
    conn.reset();
    ASSERT_TRUE(WriteRaw(p.theirs, "bye"));
    ASSERT_TRUE(WaitFor([&] { return rec->bytes() == 3; }));
    EXPECT_EQ(ReadRaw(p.theirs, 1), "");  // our side ended the stream
    ::close(p.theirs);
  }
  EXPECT_TRUE(WaitFor([&] { return LiveThreads() <= threads_before; }))
      << LiveThreads() << " threads, " << threads_before << " before";
  EXPECT_TRUE(WaitFor([&] { return OpenFds() <= fds_before; }))
      << OpenFds() << " descriptors, " << fds_before << " before";
}

TEST_F(ConnectionTest, HandlerDroppingTheLastReferenceWhileSetHandlerDrainsIsSafe) {
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  ASSERT_TRUE(WriteRaw(p.theirs, "queued before a handler"));
  ::shutdown(p.theirs, SHUT_WR);
  // Wait until the end of stream is queued too (the connection reports closed).
  ASSERT_TRUE(WaitFor([&] { return !conn->IsOpen(); }));
  auto rec = std::make_shared<Recorder>();
  auto holder = std::make_shared<std::shared_ptr<Connection>>(conn);
  rec->OnClose([holder](Connection&) { holder->reset(); });
  Connection* raw = conn.get();
  conn.reset();          // the handler's holder is now the only owner
  raw->SetHandler(rec);  // delivers here, on this thread; the handler drops the last reference
  EXPECT_EQ(rec->Received(), "queued before a handler");
  EXPECT_EQ(rec->closed(), 1);
  ::close(p.theirs);
}

TEST_F(ConnectionTest, DescriptorAboveFdSetSizeUsesPollNeverSelect) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  const rlim_t want = FD_SETSIZE + 64;
  if (rl.rlim_cur < want) {
    if (rl.rlim_max < want) GTEST_SKIP() << "RLIMIT_NOFILE hard limit below " << want;
    rlimit raised = rl;
    raised.rlim_cur = want;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
  }
  RawPair p = UnixPair();
  const int high = FD_SETSIZE + 10;
  ASSERT_EQ(::dup3(p.ours, high, O_CLOEXEC), high);
  ::close(p.ours);
  auto conn = Adopt(high);
  auto rec = std::make_shared<Recorder>();
  rec->OnInput([](Connection& c, std::string_view data) { ASSERT_TRUE(c.Write(data).ok()); });
  conn->SetHandler(rec);
  const std::string data = Pattern(300000);
  std::thread writer([&] { EXPECT_TRUE(WriteRaw(p.theirs, data)); });
  EXPECT_EQ(ReadRaw(p.theirs, data.size()), data);  // echoed back
  writer.join();
  EXPECT_GT(sys_.Calls(Op::kPoll), 0u);
  EXPECT_LE(sys_.max_select_nfds(), FD_SETSIZE) << "a descriptor >= FD_SETSIZE reached select()";
  conn->Close();
  ::close(p.theirs);
  conn.reset();
  if (rl.rlim_cur < want) ::setrlimit(RLIMIT_NOFILE, &rl);
}

// A writer sending directly holds no lock: another writer is not blocked by it; its bytes are
// queued behind the sending writer's, whose unsent rest goes first.
TEST_F(ConnectionTest, AWriteDuringADirectSendDoesNotWaitAndFollowsItsBytes) {
  GatedSys gate;
  options_.sys = &gate;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  const std::string first = Pattern(10000);
  gate.Arm(3);  // the direct send moves 3 bytes, then the rest must be queued
  std::thread writer([&] { EXPECT_TRUE(conn->Write(first).ok()); });
  ASSERT_TRUE(gate.WaitEntered());
  // The first writer is inside its send: these return at once (the test would hang otherwise).
  ASSERT_TRUE(conn->Write("second;").ok());
  ASSERT_TRUE(conn->WriteV({"third", ";"}).ok());
  EXPECT_GE(conn->QueuedOutputBytes(), 13u);
  gate.Release();
  writer.join();
  const std::string expected = first + "second;third;";
  EXPECT_EQ(ReadRaw(p.theirs, expected.size()), expected);
  EXPECT_EQ(gate.held_errno(), 0);
  ::close(p.theirs);
}

// Output queued during a direct send keeps room for the sender's unsent rest: the bound holds.
TEST_F(ConnectionTest, TheOutputBoundCountsAWriteBeingSentDirectly) {
  GatedSys gate;
  options_.sys = &gate;
  options_.limits.max_output_bytes = 1000;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  const std::string first = Pattern(600);
  gate.Arm(1);
  std::thread writer([&] { EXPECT_TRUE(conn->Write(first).ok()); });
  ASSERT_TRUE(gate.WaitEntered());
  EXPECT_EQ(conn->Write(Pattern(500)).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(conn->Write(Pattern(400)).ok());
  gate.Release();
  writer.join();
  EXPECT_LE(conn->QueuedOutputBytes(), 1000u);
  const std::string expected = first + Pattern(400);
  EXPECT_EQ(ReadRaw(p.theirs, expected.size()), expected);
  ::close(p.theirs);
}

// Close() during a direct send flushes the sending writer's unsent rest too.
TEST_F(ConnectionTest, CloseDuringADirectSendFlushesItsRest) {
  GatedSys gate;
  options_.sys = &gate;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  const std::string first = Pattern(50000);
  gate.Arm(7);
  std::thread writer([&] { EXPECT_TRUE(conn->Write(first).ok()); });
  ASSERT_TRUE(gate.WaitEntered());
  std::thread closer([&] { conn->Close(); });
  gate.Release();
  writer.join();
  closer.join();
  EXPECT_EQ(conn->Write("late").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadRaw(p.theirs, first.size() + 1), first);  // then end of stream
  ::close(p.theirs);
  conn.reset();
}

// The peer goes away while a writer sends directly: the threads end, but the descriptor stays
// open until that send returns (it must never reach a closed or reused descriptor).
TEST_F(ConnectionTest, ARemoteCloseDuringADirectSendKeepsTheDescriptorUntilItReturns) {
  GatedSys gate;
  options_.sys = &gate;
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  gate.Arm(5);
  absl::Status status;
  std::thread writer([&] { status = conn->Write("doomed write"); });
  ASSERT_TRUE(gate.WaitEntered());
  ::close(p.theirs);
  ASSERT_TRUE(WaitFor([&] { return rec->closed() == 1; }));
  // Had the backend's threads closed the socket by now, this would take its number and the held
  // send would reach /dev/null (ENOTSOCK) or nothing (EBADF).
  const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  gate.Release();
  writer.join();
  EXPECT_NE(gate.held_errno(), EBADF);
  EXPECT_NE(gate.held_errno(), ENOTSOCK);
  EXPECT_TRUE(status.ok() || status.code() == absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(rec->closed(), 1);
  ::close(probe);
  conn.reset();
}

// Many threads writing at once over a socket that takes only a little per send (so direct sends
// leave rests while others queue): every write arrives whole, each thread's in its order.
TEST_F(ConnectionTest, ConcurrentWritersKeepEachWriteWholeAndInOrder) {
  sys_.Inject(Op::kSend, FaultSys::Fault{0, 1500, FaultSys::kForever, -1});
  RawPair p = UnixPair();
  auto conn = Adopt(p.ours);
  constexpr int kThreads = 6;
  constexpr int kWrites = 300;
  // A write: "<thread> <index> <size> " then `size` bytes of the thread's letter, then '\n'.
  std::vector<std::thread> writers;
  size_t total = 0;
  std::vector<std::vector<std::string>> messages(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kWrites; ++i) {
      const size_t size = static_cast<size_t>((i * 977 + t * 131) % 5000);
      std::string m = std::to_string(t) + " " + std::to_string(i) + " " + std::to_string(size) +
                      " " + std::string(size, static_cast<char>('a' + t)) + "\n";
      total += m.size();
      messages[t].push_back(std::move(m));
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (const std::string& m : messages[t]) {
        // Two pieces: a write is whole even when split across pieces.
        const size_t half = m.size() / 2;
        ASSERT_TRUE(
            conn->WriteV({std::string_view(m).substr(0, half), std::string_view(m).substr(half)})
                .ok());
      }
    });
  }
  const std::string got = ReadRaw(p.theirs, total);
  for (std::thread& w : writers) w.join();
  ASSERT_EQ(got.size(), total);
  std::vector<int> next(kThreads, 0);
  size_t pos = 0;
  while (pos < got.size()) {
    const size_t end = got.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    const std::string line = got.substr(pos, end + 1 - pos);
    const int t = line[0] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << line.substr(0, 40);
    ASSERT_LT(next[t], kWrites);
    ASSERT_EQ(line, messages[t][next[t]]) << "thread " << t << " write " << next[t];
    ++next[t];
    pos = end + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kWrites);
  ::close(p.theirs);
}

// A read that fills the buffer is followed by another read at once, not by a wait in select().
TEST_F(ConnectionTest, AFullReadIsFollowedByAnotherReadWithoutWaiting) {
  options_.read_buffer_bytes = 1024;
  RawPair p = UnixPair();
  const std::string data = Pattern(64 << 10);
  ASSERT_TRUE(WriteRaw(p.theirs, data));  // all of it waits in the socket before the first read
  auto conn = Adopt(p.ours);
  auto rec = std::make_shared<Recorder>();
  conn->SetHandler(rec);
  ASSERT_TRUE(WaitFor([&] { return rec->bytes() == data.size(); }));
  EXPECT_EQ(rec->Received(), data);
  EXPECT_GE(sys_.Calls(Op::kRecv), 64u);
  // One wait before the data, perhaps one after a wake-up, and one once the data is read.
  EXPECT_LE(sys_.Calls(Op::kSelect), 8u) << sys_.Calls(Op::kRecv) << " reads";
  ::close(p.theirs);
}

TEST_F(ConnectionTest, TcpConnectionsSetNoDelay) {
  RawPair p = TcpPair();
  auto conn = Adopt(p.ours);
  int value = 0;
  socklen_t len = sizeof value;
  // The adopted descriptor is still p.ours while the connection is open.
  ASSERT_EQ(::getsockopt(p.ours, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_NE(value, 0);
  EXPECT_EQ(conn->local_address().kind(), Address::Kind::kIPv4);
  EXPECT_EQ(conn->peer_address().host(), "127.0.0.1");
  ::close(p.theirs);
}

}  // namespace
}  // namespace netlayer::posix
