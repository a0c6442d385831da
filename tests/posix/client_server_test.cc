// The posix client and server factories on real loopback sockets, with FaultSys where faults
// are needed.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "netlayer/posix/posix.h"
#include "netlayer/posix/sys.h"
#include "test_util.h"

namespace netlayer::posix {
namespace {

using ::testing::HasSubstr;
using testing::Recorder;
using testing::WaitFor;
using Op = FaultSys::Op;

// A loopback port nothing listens on (bound, then released: connects are refused).
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

ConnectOptions Fast(int max_attempts) {
  ConnectOptions o;
  o.min_delay = absl::Milliseconds(20);
  o.max_delay = absl::Milliseconds(20);
  o.max_attempts = max_attempts;
  o.attempt_timeout = absl::Seconds(5);
  return o;
}

class Handler : public ConnectHandler {
 public:
  void Connected(std::shared_ptr<Connection> connection) override {
    std::lock_guard<std::mutex> lock(mu_);
    connection_ = std::move(connection);
    ++calls_;
  }
  void FailedConnection(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    ++calls_;
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::shared_ptr<Connection> connection() const {
    std::lock_guard<std::mutex> lock(mu_);
    return connection_;
  }
  absl::Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  mutable std::mutex mu_;
  int calls_ = 0;
  std::shared_ptr<Connection> connection_;
  absl::Status status_;
};

// A listener that accepts nothing more: backlog 0 and one connection already queued, so the
// kernel drops further SYNs and a connect hangs.
struct HangingListener {
  HangingListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(fd, 0), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
    // Fill the accept queue.
    for (int i = 0; i < 2; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      fillers.push_back(c);
    }
  }
  ~HangingListener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
  int fd;
  uint16_t port;
  std::vector<int> fillers;
};

TEST(ClientTest, RefusedThenListeningConnectsAfterTheRefusedRounds) {
  FaultSys sys;
  PosixClientFactory client(testing::WithSys(&sys));
  const uint16_t port = FreePort();
  auto handler = std::make_shared<Handler>();
  ConnectOptions options = Fast(1000);
  options.min_delay = absl::Milliseconds(100);
  options.max_delay = absl::Milliseconds(100);
  auto attempt = client.Connect({Address::IPv4("127.0.0.1", port)}, options, handler);
  ASSERT_TRUE(attempt.ok()) << attempt.status();
  // Three refused rounds, then a server appears on that port.
  ASSERT_TRUE(WaitFor([&] { return sys.Calls(Op::kConnect) >= 3; }));
  const uint64_t refused = sys.Calls(Op::kConnect);
  EXPECT_EQ(handler->calls(), 0) << "the schedule has no attempt limit: it keeps trying";
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", port));
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(WaitFor([&] { return handler->calls() == 1; }));
  ASSERT_NE(handler->connection(), nullptr) << handler->status();
  // One attempt per round (a single address): the rounds refused while nothing listened
  // (at least the three seen, maybe one more in flight), then the one that connected.
  EXPECT_GE(sys.Calls(Op::kConnect), 4u);
  EXPECT_LE(sys.Calls(Op::kConnect), refused + 2);
  EXPECT_TRUE(WaitFor([&] { return (*attempt)->done(); }));
  auto accepted = (*listener)->Accept(absl::Now() + absl::Seconds(10));
  ASSERT_NE(accepted, nullptr);
  ASSERT_TRUE(handler->connection()->Write("ping").ok());
  auto rec = std::make_shared<Recorder>();
  accepted->SetHandler(rec);
  ASSERT_TRUE(WaitFor([&] { return rec->Received() == "ping"; }));
}

TEST(ClientTest, BlockingConnectGivesUpAfterMaxAttemptsWithEveryReason) {
  PosixClientFactory client;
  const uint16_t port = FreePort();
  auto result = client.ConnectBlocking({Address::IPv4("127.0.0.1", port)}, Fast(3));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("3 rounds"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("round 3"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("refused"));
}

TEST(ClientTest, TriesEveryAddressOfARound) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  PosixClientFactory client;
  auto result = client.ConnectBlocking(
      {Address::IPv4("127.0.0.1", FreePort()), (*listener)->address()}, Fast(1));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)->peer_address(), (*listener)->address());
}

