// The promise checker (sim/include/netlayer/sim/promise_checker.h): every kind of broken
// connection promise is planted, through a deliberately broken "backend" feeding the checker
// directly, or a broken delivery path or handler inside a world, and must be reported with the
// promise's number. Correct runs must stay silent.
#include "netlayer/sim/promise_checker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/sim/world.h"
#include "null_connection.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using testing_util::Recorder;

// A broken backend in miniature: the test plays its network and delivery loop and calls the
// checker's hooks as the world does; each test breaks one promise.
class PromiseCheckerTest : public ::testing::Test {
 protected:
  PromiseCheckerTest()
      : checker_(std::make_shared<PromiseChecker>(7, std::array<std::string, 2>{"client", "server"},
                                                  [this](int side, absl::Status why) {
                                                    reports_.push_back({side, std::move(why)});
                                                  })) {}

  // End 0 writes `data`, accepted.
  void Write(std::string_view data, int side = 0) {
    checker_->OnWrite(side, {data}, absl::OkStatus(), true);
  }
  // The network hands `n` bytes to end `side`.
  void Receive(size_t n, int side = 1) { checker_->OnReceived(side, n); }
  std::shared_ptr<ConnectionHandler> Install(int side = 1) {
    return checker_->Wrap(side, app_[side]);
  }
  // The one report, which must name `promise`.
  void ExpectReport(int promise, int side = 1) {
    ASSERT_EQ(reports_.size(), 1u);
    EXPECT_EQ(reports_[0].side, side);
    EXPECT_EQ(reports_[0].why.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(reports_[0].why.message()),
                HasSubstr(absl::StrCat("promise ", promise, " broken on conn#7 (")));
    EXPECT_EQ(checker_->status(), reports_[0].why);
  }

  struct Report {
    int side;
    absl::Status why;
  };
  std::shared_ptr<PromiseChecker> checker_;
  std::vector<Report> reports_;
  std::array<std::shared_ptr<Recorder>, 2> app_{std::make_shared<Recorder>(),
                                                std::make_shared<Recorder>()};
  netlayer::test_support::NullConnection conn_;
};

TEST_F(PromiseCheckerTest, ACorrectStreamIsSilentAndKeepsNothingOnceDelivered) {
  auto h = Install();
  Write("hello ");
  Write("world");
  EXPECT_EQ(checker_->kept_bytes(0), 11u);
  Receive(3);
  h->InputData(conn_, "hel");
  Receive(8);
  h->InputData(conn_, "lo worl");
  h->InputData(conn_, "d");
  EXPECT_EQ(checker_->kept_bytes(0), 0u);
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kPeerClosed, "eof"));
  EXPECT_TRUE(reports_.empty());
  EXPECT_EQ(app_[1]->received, "hello world");
  EXPECT_EQ(checker_->delivered(0), 11u);
  EXPECT_EQ(PromiseChecker::Unwrap(h), app_[1]);
}

TEST_F(PromiseCheckerTest, ADroppedByteIsPromise3) {
  auto h = Install();
  Write("abcdef");
  Receive(6);
  h->InputData(conn_, "abdef");
  ExpectReport(3);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("1 byte(s) missing at byte 2"));
  EXPECT_EQ(app_[1]->received, "abdef") << "the checker passes the call on unchanged";
}

TEST_F(PromiseCheckerTest, ADuplicatedByteIsPromise6) {
  auto h = Install();
  Write("abc");
  Receive(3);
  h->InputData(conn_, "abc");
  h->InputData(conn_, "c");
  ExpectReport(6);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("duplicated"));
}

TEST_F(PromiseCheckerTest, ReorderedBytesArePromise6) {
  auto h = Install();
  Write("abcdef");
  Receive(6);
  h->InputData(conn_, "abdc");
  ExpectReport(6);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("from byte 2"));
}

TEST_F(PromiseCheckerTest, InputQueuedBeforeTheHandlerLostIsPromise1) {
  Write("queued");
  Receive(6);  // no handler yet: the backend queues it
  checker_->BeginSetHandler(1);
  auto h = Install();
  h->InputData(conn_, "qued");  // the drain lost two bytes
  checker_->EndSetHandler(1);
  ExpectReport(1);
}

