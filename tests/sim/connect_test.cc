// The sim ClientConnectionFactory drives core's ConnectSchedule on virtual time: attempt times
// and address order match the schedule exactly; cancel; callbacks never inline; jitter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class Handler : public ConnectHandler {
 public:
  void Connected(std::shared_ptr<Connection> c) override { connections.push_back(std::move(c)); }
  void FailedConnection(const absl::Status& s) override { failures.push_back(s); }
  std::vector<std::shared_ptr<Connection>> connections;
  std::vector<absl::Status> failures;
};

struct Attempt {
  absl::Duration at;
  std::string target;
  friend bool operator==(const Attempt&, const Attempt&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Attempt& a) {
    return os << a.target << "@" << absl::FormatDuration(a.at);
  }
};

std::vector<Attempt> Attempts(const World& w) {
  std::vector<Attempt> out;
  for (const TraceEvent& e : testing_util::Find(w, TraceKind::kConnect, " try ")) {
    out.push_back({e.time, e.detail.substr(e.detail.rfind(' ') + 1)});
  }
  return out;
}

TEST(ConnectSchedule, AttemptTimesMatchTheScheduleExactlyUnderAPartition) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("c");
  const HostId s1 = *w.AddHost("s1");
  const HostId s2 = *w.AddHost("s2");
  ASSERT_TRUE(w.server_factory(s1).Listen(Address::HostName("s1", 1)).ok());
  ASSERT_TRUE(w.server_factory(s2).Listen(Address::HostName("s2", 2)).ok());
  ASSERT_TRUE(w.Partition({c}, {s1, s2}).ok());
  ConnectOptions o;
  o.min_delay = absl::Seconds(1);
  o.max_delay = absl::Seconds(4);
  o.delay_backoff = 2;
  o.max_attempts = 4;
  o.attempt_timeout = absl::Milliseconds(500);
  auto r = w.client_factory(c).ConnectBlocking(
      {Address::HostName("s1", 1), Address::HostName("s2", 2)}, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("4 rounds"));
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("round 4 s2:2: connect to s2:2 timed out"));
  using absl::Milliseconds;
  EXPECT_THAT(
      Attempts(w),
      ElementsAre(Attempt{Milliseconds(0), "s1:1"}, Attempt{Milliseconds(500), "s2:2"},
                  // wait 1 s
                  Attempt{Milliseconds(2000), "s1:1"}, Attempt{Milliseconds(2500), "s2:2"},
                  // wait 2 s
                  Attempt{Milliseconds(5000), "s1:1"}, Attempt{Milliseconds(5500), "s2:2"},
                  // wait 4 s (max_delay)
                  Attempt{Milliseconds(10000), "s1:1"}, Attempt{Milliseconds(10500), "s2:2"}));
  EXPECT_EQ(w.Elapsed(), absl::Milliseconds(11000)) << "the failure comes at the last timeout";
}

TEST(ConnectSchedule, HealMidScheduleConnectsOnTheNextAttempt) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("c");
  const HostId s = *w.AddHost("s");
  auto l = *w.server_factory(s).Listen(Address::HostName("s", 1));
  ASSERT_TRUE(w.Partition({c}, {s}).ok());
  ASSERT_TRUE(w.At(w.start() + absl::Milliseconds(2600), [&] { w.HealAll(); }).ok());
  ConnectOptions o;
  o.min_delay = absl::Seconds(1);
  o.max_delay = absl::Seconds(8);
  o.delay_backoff = 2;
  o.attempt_timeout = absl::Milliseconds(500);
  auto r = w.client_factory(c).ConnectBlocking({Address::HostName("s", 1)}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  // Attempts at 0 (timeout 0.5), 1.5 (timeout 2.0), then wait 2 s: 4.0 succeeds.
  using absl::Milliseconds;
  EXPECT_THAT(Attempts(w),
              ElementsAre(Attempt{Milliseconds(0), "s:1"}, Attempt{Milliseconds(1500), "s:1"},
                          Attempt{Milliseconds(4000), "s:1"}));
  EXPECT_NE(l->Accept(w.Now() + absl::Seconds(1)), nullptr);
}

TEST(ConnectSchedule, RefusalsFollowTheRoundsAndMaxAttemptsReportsEveryReason) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("c");
  ASSERT_TRUE(w.AddHost("s").ok());
  auto h = std::make_shared<Handler>();
  ConnectOptions o;
  o.min_delay = absl::Milliseconds(100);
  o.max_delay = absl::Milliseconds(100);
  o.max_attempts = 3;
  auto attempt = w.client_factory(c).Connect({Address::HostName("s", 1)}, o, h);
  ASSERT_TRUE(attempt.ok());
  EXPECT_TRUE(h->failures.empty()) << "callbacks never run inside Connect";
  ASSERT_TRUE(w.RunUntilIdle().ok());
  ASSERT_EQ(h->failures.size(), 1u);
  EXPECT_TRUE((*attempt)->done());
  const std::string m(h->failures[0].message());
  EXPECT_THAT(m, HasSubstr("round 1 s:1: connect to s:1: connection refused"));
  EXPECT_THAT(m, HasSubstr("round 3 s:1"));
  EXPECT_EQ(Attempts(w).size(), 3u);
}