TEST(ClientTest, HostNamesResolve) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  PosixClientFactory client;
  auto result = client.ConnectBlocking(
      {Address::HostName("localhost", (*listener)->address().port())}, Fast(2));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE((*listener)->Accept(absl::Now() + absl::Seconds(10)), nullptr);
}

// "localhost" is the loopback address even without /etc/hosts (RFC 6761), in any case.
TEST(ClientTest, LocalhostNamesAreLoopbackWithoutAResolver) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  FaultSys no_resolver(RealSys());
  no_resolver.FailNext(FaultSys::Op::kGetAddrInfo, EAI_NONAME, FaultSys::kForever);
  PosixOptions options;
  options.sys = &no_resolver;
  PosixClientFactory client(options);
  for (const char* name : {"localhost", "LocalHost", "db.localhost"}) {
    auto result =
        client.ConnectBlocking({Address::HostName(name, (*listener)->address().port())}, Fast(2));
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_NE((*listener)->Accept(absl::Now() + absl::Seconds(10)), nullptr);
  }
  // Other names still go to the resolver (here: refused by it).
  auto other = client.ConnectBlocking({Address::HostName("zeo.example", 1)}, Fast(1));
  EXPECT_FALSE(other.ok());
}

TEST(ClientTest, AHangingConnectIsBoundedByTheAttemptTimeout) {
  HangingListener hanging;
  PosixClientFactory client;
  ConnectOptions options = Fast(1);
  options.attempt_timeout = absl::Milliseconds(300);
  auto result = client.ConnectBlocking({Address::IPv4("127.0.0.1", hanging.port)}, options);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("timed out"));
}

TEST(ClientTest, CancelInterruptsAHangingConnectAndNoCallbackFollows) {
  HangingListener hanging;
  PosixClientFactory client;
  auto handler = std::make_shared<Handler>();
  ConnectOptions options = Fast(1);
  options.attempt_timeout = absl::Seconds(60);
  auto attempt = client.Connect({Address::IPv4("127.0.0.1", hanging.port)}, options, handler);
  ASSERT_TRUE(attempt.ok());
  (*attempt)->Cancel();  // returns promptly (the test's timeout would catch a hang)
  EXPECT_TRUE((*attempt)->done());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a callback would come now
  EXPECT_EQ(handler->calls(), 0);
}

TEST(ClientTest, CancelDuringTheWaitBetweenRounds) {
  FaultSys sys;
  PosixClientFactory client(testing::WithSys(&sys));
  auto handler = std::make_shared<Handler>();
  ConnectOptions options;
  options.min_delay = options.max_delay = absl::Seconds(60);
  auto attempt = client.Connect({Address::IPv4("127.0.0.1", FreePort())}, options, handler);
  ASSERT_TRUE(attempt.ok());
  ASSERT_TRUE(WaitFor([&] { return sys.Calls(Op::kConnect) == 1; }));
  (*attempt)->Cancel();
  EXPECT_TRUE((*attempt)->done());
  EXPECT_EQ(handler->calls(), 0);
}

TEST(ClientTest, TooManyOpenFilesFailsOneAttemptAndTheScheduleRetries) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  FaultSys sys;
  sys.FailNext(Op::kSocket, EMFILE, 2);
  sys.FailNext(Op::kConnect, ECONNREFUSED, 1);
  PosixClientFactory client(testing::WithSys(&sys));
  auto result = client.ConnectBlocking({(*listener)->address()}, Fast(5));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(sys.Calls(Op::kSocket), 4u);  // two failed, one refused, one connected
}

