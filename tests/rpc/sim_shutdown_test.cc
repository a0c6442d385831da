// rpc::Server::Shutdown and the server and client stats, on the simulator (guarded: no sockets,
// no threads). The application code uses netlayer::Host only (sim::SimHost here).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/host.h"
#include "netlayer/sim/world.h"

namespace netlayer::rpc {
namespace {

using ::testing::HasSubstr;

constexpr uint16_t kPort = 9100;

class ShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim::WorldOptions options;
    options.seed = 7;
    world_ = std::make_unique<sim::World>(options);
    server_host_.emplace(*world_, *world_->AddHost("server"));
    client_host_.emplace(*world_, *world_->AddHost("client"));
    server_ = Server::Create(server_host_->env());
    server_->Register("echo", [](const Request& r, Responder responder) {
      (void)responder.Reply(std::string(r.payload));
    });
    // Answered 500 ms later.
    server_->Register("slow", [this](const Request& r, Responder responder) {
      auto held = std::make_shared<Responder>(std::move(responder));
      Env& env = server_host_->env();
      env.RunAt(env.Now() + absl::Milliseconds(500),
                [held, payload = std::string(r.payload)] { (void)held->Reply(payload); });
    });
    // Never answered by the handler: the responder is kept.
    server_->Register("stuck", [this](const Request&, Responder responder) {
      stuck_.push_back(std::move(responder));
    });
    auto listener = server_host_->server_factory().Listen(
        Address::HostName("server", kPort), [this](std::shared_ptr<Connection> c) {
          if (server_->Serve(std::move(c)) == nullptr) ++refused_here_;
        });
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *listener;
    client_ = MakeClient();
    ASSERT_TRUE(client_->WaitReady(world_->Now() + absl::Seconds(5)));
  }

  void TearDown() override {
    if (client_) client_->Close();
    server_->Close();
    stuck_.clear();
  }

  std::shared_ptr<Client> MakeClient(std::optional<int> max_attempts = std::nullopt) {
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_attempts = max_attempts;
    auto client = Client::CreateReconnecting(client_host_->env(), client_host_->client_factory(),
                                             {Address::HostName("server", kPort)}, connect);
    EXPECT_TRUE(client.ok()) << client.status();
    return *client;
  }

  absl::Time In(absl::Duration d) { return world_->Now() + d; }

  std::unique_ptr<sim::World> world_;
  std::optional<sim::SimHost> server_host_;
  std::optional<sim::SimHost> client_host_;
  std::shared_ptr<Server> server_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<Client> client_;
  std::vector<Responder> stuck_;
  int refused_here_ = 0;
};

TEST_F(ShutdownTest, InflightCallsFinishNewCallsAndConnectionsAreRefused) {
  std::vector<CallFuture> slow;
  for (int i = 0; i < 3; ++i) slow.push_back(client_->CallAsync("slow", absl::StrCat("s", i)));
  ASSERT_TRUE(
      world_->RunUntil([&] { return server_->stats().inflight_calls == 3; }, In(absl::Seconds(1))));

  std::optional<absl::Status> outcome;
  server_->ShutdownAsync(In(absl::Seconds(5)), [&](const absl::Status& s) { outcome = s; });
  EXPECT_TRUE(server_->shutting_down());
  // A call that arrives now is refused at once, without running a handler.
  CallResult refused = client_->Call("echo", "late", In(absl::Seconds(2)));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("shutting down"));
  EXPECT_FALSE(outcome.has_value()) << "the slow calls are still in flight";
  // A new connection is refused.
  auto second = MakeClient(/*max_attempts=*/1);
  EXPECT_FALSE(second->WaitReady(In(absl::Seconds(2))));
  EXPECT_GE(refused_here_, 1);

  ASSERT_TRUE(world_->RunUntil([&] { return outcome.has_value(); }, In(absl::Seconds(5))));
  EXPECT_TRUE(outcome->ok()) << *outcome;
  EXPECT_TRUE(server_->Sessions().empty());
  // The replies were sent before the sessions closed: they arrive.
  ASSERT_TRUE(world_->RunUntil(
      [&] { return slow[0].Ready() && slow[1].Ready() && slow[2].Ready(); }, In(absl::Seconds(2))));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(slow[i].Ready());
    ASSERT_TRUE(slow[i].Wait().ok()) << slow[i].Wait().status();
    EXPECT_EQ(*slow[i].Wait(), absl::StrCat("s", i));
  }
  // Then the client sees the close.
  ASSERT_TRUE(world_->RunUntil([&] { return !client_->ready(); }, In(absl::Seconds(2))));
  const ServerStats stats = server_->stats();
  EXPECT_EQ(stats.calls_by_status.at("OK"), 3u);
  EXPECT_EQ(stats.calls_by_status.at("UNAVAILABLE"), 1u);
  EXPECT_GE(stats.sessions_refused, 1u);
  second->Close();
}