TEST(ConnectSchedule, CancelStopsEverythingAndNoCallbackFollows) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("c");
  const HostId s = *w.AddHost("s");
  ASSERT_TRUE(w.Partition({c}, {s}).ok());
  auto h = std::make_shared<Handler>();
  auto attempt = *w.client_factory(c).Connect({Address::HostName("s", 1)}, {}, h);
  ASSERT_TRUE(w.RunFor(absl::Seconds(5)).ok());
  EXPECT_FALSE(attempt->done());
  attempt->Cancel();
  EXPECT_TRUE(attempt->done());
  attempt->Cancel();  // idempotent
  ASSERT_TRUE(w.RunFor(absl::Seconds(120)).ok());
  EXPECT_TRUE(h->failures.empty());
  EXPECT_TRUE(h->connections.empty());
  EXPECT_FALSE(testing_util::Find(w, TraceKind::kConnect, "cancelled").empty());
}

TEST(ConnectSchedule, CancelDuringTheHandshakeResetsTheServerSide) {
  WorldOptions wo;
  wo.profile.latency_min = absl::Milliseconds(100);
  wo.profile.latency_mean = absl::ZeroDuration();
  World w(wo);
  const HostId c = *w.AddHost("c");
  const HostId s = *w.AddHost("s");
  auto l = *w.server_factory(s).Listen(Address::HostName("s", 1));
  auto h = std::make_shared<Handler>();
  auto attempt = *w.client_factory(c).Connect({Address::HostName("s", 1)}, {}, h);
  // The SYN arrives at 100 ms; the SYN-ACK would arrive at 200 ms.
  std::shared_ptr<Connection> server = l->Accept(w.start() + absl::Milliseconds(150));
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->IsOpen());
  attempt->Cancel();
  EXPECT_FALSE(server->IsOpen());
  ASSERT_TRUE(w.RunFor(absl::Seconds(1)).ok());
  EXPECT_TRUE(h->connections.empty());
}

TEST(ConnectSchedule, JitterDrawsFromTheWorldsGeneratorDeterministically) {
  auto run = [](uint64_t seed) {
    WorldOptions wo;
    wo.seed = seed;
    World w(wo);
    const HostId c = *w.AddHost("c");
    EXPECT_TRUE(w.AddHost("s").ok());
    ConnectOptions o;
    o.min_delay = o.max_delay = absl::Seconds(1);
    o.jitter = 0.5;
    o.max_attempts = 4;
    EXPECT_FALSE(w.client_factory(c).ConnectBlocking({Address::HostName("s", 1)}, o).ok());
    return Attempts(w);
  };
  const auto a = run(7);
  EXPECT_EQ(a, run(7));
  EXPECT_NE(a, run(8));
  ASSERT_EQ(a.size(), 4u);
  bool jittered = false;
  for (size_t i = 1; i < a.size(); ++i) {
    const absl::Duration gap = a[i].at - a[i - 1].at;
    EXPECT_GE(gap, absl::Milliseconds(500));
    EXPECT_LE(gap, absl::Milliseconds(1600));
    if (absl::AbsDuration(gap - absl::Seconds(1)) > absl::Milliseconds(5)) jittered = true;
  }
  EXPECT_TRUE(jittered);
}

TEST(ConnectSchedule, ConnectedHandsOverAnOpenConnectionWithAddresses) {
  World w(WorldOptions{});
  const HostId c = *w.AddHost("c");
  const HostId s = *w.AddHost("s");
  auto l = *w.server_factory(s).Listen(Address::HostName("s", 1));
  auto h = std::make_shared<Handler>();
  ASSERT_TRUE(w.client_factory(c).Connect({Address::HostName("s", 1)}, {}, h).ok());
  ASSERT_TRUE(w.RunUntil([&] { return !h->connections.empty(); }, w.Now() + absl::Seconds(5)));
  auto conn = h->connections[0];
  EXPECT_TRUE(conn->IsOpen());
  EXPECT_EQ(conn->peer_address(), Address::HostName("s", 1));
  EXPECT_EQ(conn->local_address().host(), "c");
  auto server = l->Accept(w.Now());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->peer_address(), conn->local_address());
}

}  // namespace
}  // namespace netlayer::sim
