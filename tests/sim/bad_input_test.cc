// Bad input to the simulator's API gives a clear absl::Status, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "netlayer/sim/world.h"
#include "null_connection.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(BadInput, Hosts) {
  World w(WorldOptions{});
  EXPECT_EQ(w.AddHost("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(w.AddHost("a b").status()), HasSubstr("[A-Za-z0-9._-]"));
  ASSERT_TRUE(w.AddHost("a").ok());
  EXPECT_EQ(w.AddHost("a").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(w.FindHost("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(w.FindHost("nope").status()), HasSubstr("unknown host 'nope'"));
}

TEST(BadInput, Listen) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  ASSERT_TRUE(w.AddHost("b").ok());
  auto& f = w.server_factory(a);
  auto first = f.Listen(Address::HostName("a", 80));
  ASSERT_TRUE(first.ok());
  auto twice = f.Listen(Address::HostName("a", 80));
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Message(twice.status()), HasSubstr("already in use"));
  EXPECT_EQ(f.Listen(Address::HostName("b", 80)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Listen(Address::Unix("/tmp/x")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Listen(Address::IPv4("127.0.0.1", 80)).status().code(),
            absl::StatusCode::kInvalidArgument);
  (*first)->Close();
  EXPECT_TRUE(f.Listen(Address::HostName("a", 80)).ok()) << "a closed listener frees its port";
}

TEST(BadInput, Connect) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  auto& f = w.client_factory(a);
  auto unknown = f.ConnectBlocking({Address::HostName("nowhere", 1)}, {});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(unknown.status()), HasSubstr("unknown host 'nowhere'"));
  ConnectOptions negative;
  negative.min_delay = absl::Seconds(-1);
  EXPECT_EQ(f.ConnectBlocking({Address::HostName("a", 1)}, negative).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConnectOptions timeout;
  timeout.attempt_timeout = absl::ZeroDuration();
  EXPECT_EQ(f.ConnectBlocking({Address::HostName("a", 1)}, timeout).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.ConnectBlocking({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.Connect({Address::HostName("a", 1)}, {}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.ConnectBlocking({Address::Unix("/x")}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.Crash(a).ok());
  EXPECT_EQ(f.ConnectBlocking({Address::HostName("a", 1)}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(BadInput, RunningAndScripting) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  EXPECT_EQ(w.RunFor(absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.RunUntilIdle(absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_EQ(w.At(w.start(), [] {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Clog(a, b, absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Clog(a, a, absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Clog(a, HostId{99}, absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Partition({}, {b}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(w.Partition({a}, {a, b})), HasSubstr("both sides"));
  EXPECT_EQ(w.Partition({a}, {HostId{7}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Heal({a}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Restart(a).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.Crash(a).ok());
  EXPECT_EQ(w.Crash(a).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.Crash(HostId{42}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(BadInput, ForeignConnections) {
  World w(WorldOptions{});
  World other(WorldOptions{});
  const HostId a = *other.AddHost("a");
  const HostId b = *other.AddHost("b");
  std::shared_ptr<Listener> l;
  auto pair = testing_util::ConnectPair(other, a, l, b);
  ASSERT_NE(pair.server, nullptr);
  EXPECT_EQ(w.Reset(*pair.client).code(), absl::StatusCode::kInvalidArgument);
  netlayer::test_support::NullConnection not_sim;
  EXPECT_EQ(w.Reset(not_sim).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.ConnectionId(not_sim).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BadInput, ProfileAndOptions) {
  WorldOptions o;
  o.profile.tail_probability = 2;
  auto w = World::Create(o);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(w.status()), HasSubstr("tail_probability"));
  o = WorldOptions{};
  o.profile.latency_min = absl::Milliseconds(-1);
  EXPECT_THAT(Message(World::Create(o).status()), HasSubstr("latency_min"));
  o = WorldOptions{};
  o.profile.send_buffer_bytes = 0;
  EXPECT_EQ(World::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = WorldOptions{};
  o.trace_capacity = 0;
  EXPECT_EQ(World::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(World::Create(WorldOptions{}).ok());
}

TEST(BadInput, ObjectsOutliveTheirWorldSafely) {
  std::shared_ptr<Connection> conn;
  std::shared_ptr<Listener> listener;
  {
    World w(WorldOptions{});
    const HostId a = *w.AddHost("a");
    const HostId b = *w.AddHost("b");
    auto pair = testing_util::ConnectPair(w, a, listener, b);
    conn = pair.client;
    conn->SetHandler(std::make_shared<testing_util::Recorder>());
  }
  EXPECT_FALSE(conn->IsOpen());
  EXPECT_EQ(conn->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  conn->Close();
  EXPECT_EQ(listener->Accept(), nullptr);
  listener->Close();
  EXPECT_FALSE(listener->IsOpen());
}

}  // namespace
}  // namespace netlayer::sim