TEST_F(ShutdownTest, CallsStillInFlightAtTheDeadlineFailUnavailable) {
  CallFuture stuck = client_->CallAsync("stuck", "x");
  CallFuture slow = client_->CallAsync("slow", "y");
  ASSERT_TRUE(world_->RunUntil([&] { return stuck_.size() == 1; }, In(absl::Seconds(1))));
  // Blocking form: runs the world until the deadline.
  const absl::Status outcome = server_->Shutdown(In(absl::Seconds(1)));
  EXPECT_EQ(outcome.code(), absl::StatusCode::kDeadlineExceeded) << outcome;
  EXPECT_THAT(outcome.message(), HasSubstr("1 calls"));
  ASSERT_TRUE(world_->RunUntil([&] { return stuck.Ready(); }, In(absl::Seconds(1))));
  EXPECT_EQ(stuck.Wait().status().code(), absl::StatusCode::kUnavailable) << stuck.Wait().status();
  EXPECT_THAT(stuck.Wait().status().message(), HasSubstr("shutdown deadline"));
  ASSERT_TRUE(slow.Ready());
  EXPECT_TRUE(slow.Wait().ok()) << slow.Wait().status();
  // The handler's late answer is dropped, with a clear status.
  EXPECT_EQ(stuck_[0].Reply("late").code(), absl::StatusCode::kFailedPrecondition);
  // A second shutdown reports the same outcome at once.
  EXPECT_EQ(server_->Shutdown(In(absl::Seconds(1))).code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ShutdownTest, ShutdownWithNothingInFlightFinishesAtOnce) {
  std::optional<absl::Status> outcome;
  server_->ShutdownAsync(absl::InfiniteFuture(), [&](const absl::Status& s) { outcome = s; });
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->ok());
  EXPECT_TRUE(server_->Sessions().empty());
}

TEST_F(ShutdownTest, StatsCountCallsBytesSessionsAndReconnects) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client_->Call("echo", "abcd", In(absl::Seconds(2))).ok());
  EXPECT_EQ(client_->Call("nope", "", In(absl::Seconds(2))).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client_->Call("stuck", "", In(absl::Milliseconds(100))).status().code(),
            absl::StatusCode::kDeadlineExceeded);

  ServerStats s = server_->stats();
  EXPECT_EQ(s.sessions_open, 1u);
  EXPECT_EQ(s.sessions_accepted, 1u);
  EXPECT_EQ(s.calls_by_method.at("echo"), 4u);
  EXPECT_EQ(s.calls_by_method.at("(unknown)"), 1u);
  EXPECT_EQ(s.calls_by_method.at("stuck"), 1u);
  EXPECT_EQ(s.calls_by_status.at("OK"), 4u);
  EXPECT_EQ(s.calls_by_status.at("UNIMPLEMENTED"), 1u);
  EXPECT_EQ(s.inflight_calls, 1u);
  EXPECT_GT(s.bytes_in, 4u * (4 + 4));
  EXPECT_GT(s.bytes_out, 4u * (4 + 4));

  ClientStats c = client_->stats();
  EXPECT_EQ(c.connections, 1u);
  EXPECT_EQ(c.reconnects, 0u);
  EXPECT_TRUE(c.ready);
  EXPECT_EQ(c.calls_by_method.at("echo"), 4u);
  EXPECT_EQ(c.calls_by_status.at("OK"), 4u);
  EXPECT_EQ(c.calls_by_status.at("UNIMPLEMENTED"), 1u);
  EXPECT_EQ(c.calls_by_status.at("DEADLINE_EXCEEDED"), 1u);
  // What one side sent, the other received (nothing is in the network now).
  ASSERT_TRUE(world_->RunFor(absl::Milliseconds(100)).ok());
  c = client_->stats();
  s = server_->stats();
  EXPECT_EQ(c.bytes_out, s.bytes_in);
  EXPECT_EQ(c.bytes_in, s.bytes_out);

  // The server closes the session: the client reconnects (the listener serves a new server),
  // and counts it.
  server_->Close();
  server_ = Server::Create(server_host_->env());
  ASSERT_TRUE(
      world_->RunUntil([&] { return client_->stats().connections == 2; }, In(absl::Seconds(5))));
  c = client_->stats();
  EXPECT_EQ(c.disconnects, 1u);
  EXPECT_EQ(c.reconnects, 1u);

  const std::string json = c.ToJson();
  EXPECT_THAT(json, HasSubstr("\"connections\":2"));
  EXPECT_THAT(json, HasSubstr("\"calls_by_method\":{\"echo\":4,\"nope\":1,\"stuck\":1}"));
  EXPECT_THAT(s.ToJson(), HasSubstr("\"sessions_open\":1"));
  EXPECT_THAT(s.ToJson(), HasSubstr("\"OK\":4"));
}