TEST(ClientTest, InvalidRequestsAreRejectedAtOnce) {
  PosixClientFactory client;
  ConnectOptions bad;
  bad.min_delay = absl::Seconds(2);
  bad.max_delay = absl::Seconds(1);
  EXPECT_EQ(client.ConnectBlocking({Address::IPv4("127.0.0.1", 1)}, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.ConnectBlocking({}, ConnectOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Connect({Address::IPv4("127.0.0.1", 1)}, bad, std::make_shared<Handler>())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ListenerTest, PortZeroReportsTheRealPortAndAcceptWorks) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_NE((*listener)->address().port(), 0);
  EXPECT_TRUE((*listener)->IsOpen());
  PosixClientFactory client;
  auto c = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  ASSERT_TRUE(c.ok());
  auto s = (*listener)->Accept(absl::Now() + absl::Seconds(10));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->local_address(), (*listener)->address());
  EXPECT_EQ(s->peer_address(), (*c)->local_address());
}

TEST(ListenerTest, AcceptTimesOutWithNothingPending) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ((*listener)->Accept(absl::Now() + absl::Milliseconds(50)), nullptr);
  EXPECT_TRUE((*listener)->IsOpen());
}

TEST(ListenerTest, CloseWakesABlockedAcceptAndEndsRangeFor) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  PosixClientFactory client;
  std::vector<std::shared_ptr<Connection>> clients;
  for (int i = 0; i < 3; ++i) {
    auto c = client.ConnectBlocking({(*listener)->address()}, Fast(1));
    ASSERT_TRUE(c.ok());
    clients.push_back(*c);
  }
  std::atomic<int> accepted{0};
  std::atomic<bool> loop_ended{false};
  std::thread acceptor([&] {
    for (std::shared_ptr<Connection> connection : **listener) {
      EXPECT_NE(connection, nullptr);
      ++accepted;
    }
    loop_ended = true;
  });
  ASSERT_TRUE(WaitFor([&] { return accepted.load() == 3; }));
  EXPECT_FALSE(loop_ended.load());
  (*listener)->Close();  // the range-for is blocked in Accept(): it must end
  acceptor.join();
  EXPECT_TRUE(loop_ended.load());
  EXPECT_FALSE((*listener)->IsOpen());
  EXPECT_EQ((*listener)->Accept(), nullptr);
  // Nothing listens any more.
  auto again = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  EXPECT_FALSE(again.ok());
}

TEST(ListenerTest, CallbackFormHandsEachConnectionToTheCallback) {
  PosixServerFactory server;
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> got;
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0), [&](std::shared_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(std::move(c));
  });
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ((*listener)->Accept(absl::Now() + absl::Seconds(5)), nullptr) << "callback form";
  PosixClientFactory client;
  auto c1 = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  auto c2 = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  ASSERT_TRUE(c1.ok() && c2.ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return got.size() == 2;
  }));
  (*listener)->Close();
}

TEST(ListenerTest, AddressInUseIsAlreadyExists) {
  PosixServerFactory server;
  auto first = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(first.ok());
  auto second = server.Listen((*first)->address());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
}

TEST(ListenerTest, AcceptErrorsSuchAsEmfileAreSurvived) {
  FaultSys sys;
  sys.FailNext(Op::kAccept, EMFILE, 2);
  sys.FailNext(Op::kAccept, ECONNABORTED, 1);
  sys.FailNext(Op::kAccept, EINTR, 1);
  PosixOptions options = testing::WithSys(&sys);
  options.accept_error_backoff = absl::Milliseconds(10);
  PosixServerFactory server(options);
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  PosixClientFactory client;
  auto c = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  ASSERT_TRUE(c.ok());
  auto s = (*listener)->Accept(absl::Now() + absl::Seconds(10));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(sys.Calls(Op::kAccept), 5u);
  EXPECT_EQ(sys.Pending(Op::kAccept), 0u);
}

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/netlayer-posix-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/s.sock";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  bool Exists() const {
    struct stat st {};
    return ::lstat(path_.c_str(), &st) == 0;
  }
  std::string dir_;
  std::string path_;
  PosixServerFactory server_;
  PosixClientFactory client_;
};

