// The asio backend beyond the contract suite: the connect schedule's failures and cancellation,
// name resolution, unix socket paths, ConnectBlocking on an io thread, and the Runtime's
// destructor with connections still open.
#include "netlayer/asio/asio.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>

#include "absl/time/clock.h"
#include "netlayer/posix/posix.h"

namespace netlayer::asio {
namespace {

using ::testing::HasSubstr;

ConnectOptions Quick(int attempts) {
  ConnectOptions o;
  o.min_delay = absl::Milliseconds(5);
  o.max_delay = absl::Milliseconds(5);
  o.max_attempts = attempts;
  o.attempt_timeout = absl::Seconds(5);
  return o;
}

// A TCP port nothing listens on: bound by a listener that is closed again.
Address ClosedPort(Runtime& runtime) {
  AsioServerFactory servers(runtime);
  auto listener = servers.Listen(Address::IPv4("127.0.0.1", 0));
  EXPECT_TRUE(listener.ok());
  const Address address = (*listener)->address();
  (*listener)->Close();
  return address;
}

// Waits (polling, with a deadline) until `done`.
template <typename Pred>
bool Eventually(Pred done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class Collect final : public ConnectionHandler {
 public:
  void InputData(Connection&, std::string_view data) override {
    std::lock_guard<std::mutex> lock(mu_);
    input_.append(data);
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = reason;
  }
  std::optional<CloseReason> closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::string input_;
  std::optional<CloseReason> closed_;
};

TEST(AsioClient, RefusedEveryRoundReportsEveryAttempt) {
  Runtime runtime(2);
  AsioClientFactory clients(runtime);
  const Address closed = ClosedPort(runtime);
  auto result = clients.ConnectBlocking({closed, closed}, Quick(2));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("refused"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("round 2"));
}

TEST(AsioClient, BadOptionsAreInvalidArgument) {
  Runtime runtime(1);
  AsioClientFactory clients(runtime);
  ConnectOptions options;
  options.delay_backoff = 0.5;
  auto result = clients.ConnectBlocking({Address::IPv4("127.0.0.1", 1)}, options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AsioClient, HostNamesConnect) {
  Runtime runtime(2);
  AsioServerFactory servers(runtime);
  AsioClientFactory clients(runtime);
  auto listener = servers.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  auto client = clients.ConnectBlocking(
      {Address::HostName("localhost", (*listener)->address().port())}, Quick(1));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_NE((*listener)->Accept(absl::Now() + absl::Seconds(10)), nullptr);
  // A name that is not "localhost" goes through Asio's asynchronous resolver (a numeric name
  // resolves without DNS, so the test needs no network).
  auto resolved = clients.ConnectBlocking(
      {Address::HostName("127.0.0.1", (*listener)->address().port())}, Quick(1));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_NE((*listener)->Accept(absl::Now() + absl::Seconds(10)), nullptr);
}

TEST(AsioClient, CancelEndsTheScheduleAndNoCallbackFollows) {
  Runtime runtime(2);
  AsioClientFactory clients(runtime);
  const Address closed = ClosedPort(runtime);
  struct Handler final : ConnectHandler {
    std::atomic<int> calls{0};
    void Connected(std::shared_ptr<Connection>) override { ++calls; }
    void FailedConnection(const absl::Status&) override { ++calls; }
  };
  auto handler = std::make_shared<Handler>();
  ConnectOptions forever = Quick(1);
  forever.max_attempts.reset();  // keep trying
  auto attempt = clients.Connect({closed}, forever, handler);
  ASSERT_TRUE(attempt.ok());
  EXPECT_FALSE((*attempt)->done());
  (*attempt)->Cancel();
  EXPECT_TRUE((*attempt)->done());
  EXPECT_EQ(handler->calls.load(), 0);
}

TEST(AsioClient, ConnectBlockingOnAnIoThreadIsRefused) {
  Runtime runtime(1);
  AsioClientFactory clients(runtime);
  std::promise<absl::Status> status;
  runtime.env().RunAt(absl::Now(), [&] {
    status.set_value(clients.ConnectBlocking({Address::IPv4("127.0.0.1", 1)}, Quick(1)).status());
  });
  EXPECT_EQ(status.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AsioServer, UnixPaths) {
  Runtime runtime(1);
  AsioServerFactory servers(runtime);
  char dir_template[] = "/tmp/netlayer-asio-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  // A path that is not a socket is never removed.
  const std::string file = dir + "/file";
  std::ofstream(file) << "keep";
  EXPECT_EQ(servers.Listen(Address::Unix(file)).status().code(), absl::StatusCode::kAlreadyExists);
  // A live listener's path is refused; once it closes, its file is gone and the path is free.
  const Address path = Address::Unix(dir + "/s.sock");
  auto first = servers.Listen(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(servers.Listen(path).status().code(), absl::StatusCode::kAlreadyExists);
  (*first)->Close();
  struct stat st {};
  EXPECT_NE(::lstat(path.host().c_str(), &st), 0);
  // A stale socket file (its server died: nothing answers) is reused.
  posix::PosixServerFactory posix_servers;
  auto stale = posix_servers.Listen(path);
  ASSERT_TRUE(stale.ok());
  // Leave the file behind as a crashed server would: unlink nothing, close the socket only.
  std::string kept = path.host() + ".kept";
  ASSERT_EQ(::link(path.host().c_str(), kept.c_str()), 0);
  (*stale)->Close();  // removes its file; put the stale one back
  ASSERT_EQ(::rename(kept.c_str(), path.host().c_str()), 0);
  auto reused = servers.Listen(path);
  EXPECT_TRUE(reused.ok()) << reused.status();
  if (reused.ok()) (*reused)->Close();
  ::unlink(file.c_str());
  ::rmdir(dir.c_str());
}

// Destroying the Runtime aborts what is still open: the peer (here on posix) sees the stream
// reset, and a Connection the application still holds only fails its calls.
TEST(AsioRuntime, DestructionAbortsOpenConnections) {
  posix::PosixServerFactory posix_servers;
  auto listener = posix_servers.Listen(Address::IPv4("127.0.0.1", 0));
  ASSERT_TRUE(listener.ok());
  std::shared_ptr<Connection> held;
  {
    Runtime runtime(2);
    AsioClientFactory clients(runtime);
    auto client = clients.ConnectBlocking({(*listener)->address()}, Quick(1));
    ASSERT_TRUE(client.ok()) << client.status();
    held = *client;
  }
  std::shared_ptr<Connection> server_side = (*listener)->Accept(absl::Now() + absl::Seconds(10));
  ASSERT_NE(server_side, nullptr);
  auto collect = std::make_shared<Collect>();
  server_side->SetHandler(collect);
  ASSERT_TRUE(Eventually([&] { return collect->closed().has_value(); }));
  EXPECT_EQ(collect->closed()->kind(), CloseReason::Kind::kReset) << *collect->closed();
  EXPECT_FALSE(held->IsOpen());
  EXPECT_EQ(held->Write("late").code(), absl::StatusCode::kFailedPrecondition);
  held.reset();
}

// Many connections on one io thread: every one delivers, in order, on that thread.
TEST(AsioRuntime, ManyConnectionsOnOneThread) {
  Runtime runtime(1);
  AsioServerFactory servers(runtime);
  AsioClientFactory clients(runtime);
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> accepted;
  auto listener = servers.Listen(Address::IPv4("127.0.0.1", 0), [&](std::shared_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(mu);
    accepted.push_back(std::move(c));
  });
  ASSERT_TRUE(listener.ok());
  constexpr int kConnections = 200;
  std::vector<std::shared_ptr<Connection>> connections;
  for (int i = 0; i < kConnections; ++i) {
    auto c = clients.ConnectBlocking({(*listener)->address()}, Quick(1));
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Write("hello " + std::to_string(i)).ok());
    connections.push_back(*c);
  }
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return accepted.size() == kConnections;
  }));
  for (auto& c : connections) c->Close();
  (*listener)->Close();
}

}  // namespace
}  // namespace netlayer::asio