TEST_F(PromiseCheckerTest, ACloseOvertakingReceivedInputIsPromise1) {
  Write("abc");
  Receive(3);
  auto h = Install();
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  ExpectReport(1);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("3 received byte(s)"));
}

TEST_F(PromiseCheckerTest, AReentrantHandlerCallIsPromise2) {
  std::shared_ptr<ConnectionHandler> h;
  // A broken deliverer: it calls the handler again from inside the handler.
  class Reentering : public ConnectionHandler {
   public:
    explicit Reentering(std::shared_ptr<ConnectionHandler>* self) : self_(self) {}
    void InputData(Connection& c, std::string_view data) override {
      if (data == "a") (*self_)->InputData(c, "b");
    }
    void ConnectionClosed(Connection&, const CloseReason&) override {}

   private:
    std::shared_ptr<ConnectionHandler>* self_;
  };
  h = checker_->Wrap(1, std::make_shared<Reentering>(&h));
  Write("ab");
  Receive(2);
  h->InputData(conn_, "a");
  ExpectReport(2);
}

TEST_F(PromiseCheckerTest, ConnectionClosedTwiceIsPromise4) {
  auto h = Install();
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  ExpectReport(4);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("twice"));
}

TEST_F(PromiseCheckerTest, ConnectionClosedAfterALocalCloseIsPromise4) {
  auto h = Install();
  checker_->OnLocalClose(1);
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  ExpectReport(4);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("after a local Close()"));
}

TEST_F(PromiseCheckerTest, InputAfterALocalCloseOrAfterTheCloseIsPromise4) {
  {
    auto h = Install();
    Write("ab");
    Receive(2);
    checker_->OnLocalClose(1);
    h->InputData(conn_, "ab");
    ExpectReport(4);
  }
  reports_.clear();
  auto checker = std::make_shared<PromiseChecker>(8, std::array<std::string, 2>{"c", "s"},
                                                  [this](int side, absl::Status why) {
                                                    reports_.push_back({side, std::move(why)});
                                                  });
  auto h = checker->Wrap(0, app_[0]);
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  h->InputData(conn_, "x");
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(std::string(reports_[0].why.message()),
              HasSubstr("promise 4 broken on conn#8 (c end, connected): InputData delivered "
                        "after ConnectionClosed"));
}

TEST_F(PromiseCheckerTest, AWriteAcceptedAfterCloseIsPromise5) {
  checker_->OnLocalClose(0);
  checker_->OnWrite(0, {"late"}, absl::FailedPreconditionError("closed"), false);
  EXPECT_TRUE(reports_.empty()) << "a refused write is the promise kept";
  checker_->OnWrite(0, {"late"}, absl::OkStatus(), false);
  ExpectReport(5, 0);
}

TEST_F(PromiseCheckerTest, AGracefulCloseBeforeAllOutputArrivedIsPromise3) {
  auto h = Install();
  Write("abcdef");
  checker_->OnLocalClose(0);
  Receive(4);
  h->InputData(conn_, "abcd");
  // The backend delivered the end of stream while "ef" was still unsent.
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kPeerClosed, "eof"));
  ExpectReport(3);
  EXPECT_THAT(std::string(reports_[0].why.message()), HasSubstr("accepted 6"));
}

TEST_F(PromiseCheckerTest, AResetLosesWhatWasNotReceivedButNotWhatWas) {
  auto h = Install();
  Write("abcdef");
  Receive(4);
  checker_->OnBroken();
  h->InputData(conn_, "abcd");
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  EXPECT_TRUE(reports_.empty()) << reports_[0].why;
  EXPECT_EQ(checker_->kept_bytes(0), 0u);
}

TEST_F(PromiseCheckerTest, BytesPastWhatWasReceivedBeforeAResetAreInvented) {
  auto h = Install();
  Write("abcdef");
  Receive(2);
  checker_->OnBroken();
  h->InputData(conn_, "abc");
  ExpectReport(6);
}