TEST_F(UnixListenerTest, ListensConnectsAndRemovesItsFileOnClose) {
  auto listener = server_.Listen(Address::Unix(path_));
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_EQ((*listener)->address(), Address::Unix(path_));
  auto c = client_.ConnectBlocking({Address::Unix(path_)}, Fast(1));
  ASSERT_TRUE(c.ok()) << c.status();
  auto s = (*listener)->Accept(absl::Now() + absl::Seconds(10));
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE((*c)->Write("over unix").ok());
  auto rec = std::make_shared<Recorder>();
  s->SetHandler(rec);
  ASSERT_TRUE(WaitFor([&] { return rec->Received() == "over unix"; }));
  (*listener)->Close();
  EXPECT_FALSE(Exists());
}

TEST_F(UnixListenerTest, AStaleSocketFileIsReplaced) {
  // A server that died without removing its socket file.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof un.sun_path, "%s", path_.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
  ::close(fd);
  ASSERT_TRUE(Exists());
  auto listener = server_.Listen(Address::Unix(path_));
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_TRUE(client_.ConnectBlocking({Address::Unix(path_)}, Fast(1)).ok());
}

TEST_F(UnixListenerTest, ALiveServerIsNotStolen) {
  auto first = server_.Listen(Address::Unix(path_));
  ASSERT_TRUE(first.ok());
  auto second = server_.Listen(Address::Unix(path_));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
  EXPECT_TRUE(client_.ConnectBlocking({Address::Unix(path_)}, Fast(1)).ok());
}

TEST_F(UnixListenerTest, AFileThatIsNotASocketIsNeverRemoved) {
  const int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto listener = server_.Listen(Address::Unix(path_));
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kAlreadyExists) << listener.status();
  EXPECT_TRUE(Exists());
}

TEST(Ipv6Test, ListensAndConnectsOnLoopbackWhenAvailable) {
  PosixServerFactory server;
  auto listener = server.Listen(Address::IPv6("::1", 0));
  if (!listener.ok()) GTEST_SKIP() << "no IPv6 loopback: " << listener.status();
  EXPECT_NE((*listener)->address().port(), 0);
  EXPECT_EQ((*listener)->address().kind(), Address::Kind::kIPv6);
  PosixClientFactory client;
  auto c = client.ConnectBlocking({(*listener)->address()}, Fast(1));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE((*listener)->Accept(absl::Now() + absl::Seconds(10)), nullptr);
}

TEST(LeakTest, ManyConnectCloseCyclesLeaveNoThreadOrDescriptor) {
  PosixServerFactory server;
  PosixClientFactory client;
  // Warm up once (loggers, the listener's own thread) before taking the baseline.
  auto listener = server.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  const int fds_before = testing::OpenFds();
  const int threads_before = testing::LiveThreads();
  for (int i = 0; i < 100; ++i) {
    auto c = client.ConnectBlocking({(*listener)->address()}, Fast(1));
    ASSERT_TRUE(c.ok()) << c.status();
    auto s = (*listener)->Accept(absl::Now() + absl::Seconds(10));
    ASSERT_NE(s, nullptr);
    auto rec = std::make_shared<Recorder>();
    s->SetHandler(rec);
    ASSERT_TRUE((*c)->Write("cycle").ok());
    ASSERT_TRUE(WaitFor([&] { return rec->bytes() == 5; }));
    // Alternate who closes first, and one pair is simply dropped.
    if (i % 3 == 0) {
      (*c)->Close();
    } else if (i % 3 == 1) {
      s->Close();
    }
    c->reset();
    s.reset();
  }
  EXPECT_TRUE(WaitFor([&] { return testing::LiveThreads() <= threads_before; }))
      << testing::LiveThreads() << " threads, " << threads_before << " before";
  EXPECT_TRUE(WaitFor([&] { return testing::OpenFds() <= fds_before; }))
      << testing::OpenFds() << " descriptors, " << fds_before << " before";
}

}  // namespace
}  // namespace netlayer::posix
