// The rpc suite on real sockets, parametrised over backends (socket_rpc_suite.h): many threads
// calling over one connection, pushes, connection loss, and a reconnecting client. Instantiated
// by posix_rpc_test (posix) and asio_rpc_test (asio, and asio mixed with posix). Run under TSan
// too (the tsan preset).
#include "socket_rpc_suite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace netlayer::rpc::testing {
namespace {

using ::testing::HasSubstr;

TEST_P(SocketRpcTest, EightThreadsManyCallsOverOneConnection) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  constexpr int kThreads = 8;
  constexpr int kCalls = 2000;
  std::atomic<int> wrong{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string payload = absl::StrCat("t", t, "-", i, std::string(i % 50, 'x'));
        CallResult r = client->Call("echo", payload, In(absl::Seconds(60)));
        if (!r.ok() || *r != "echo:" + payload) {
          ++wrong;
        } else {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * kCalls);
  EXPECT_EQ(client->pending_calls(), 0u);
}

TEST_P(SocketRpcTest, FuturesAndPushesKeepArrivalOrder) {
  std::mutex mu;
  std::vector<std::string> events;
  ClientOptions options;
  options.on_push = [&](std::string_view, std::string_view payload) {
    std::lock_guard lock(mu);
    events.push_back(absl::StrCat("push:", std::string(payload)));
  };
  server_->Register("commit", [](const Request& r, Responder resp) {
    (void)r.session.Push("invalidate", absl::StrCat("before-", std::string(r.payload)));
    (void)resp.Reply(std::string(r.payload));
    (void)r.session.Push("invalidate", absl::StrCat("after-", std::string(r.payload)));
  });
  auto client = Connect(options);
  ASSERT_NE(client, nullptr);
  std::vector<CallFuture> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(
        client->CallAsync("commit", absl::StrCat(i), In(absl::Seconds(60)), [&, i](CallResult r) {
          std::lock_guard lock(mu);
          events.push_back(r.ok() ? "reply:" + *r : "error");
          EXPECT_EQ(*r, absl::StrCat(i));
        }));
  }
  for (auto& f : futures) ASSERT_TRUE(f.Wait().ok());
  // The last push of the last call may still be on its way.
  const absl::Time deadline = In(absl::Seconds(30));
  auto count = [&] {
    std::lock_guard lock(mu);
    return events.size();
  };
  while (count() < 600 && absl::Now() < deadline) std::this_thread::yield();
  std::lock_guard lock(mu);
  ASSERT_EQ(events.size(), 600u);
  // Per call: before-i, reply i, after-i in that order.
  std::map<std::string, size_t> pos;
  for (size_t k = 0; k < events.size(); ++k) pos[events[k]] = k;
  for (int i = 0; i < 200; ++i) {
    EXPECT_LT(pos[absl::StrCat("push:before-", i)], pos[absl::StrCat("reply:", i)]);
    EXPECT_LT(pos[absl::StrCat("reply:", i)], pos[absl::StrCat("push:after-", i)]);
  }
}

TEST_P(SocketRpcTest, ConnectionLossFailsPendingCallsAndReconnectingClientRecovers) {
  std::mutex mu;
  std::vector<Responder> held;
  server_->Register("hold", [&](const Request&, Responder resp) {
    std::lock_guard lock(mu);
    held.push_back(std::move(resp));
  });
  auto client =
      Client::CreateReconnecting(env(), client_factory(), {listener_->address()}, QuickRetry());
  ASSERT_TRUE(client.ok()) << client.status();
  auto c = *client;
  EXPECT_EQ(*c->Call("echo", "1", In(absl::Seconds(30))), "echo:1");
  std::vector<CallFuture> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(c->CallAsync("hold", "", In(absl::Seconds(60))));
  const absl::Time deadline = In(absl::Seconds(30));
  auto count = [&] {
    std::lock_guard lock(mu);
    return held.size();
  };
  while (count() < 10 && absl::Now() < deadline) std::this_thread::yield();
  for (const auto& s : server_->Sessions()) s->Close();
  for (auto& f : futures) {
    EXPECT_EQ(f.Wait().status().code(), absl::StatusCode::kUnavailable) << f.Wait().status();
  }
  EXPECT_EQ(*c->Call("echo", "2", In(absl::Seconds(30))), "echo:2");
  {
    std::lock_guard lock(mu);
    held.clear();  // answers to a closed session are dropped
  }
  c->Close();
}

TEST_P(SocketRpcTest, HeartbeatClosesSilentConnection) {
  // A server that never answers pings: a raw listener that accepts and says nothing.
  auto silent = server_factory().Listen(*Address::Parse("127.0.0.1:0"));
  ASSERT_TRUE(silent.ok());
  auto conn = client_factory().ConnectBlocking({(*silent)->address()}, QuickRetry());
  ASSERT_TRUE(conn.ok());
  auto accepted = (*silent)->Accept(In(absl::Seconds(10)));
  ASSERT_NE(accepted, nullptr);
  ClientOptions options;
  options.handshake_timeout = absl::Milliseconds(300);
  auto client = Client::Create(env(), *conn, options);
  auto r = client->Call("echo", "", In(absl::Seconds(30)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("timeout: rpc handshake"));
  (*silent)->Close();
}

}  // namespace

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SocketRpcTest);

}  // namespace netlayer::rpc::testing