TEST_F(PromiseCheckerTest, AReaderThatClosedKeepsNothing) {
  auto h = Install();
  checker_->OnLocalClose(1);
  Write(std::string(1 << 20, 'x'));
  EXPECT_EQ(checker_->kept_bytes(0), 0u);
  EXPECT_EQ(checker_->accepted(0), size_t{1} << 20);
  EXPECT_TRUE(reports_.empty());
}

TEST_F(PromiseCheckerTest, OnlyTheFirstViolationIsReported) {
  auto h = Install();
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  h->ConnectionClosed(conn_, CloseReason(CloseReason::Kind::kReset, "rst"));
  h->InputData(conn_, "x");
  ExpectReport(4);
}

// ---- In a world: the checker is on by default, silent on correct runs, and a broken delivery
// path or handler stops the world naming the promise and the connection. ----

struct WorldPair {
  std::unique_ptr<World> world;
  HostId client_host, server_host;
  std::shared_ptr<Listener> listener;
  testing_util::Pair pair;
  uint64_t id = 0;
};

WorldPair MakePair(WorldOptions options = {}) {
  WorldPair p;
  p.world = std::make_unique<World>(std::move(options));
  p.client_host = *p.world->AddHost("client");
  p.server_host = *p.world->AddHost("server");
  p.pair = testing_util::ConnectPair(*p.world, p.client_host, p.listener, p.server_host);
  p.id = *p.world->ConnectionId(*p.pair.client);
  return p;
}

void ExpectStopped(const WorldPair& p, int promise, const std::string& host) {
  const absl::Status s = p.world->status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  const std::string needle =
      absl::StrCat("promise ", promise, " broken on conn#", p.id, " (", host);
  EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  EXPECT_FALSE(testing_util::Find(*p.world, TraceKind::kWorld, needle).empty())
      << "the violation is traced";
  EXPECT_FALSE(p.world->RunFor(absl::Seconds(1)).ok()) << "a stopped world runs no more";
}