// queued_output_bytes: what a side wrote that its peer has not taken yet. A peer that stops
// reading makes it grow (the network holds only the send buffer); once it reads again the
// queue drains to 0. Both directions, both stats, and the JSON.
TEST_F(ShutdownTest, StatsShowQueuedOutput) {
  const std::string big(size_t{1} << 20, 'q');  // four times the simulated send buffer
  EXPECT_EQ(server_->stats().queued_output_bytes, 0u);
  EXPECT_EQ(client_->stats().queued_output_bytes, 0u);

  // The client stops reading: the server's 1 MiB reply backs up in the server's output.
  ASSERT_TRUE(world_->StopReading(client_host_->id()).ok());
  CallFuture reply = client_->CallAsync("echo", big, In(absl::Seconds(30)));
  ASSERT_TRUE(world_->RunUntil([&] { return server_->stats().queued_output_bytes > 0; },
                               In(absl::Seconds(5))));
  ASSERT_TRUE(world_->RunFor(absl::Seconds(1)).ok());
  ServerStats s = server_->stats();
  EXPECT_GT(s.queued_output_bytes, big.size() / 2);
  EXPECT_LE(s.queued_output_bytes, big.size() + 64);
  EXPECT_THAT(s.ToJson(),
              HasSubstr(absl::StrCat("\"queued_output_bytes\":", s.queued_output_bytes)));
  EXPECT_EQ(client_->stats().queued_output_bytes, 0u);  // its call went out
  ASSERT_TRUE(world_->ResumeReading(client_host_->id()).ok());
  ASSERT_TRUE(world_->RunUntil([&] { return reply.Ready(); }, In(absl::Seconds(10))));
  ASSERT_TRUE(reply.Wait().ok());
  EXPECT_EQ(*reply.Wait(), big);
  EXPECT_EQ(server_->stats().queued_output_bytes, 0u);

  // The server stops reading: the client's 1 MiB call backs up in the client's output.
  ASSERT_TRUE(world_->StopReading(server_host_->id()).ok());
  CallFuture second = client_->CallAsync("echo", big, In(absl::Seconds(30)));
  ASSERT_TRUE(world_->RunFor(absl::Seconds(1)).ok());
  ClientStats c = client_->stats();
  EXPECT_GT(c.queued_output_bytes, big.size() / 2);
  EXPECT_LE(c.queued_output_bytes, big.size() + 64);
  EXPECT_THAT(c.ToJson(),
              HasSubstr(absl::StrCat("\"queued_output_bytes\":", c.queued_output_bytes)));
  EXPECT_EQ(server_->stats().queued_output_bytes, 0u);
  ASSERT_TRUE(world_->ResumeReading(server_host_->id()).ok());
  ASSERT_TRUE(world_->RunUntil([&] { return second.Ready(); }, In(absl::Seconds(10))));
  ASSERT_TRUE(second.Wait().ok());
  EXPECT_EQ(client_->stats().queued_output_bytes, 0u);
}

TEST(StatsJsonTest, EscapesMethodNames) {
  ServerStats s;
  s.calls_by_method["a\"b\\c\n"] = 2;
  EXPECT_THAT(s.ToJson(), HasSubstr("\"a\\\"b\\\\c\\u000a\":2"));
}

}  // namespace
}  // namespace netlayer::rpc