TEST(PromiseCheckerWorld, OnByDefaultAndSilentOnAFaultyButCorrectStream) {
  WorldOptions o;
  o.seed = 5;
  o.profile = DrawNetworkProfile(5);  // splits, merges, short writes, latency tails
  WorldPair p = MakePair(o);
  auto rec = std::make_shared<Recorder>();
  p.pair.client->SetHandler(std::make_shared<Recorder>());
  const std::string data = testing_util::Pattern(200'000, 9);
  for (size_t at = 0; at < data.size(); at += 7'000) {
    ASSERT_TRUE(p.pair.client->Write(std::string_view(data).substr(at, 7'000)).ok());
  }
  ASSERT_TRUE(p.world->RunFor(absl::Seconds(1)).ok());
  p.pair.server->SetHandler(rec);  // input queued meanwhile is delivered through the checker
  p.pair.client->Close();
  ASSERT_TRUE(p.world->RunFor(absl::Seconds(60)).ok()) << p.world->status();
  EXPECT_EQ(rec->received, data);
  ASSERT_EQ(rec->closes.size(), 1u);
  auto installed = p.world->InstalledHandler(*p.pair.server);
  ASSERT_TRUE(installed.ok());
  EXPECT_NE(*installed, rec) << "the application's handler is installed inside a checking one";
  EXPECT_EQ(PromiseChecker::Unwrap(*installed), rec);
  EXPECT_EQ(p.pair.server->SetHandler(nullptr), rec) << "SetHandler gives back the app's own";
}

TEST(PromiseCheckerWorld, ABrokenDeliveryPathDuplicatingBytesStopsTheWorld) {
  WorldPair p = MakePair();
  auto rec = std::make_shared<Recorder>();
  p.pair.server->SetHandler(rec);
  ASSERT_TRUE(p.pair.client->Write("hello").ok());
  ASSERT_TRUE(p.world->RunFor(absl::Seconds(1)).ok());
  ASSERT_EQ(rec->received, "hello");
  // The broken path delivers the last byte again.
  std::shared_ptr<ConnectionHandler> installed = *p.world->InstalledHandler(*p.pair.server);
  installed->InputData(*p.pair.server, "o");
  ExpectStopped(p, 6, "server end");
}

TEST(PromiseCheckerWorld, ABrokenDeliveryPathDroppingAByteStopsTheWorld) {
  WorldPair p = MakePair();
  auto rec = std::make_shared<Recorder>();
  p.pair.server->SetHandler(rec);
  ASSERT_TRUE(p.pair.client->Write("hello").ok());
  // Before the world delivers, the broken path hands over the bytes with one missing.
  std::shared_ptr<ConnectionHandler> installed = *p.world->InstalledHandler(*p.pair.server);
  installed->InputData(*p.pair.server, "hllo");
  ExpectStopped(p, 3, "server end");
}

TEST(PromiseCheckerWorld, AHandlerReenteredStopsTheWorld) {
  WorldPair p = MakePair();
  // A broken forwarder: it calls the connection's installed handler from inside a handler call.
  class Forwarder : public ConnectionHandler {
   public:
    explicit Forwarder(World& w) : w_(w) {}
    void InputData(Connection& c, std::string_view data) override {
      if (!forwarded_) {
        forwarded_ = true;
        (*w_.InstalledHandler(c))->InputData(c, data);
      }
    }
    void ConnectionClosed(Connection&, const CloseReason&) override {}

   private:
    World& w_;
    bool forwarded_ = false;
  };
  p.pair.server->SetHandler(std::make_shared<Forwarder>(*p.world));
  ASSERT_TRUE(p.pair.client->Write("x").ok());
  EXPECT_FALSE(p.world->RunFor(absl::Seconds(1)).ok());
  ExpectStopped(p, 2, "server end");
}

TEST(PromiseCheckerWorld, ConnectionClosedAfterALocalCloseStopsTheWorld) {
  WorldPair p = MakePair();
  auto rec = std::make_shared<Recorder>();
  p.pair.client->SetHandler(rec);
  std::shared_ptr<ConnectionHandler> installed = *p.world->InstalledHandler(*p.pair.client);
  p.pair.client->Close();
  // A broken wrapper forwards a close to the handler after the application closed.
  installed->ConnectionClosed(*p.pair.client, CloseReason(CloseReason::Kind::kReset, "late"));
  ExpectStopped(p, 4, "client end");
  EXPECT_EQ(rec->closes.size(), 1u) << "the call is passed on unchanged";
}

TEST(PromiseCheckerWorld, ACloseOvertakingQueuedInputStopsTheWorld) {
  WorldPair p = MakePair();
  // A handler was set once, then removed: input now queues in the connection.
  p.pair.server->SetHandler(std::make_shared<Recorder>());
  std::shared_ptr<ConnectionHandler> stale = *p.world->InstalledHandler(*p.pair.server);
  p.pair.server->SetHandler(nullptr);
  ASSERT_TRUE(p.pair.client->Write("queued").ok());
  ASSERT_TRUE(p.world->RunFor(absl::Seconds(1)).ok());
  // The broken path delivers a close ahead of the queued input.
  stale->ConnectionClosed(*p.pair.server, CloseReason(CloseReason::Kind::kReset, "early"));
  ExpectStopped(p, 1, "server end");
}

TEST(PromiseCheckerWorld, OffForBenchmarks) {
  WorldOptions o;
  o.check_promises = false;
  WorldPair p = MakePair(o);
  auto rec = std::make_shared<Recorder>();
  p.pair.server->SetHandler(rec);
  EXPECT_EQ(*p.world->InstalledHandler(*p.pair.server), rec);
  ASSERT_TRUE(p.pair.client->Write("hello").ok());
  ASSERT_TRUE(p.world->RunFor(absl::Seconds(1)).ok());
  rec->InputData(*p.pair.server, "o");  // nothing watches
  EXPECT_TRUE(p.world->RunFor(absl::Seconds(1)).ok());
}

}  // namespace
}  // namespace netlayer::sim
