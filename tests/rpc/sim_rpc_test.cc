// rpc on the simulator (guarded: no sockets, no threads): many concurrent calls through the future
// form interleaved with server pushes, random chunking and latency, resets mid-call and a server
// crash and restart, over many seeds. Checked: every call completes exactly once, with its own
// reply or kUnavailable / kDeadlineExceeded; no reply is matched to the wrong call; a reply is
// processed after exactly the pushes the server sent before it; after the faults stop, new calls
// succeed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/world.h"

namespace netlayer::rpc {
namespace {

constexpr uint16_t kPort = 9000;

// The server application: started on the server host, and again after each restart.
struct ServerApp {
  ServerApp(sim::World& world, sim::HostId host) : world(world), host(host) {}

  void Start() {
    server = Server::Create(world.env(host));
    // "tick": push the session's next sequence number, then reply with it (ZEO: an invalidation
    // sent before a reply must be processed before it).
    server->Register("tick", [this](const Request& r, Responder resp) {
      const uint64_t k = ++seq[r.session.id()];
      (void)r.session.Push("seq", absl::StrCat(k));
      (void)resp.Reply(absl::StrCat(std::string(r.payload), "#", k));
    });
    // "slow": answered later from a timer, with a push first.
    server->Register("slow", [this](const Request& r, Responder resp) {
      auto held = std::make_shared<Responder>(std::move(resp));
      std::weak_ptr<Session> session = r.session.shared_from_this();
      const std::string payload(r.payload);
      const auto delay = absl::Milliseconds(UniformInt(world.generator(), 1, 300));
      world.env(host).RunAt(world.env(host).Now() + delay, [this, held, session, payload] {
        auto s = session.lock();
        if (!s) return;
        const uint64_t k = ++seq[s->id()];
        (void)s->Push("seq", absl::StrCat(k));
        (void)held->Reply(absl::StrCat(payload, "#", k));
      });
    });
    auto listener = world.server_factory(host).Listen(
        Address::HostName(world.HostName(host), kPort), [this](std::shared_ptr<Connection> c) {
          connections.push_back(c);
          server->Serve(std::move(c));
        });
    ASSERT_TRUE(listener.ok()) << listener.status();
    this->listener = *listener;
  }

  sim::World& world;
  sim::HostId host;
  std::shared_ptr<Server> server;
  std::shared_ptr<Listener> listener;
  std::map<uint64_t, uint64_t> seq;  // per session id
  std::vector<std::shared_ptr<Connection>> connections;
};

// One client host with a reconnecting client and the bookkeeping of its calls.
struct ClientApp {
  struct CallRecord {
    std::string method;
    int completions = 0;
    absl::StatusCode code = absl::StatusCode::kOk;
    std::string reply;
  };

  ClientApp(sim::World& world, sim::HostId host, const Address& server) : world(world) {
    ClientOptions options;
    options.on_push = [this](std::string_view method, std::string_view payload) {
      EXPECT_EQ(method, "seq");
      uint64_t k = 0;
      EXPECT_TRUE(absl::SimpleAtoi(absl::string_view(payload.data(), payload.size()), &k));
      // Pushes of one connection arrive in order, without gaps.
      EXPECT_EQ(k, last_push + 1) << "push out of order";
      last_push = k;
    };
    options.on_ready = [this](uint16_t) { last_push = 0; };  // a new session counts from 1
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(50);
    connect.max_delay = absl::Milliseconds(800);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(2);
    auto c = Client::CreateReconnecting(world.env(host), world.client_factory(host), {server},
                                        connect, options);
    EXPECT_TRUE(c.ok()) << c.status();
    client = *c;
  }

  void StartCall(Generator& gen) {
    const int n = next++;
    const std::string method = Bernoulli(gen, 0.5) ? "tick" : "slow";
    const std::string payload = absl::StrCat("c", n);
    calls[n].method = method;
    client->CallAsync(method, payload, world.Now() + absl::Seconds(10),
                      [this, n, payload](CallResult r) {
                        CallRecord& rec = calls[n];
                        ++rec.completions;
                        rec.code = r.status().code();
                        if (!r.ok()) return;
                        rec.reply = *r;
                        // The reply is this call's own, and it follows exactly the pushes sent
                        // before it.
                        const std::string prefix = payload + "#";
                        ASSERT_EQ(r->substr(0, prefix.size()), prefix) << "reply to the wrong call";
                        uint64_t k = 0;
                        ASSERT_TRUE(absl::SimpleAtoi(r->substr(prefix.size()), &k));
                        EXPECT_EQ(k, last_push) << "reply processed out of order with pushes";
                      });
  }

  sim::World& world;
  std::shared_ptr<Client> client;
  uint64_t last_push = 0;
  int next = 0;
  std::map<int, CallRecord> calls;
};

class SimRpcTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(SimRpcTest, CallsCompleteOnceWithTheRightReplyUnderFaults) {
  const uint64_t seed = GetParam();
  sim::WorldOptions options;
  options.seed = seed;
  // Random chunking: short writes and split or merged reads; a latency tail.
  options.profile.max_write_chunk = 97;
  options.profile.full_write_probability = 0.3;
  options.profile.max_read_chunk = 61;
  options.profile.full_read_probability = 0.3;
  options.profile.tail_probability = 0.05;
  options.profile.tail_mean = absl::Milliseconds(20);
  sim::World world(options);
  const sim::HostId server_host = *world.AddHost("server");
  std::vector<sim::HostId> client_hosts = {*world.AddHost("client1"), *world.AddHost("client2")};
  const Address server_address = Address::HostName("server", kPort);

  auto app = std::make_unique<ServerApp>(world, server_host);
  app->Start();
  world.SetRestartHook(server_host, [&] {
    app = std::make_unique<ServerApp>(world, server_host);
    app->Start();
  });
  std::vector<std::unique_ptr<ClientApp>> clients;
  for (sim::HostId h : client_hosts) {
    clients.push_back(std::make_unique<ClientApp>(world, h, server_address));
  }

  // The workload: calls at random times over 20 s; resets mid-call; one crash and restart.
  Generator& gen = world.generator();
  for (int i = 0; i < 400; ++i) {
    const auto at = world.Now() + absl::Microseconds(UniformInt(gen, 0, 20'000'000));
    const size_t which = UniformInt(gen, 0, clients.size() - 1);
    ASSERT_TRUE(world.At(at, [&, which] { clients[which]->StartCall(world.generator()); }).ok());
  }
  for (int i = 0; i < 6; ++i) {
    const auto at = world.Now() + absl::Microseconds(UniformInt(gen, 0, 20'000'000));
    ASSERT_TRUE(world
                    .At(at,
                        [&] {
                          auto& conns = app->connections;
                          std::erase_if(conns, [](auto& c) { return !c->IsOpen(); });
                          if (conns.empty()) return;
                          auto& c = conns[UniformInt(world.generator(), 0, conns.size() - 1)];
                          (void)world.Reset(*c);
                        })
                    .ok());
  }
  const auto crash_at = world.Now() + absl::Microseconds(UniformInt(gen, 2'000'000, 18'000'000));
  // A call from each client just before the crash: the faults bite on every seed (the random
  // workload alone may leave no call in flight at a crash or a reset).
  ASSERT_TRUE(world
                  .At(crash_at,
                      [&] {
                        for (auto& c : clients) c->StartCall(world.generator());
                        ASSERT_TRUE(world.Crash(server_host).ok());
                      })
                  .ok());
  ASSERT_TRUE(
      world.At(crash_at + absl::Seconds(2), [&] { ASSERT_TRUE(world.Restart(server_host).ok()); })
          .ok());
  ASSERT_TRUE(world.RunFor(absl::Seconds(35)).ok()) << world.status();

  // Every call completed exactly once, with its reply or a connection/deadline failure.
  int ok = 0;
  std::map<absl::StatusCode, int> by_code;
  for (auto& c : clients) {
    for (const auto& [n, rec] : c->calls) {
      ASSERT_EQ(rec.completions, 1) << "call " << n << " seed " << seed;
      EXPECT_TRUE(rec.code == absl::StatusCode::kOk || rec.code == absl::StatusCode::kUnavailable ||
                  rec.code == absl::StatusCode::kDeadlineExceeded)
          << absl::StatusCodeToString(rec.code);
      if (rec.code == absl::StatusCode::kOk) ++ok;
      ++by_code[rec.code];
    }
    EXPECT_EQ(c->client->pending_calls(), 0u);
  }
  EXPECT_GT(ok, 0);
  // The faults must have bitten (else this test checks little).
  EXPECT_GT(by_code[absl::StatusCode::kUnavailable] + by_code[absl::StatusCode::kDeadlineExceeded],
            0);
  RecordProperty("ok", ok);
  RecordProperty("unavailable", by_code[absl::StatusCode::kUnavailable]);
  RecordProperty("deadline_exceeded", by_code[absl::StatusCode::kDeadlineExceeded]);

  // Liveness: the faults are over; every client reconnects and a blocking call succeeds.
  for (auto& c : clients) {
    auto r = c->client->Call("tick", "final", world.Now() + absl::Seconds(10));
    ASSERT_TRUE(r.ok()) << r.status() << " seed " << seed;
    EXPECT_EQ(r->substr(0, 6), "final#");
  }
  for (auto& c : clients) c->client->Close();
  app.reset();
}

// Issue 12 bug 3 (reconnect storm): a server that accepts and drops, or speaks another version,
// never completes a handshake, so the reconnecting client's connect schedule must keep backing off
// and max_attempts must end it, with an error naming why.
//
// The most rounds the seed's schedule can have started within `elapsed` of its start: round 1 at
// once, round k+1 `delay` after round k ended (an attempt here ends at most `latency` after it
// started), the delay growing by delay_backoff up to max_delay.
int RoundsAllowed(const ConnectOptions& o, absl::Duration elapsed) {
  int rounds = 1;
  absl::Duration at = absl::ZeroDuration();
  absl::Duration delay = o.min_delay;
  while (!o.max_attempts || rounds < *o.max_attempts) {
    at += delay;
    if (at > elapsed) break;
    ++rounds;
    delay = std::min(delay * o.delay_backoff, o.max_delay);
  }
  return rounds;
}

// kSilent: accepts and says nothing (what a TLS server is to a plaintext client).
enum class BadServer { kAcceptAndClose, kOtherVersion, kSilent };

struct StormResult {
  int accepted = 0;
  absl::Status last_error;
  CallResult call = absl::UnknownError("not run");
  bool ready_ever = false;
};

StormResult RunAgainstBadServer(BadServer kind, ConnectOptions connect, absl::Duration run_for,
                                bool retry_permanent = false) {
  sim::WorldOptions options;
  options.seed = 7;
  sim::World world(options);
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  StormResult result;
  std::vector<std::shared_ptr<Connection>> silent;
  std::shared_ptr<Server> server;
  if (kind == BadServer::kOtherVersion) {
    ServerOptions sopt;
    sopt.min_version = 2;
    sopt.max_version = 2;
    server = Server::Create(world.env(server_host), sopt);
  }
  auto listener =
      world.server_factory(server_host)
          .Listen(Address::HostName("server", kPort), [&](std::shared_ptr<Connection> c) {
            ++result.accepted;
            if (server) {
              server->Serve(std::move(c));
            } else if (kind == BadServer::kSilent) {
              silent.push_back(std::move(c));
            } else {
              c->Close();
            }
          });
  EXPECT_TRUE(listener.ok()) << listener.status();
  ClientOptions copt;
  copt.retry_permanent_failures = retry_permanent;
  copt.on_ready = [&](uint16_t) { result.ready_ever = true; };
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, connect, copt);
  auto call = client->CallAsync("echo", "", absl::InfiniteFuture());
  EXPECT_TRUE(world.RunFor(run_for).ok()) << world.status();
  result.last_error = client->last_error();
  if (call.Ready()) result.call = call.Wait();
  client->Close();
  if (server) server->Close();
  return result;
}

ConnectOptions StormSchedule() {
  ConnectOptions connect;
  connect.min_delay = absl::Milliseconds(100);
  connect.max_delay = absl::Seconds(1);
  connect.delay_backoff = 2;
  connect.attempt_timeout = absl::Seconds(1);
  return connect;
}

TEST(SimRpcReconnectTest, AcceptAndCloseIsRetriedOnTheBackoffSchedule) {
  const ConnectOptions connect = StormSchedule();
  const StormResult r = RunAgainstBadServer(BadServer::kAcceptAndClose, connect, absl::Seconds(10));
  EXPECT_FALSE(r.ready_ever);
  EXPECT_GE(r.accepted, 2);
  EXPECT_LE(r.accepted, RoundsAllowed(connect, absl::Seconds(10))) << "a reconnect storm";
  EXPECT_FALSE(r.call.ok());
}

TEST(SimRpcReconnectTest, AcceptAndCloseEndsAfterMaxAttemptsNamingTheReason) {
  ConnectOptions connect = StormSchedule();
  connect.max_attempts = 4;
  const StormResult r = RunAgainstBadServer(BadServer::kAcceptAndClose, connect, absl::Seconds(30));
  EXPECT_EQ(r.accepted, 4);
  EXPECT_EQ(r.call.status().code(), absl::StatusCode::kUnavailable) << r.call.status();
  EXPECT_THAT(std::string(r.call.status().message()), ::testing::HasSubstr("gave up connecting"));
  EXPECT_THAT(std::string(r.call.status().message()),
              ::testing::HasSubstr("before the rpc handshake completed"));
  EXPECT_EQ(r.last_error.code(), absl::StatusCode::kUnavailable);
}

TEST(SimRpcReconnectTest, OtherVersionEndsAfterMaxAttemptsNamingTheReason) {
  ConnectOptions connect = StormSchedule();
  connect.max_attempts = 3;
  const StormResult r = RunAgainstBadServer(BadServer::kOtherVersion, connect, absl::Seconds(30),
                                            /*retry_permanent=*/true);
  EXPECT_EQ(r.accepted, 3);
  EXPECT_EQ(r.call.status().code(), absl::StatusCode::kUnavailable) << r.call.status();
  EXPECT_THAT(std::string(r.call.status().message()), ::testing::HasSubstr("gave up connecting"));
  EXPECT_THAT(std::string(r.call.status().message()), ::testing::HasSubstr("no common version"));
}

TEST(SimRpcReconnectTest, OtherVersionWithoutMaxAttemptsBacksOff) {
  const ConnectOptions connect = StormSchedule();
  const StormResult r = RunAgainstBadServer(BadServer::kOtherVersion, connect, absl::Seconds(10),
                                            /*retry_permanent=*/true);
  EXPECT_LE(r.accepted, RoundsAllowed(connect, absl::Seconds(10))) << "a reconnect storm";
  EXPECT_GE(r.accepted, 2);
}

// Another protocol version is permanent by default: one attempt, the client ends, the reason is
// named once.
TEST(SimRpcReconnectTest, OtherVersionIsPermanentByDefault) {
  const StormResult r =
      RunAgainstBadServer(BadServer::kOtherVersion, StormSchedule(), absl::Seconds(10));
  EXPECT_EQ(r.accepted, 1);
  const std::string message(r.call.status().message());
  EXPECT_EQ(r.call.status().code(), absl::StatusCode::kUnavailable) << r.call.status();
  EXPECT_THAT(message, ::testing::HasSubstr("(a permanent failure: not retried; "
                                            "ClientOptions::retry_permanent_failures)"));
  EXPECT_THAT(message, ::testing::HasSubstr("no common version"));
  EXPECT_EQ(message.find("no common version"), message.rfind("no common version")) << message;
  EXPECT_EQ(r.last_error, r.call.status());
}

// A server that accepts and never says hello (a TLS server, to a plaintext client): the client
// is not ready, and last_error() says it was reached but did not answer, maybe speaking TLS.
TEST(SimRpcReconnectTest, ASilentServerIsNamedInLastError) {
  const StormResult r = RunAgainstBadServer(BadServer::kSilent, StormSchedule(), absl::Seconds(5));
  EXPECT_FALSE(r.ready_ever);
  EXPECT_EQ(r.accepted, 1);
  EXPECT_EQ(r.last_error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.last_error.message()),
              ::testing::HasSubstr("the server did not answer the rpc handshake (no hello); it "
                                   "may be speaking TLS or another protocol"));
  EXPECT_THAT(std::string(r.last_error.message()), ::testing::HasSubstr("connected to server:"));
}

// Before the first connection completes, last_error() names the attempt, never OK.
TEST(SimRpcReconnectTest, LastErrorWhileConnectingIsNotOk) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId client_host = *world.AddHost("client");
  (void)*world.AddHost("server");
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, StormSchedule());
  EXPECT_FALSE(client->WaitReady(world.env(client_host).Now() + absl::Milliseconds(1)));
  const absl::Status why = client->last_error();
  EXPECT_FALSE(why.ok());
  EXPECT_THAT(
      std::string(why.message()),
      ::testing::AnyOf(::testing::HasSubstr("no connection yet"), ::testing::HasSubstr("connect")))
      << why;
  client->Close();
}

// After a connection proved healthy (its handshake completed), a loss starts a fresh schedule:
// the first attempt is immediate, however long the schedule's delays are.
TEST(SimRpcReconnectTest, AHealthyConnectionResetsTheSchedule) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  auto server = Server::Create(world.env(server_host));
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  int accepted = 0;
  auto listener =
      world.server_factory(server_host)
          .Listen(Address::HostName("server", kPort), [&](std::shared_ptr<Connection> c) {
            ++accepted;
            server->Serve(std::move(c));
          });
  ASSERT_TRUE(listener.ok());
  ConnectOptions connect;
  connect.min_delay = absl::Seconds(10);
  connect.max_delay = absl::Seconds(10);
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, connect);
  for (int i = 0; i < 3; ++i) {
    auto r = client->Call("echo", "x", world.Now() + absl::Seconds(5));
    ASSERT_TRUE(r.ok()) << r.status() << " round " << i;
    ASSERT_EQ(server->Sessions().size(), 1u);
    server->Sessions()[0]->Close();
    world.RunUntil([&] { return !client->ready(); }, world.Now() + absl::Seconds(1));
  }
  EXPECT_EQ(accepted, 3);
  client->Close();
  server->Close();
}

// A call made on a connection that has closed before the client was told (the reset's
// notification waits while the client's process is stopped) fails kUnavailable, like every call
// on a lost connection, not with the write's FailedPrecondition (found by rpc-faults with
// freezable hosts).
TEST(SimRpcReconnectTest, ACallOnAConnectionClosedUnseenFailsUnavailable) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  auto server = Server::Create(world.env(server_host));
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  std::shared_ptr<Connection> server_end;
  auto listener =
      world.server_factory(server_host)
          .Listen(Address::HostName("server", kPort), [&](std::shared_ptr<Connection> c) {
            server_end = c;
            server->Serve(std::move(c));
          });
  ASSERT_TRUE(listener.ok());
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, ConnectOptions{});
  ASSERT_TRUE(client->Call("echo", "x", world.Now() + absl::Seconds(5)).ok());
  ASSERT_TRUE(world.Freeze(client_host).ok());
  ASSERT_NE(server_end, nullptr);
  ASSERT_TRUE(world.Reset(*server_end).ok());
  ASSERT_TRUE(client->ready());  // the close has not been delivered: the client is frozen
  std::optional<CallResult> result;
  client->CallAsync("echo", "y", world.Now() + absl::Seconds(5),
                    [&](CallResult r) { result = std::move(r); });
  ASSERT_TRUE(world.Resume(client_host).ok());
  world.RunUntil([&] { return result.has_value(); }, world.Now() + absl::Seconds(5));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kUnavailable) << result->status();
  client->Close();
  server->Close();
}

// ---------------------------------------------------------------------------------------------
// A peer that goes silent (docs/OPERATIONS.md, "A server that dies silently"): the side that
// notices closes exactly at T + its limit, T being the delivery of the last bytes from the peer
// (read from the trace); at that moment the pending calls fail kUnavailable and a reconnecting
// client makes its first new attempt.

enum class Silence { kFrozen, kPartitioned };

struct SilentServerRun {
  absl::Time last_from_server = absl::InfinitePast();  // last delivery at the client
  absl::Time disconnected = absl::InfinitePast();
  std::optional<CloseReason> reason;
  std::vector<absl::Time> call_failed;  // the pending calls' completions
  std::vector<absl::StatusCode> call_codes;
  std::vector<absl::Time> connect_starts;  // the client's attempts after the loss
};

SilentServerRun RunWithSilentServer(Silence how) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  auto server = Server::Create(world.env(server_host));
  std::vector<Responder> held;
  server->Register("hold", [&](const Request&, Responder r) { held.push_back(std::move(r)); });
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  auto listener = world.server_factory(server_host)
                      .Listen(Address::HostName("server", kPort),
                              [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  EXPECT_TRUE(listener.ok());
  SilentServerRun run;
  bool silent = false;
  world.trace().SetSink([&](const sim::TraceEvent& e) {
    const absl::Time at = world.start() + e.time;
    if (e.host == "client" && e.kind == sim::TraceKind::kDeliver && e.peer == "server") {
      run.last_from_server = at;
    }
    if (silent && e.host == "client" && e.kind == sim::TraceKind::kConnect &&
        e.detail.find(" start ") != std::string::npos) {
      run.connect_starts.push_back(at);
    }
  });
  ClientOptions copt;
  copt.heartbeat_interval = absl::Seconds(1);
  copt.heartbeat_timeout = absl::Milliseconds(3500);
  // A frozen host's kernel still accepts: the new connection then waits for a hello.
  copt.handshake_timeout = absl::Seconds(1);
  copt.on_disconnected = [&](const CloseReason& r) {
    if (run.reason) return;
    run.reason = r;
    run.disconnected = world.Now();
  };
  ConnectOptions connect;
  connect.min_delay = absl::Seconds(1);
  connect.max_delay = absl::Seconds(1);
  connect.attempt_timeout = absl::Milliseconds(500);
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, connect, copt);
  EXPECT_TRUE(client->Call("echo", "x", world.Now() + absl::Seconds(5)).ok());
  EXPECT_TRUE(world.RunFor(absl::Milliseconds(2300)).ok());  // a few heartbeats
  for (int i = 0; i < 3; ++i) {
    client->CallAsync("hold", "", absl::InfiniteFuture(), [&](CallResult r) {
      run.call_failed.push_back(world.Now());
      run.call_codes.push_back(r.status().code());
    });
  }
  EXPECT_TRUE(world.RunFor(absl::Milliseconds(50)).ok());  // the calls reach the server
  silent = true;
  if (how == Silence::kFrozen) {
    EXPECT_TRUE(world.Freeze(server_host).ok());  // until the end: sends nothing more
  } else {
    EXPECT_TRUE(world.Partition({server_host}, {client_host}).ok());
  }
  EXPECT_TRUE(world.RunFor(absl::Seconds(8)).ok());
  client->Close();
  server->Close();
  return run;
}

TEST(SilentPeerTest, AClientNoticesASilentServerExactlyAtTheHeartbeatTimeout) {
  for (Silence how : {Silence::kFrozen, Silence::kPartitioned}) {
    SCOPED_TRACE(how == Silence::kFrozen ? "frozen server" : "partitioned server");
    const SilentServerRun run = RunWithSilentServer(how);
    ASSERT_TRUE(run.reason.has_value());
    EXPECT_EQ(run.reason->kind(), CloseReason::Kind::kTimeout);
    EXPECT_THAT(run.reason->detail(), ::testing::HasSubstr("rpc heartbeat: nothing received"));
    // Exactly at the bound: not a ping interval later, not earlier.
    EXPECT_EQ(run.disconnected - run.last_from_server, absl::Milliseconds(3500));
    // Every pending call failed kUnavailable at that moment.
    ASSERT_EQ(run.call_failed.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(run.call_failed[i], run.disconnected);
      EXPECT_EQ(run.call_codes[i], absl::StatusCode::kUnavailable);
    }
    // The first new attempt at once, the next after the schedule's delay (1 s) at least.
    ASSERT_GE(run.connect_starts.size(), 2u);
    EXPECT_EQ(run.connect_starts[0], run.disconnected);
    EXPECT_GE(run.connect_starts[1] - run.connect_starts[0], absl::Seconds(1));
  }
}

// The server side: a session whose client goes silent (its host frozen) is closed exactly at
// idle_timeout after the last bytes from it arrived; a live client beside it is kept.
TEST(SilentPeerTest, TheServerDropsASilentClientExactlyAtTheIdleTimeout) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId quiet_host = *world.AddHost("quiet");
  const sim::HostId live_host = *world.AddHost("live");
  ServerOptions sopt;
  sopt.idle_timeout = absl::Milliseconds(4500);
  std::vector<std::pair<absl::Time, CloseReason>> closes;
  sopt.on_session_closed = [&](Session&, const CloseReason& r) {
    closes.emplace_back(world.Now(), r);
  };
  auto server = Server::Create(world.env(server_host), sopt);
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  auto listener = world.server_factory(server_host)
                      .Listen(Address::HostName("server", kPort),
                              [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  ASSERT_TRUE(listener.ok());
  absl::Time last_from_quiet = absl::InfinitePast();
  world.trace().SetSink([&](const sim::TraceEvent& e) {
    if (e.host == "server" && e.kind == sim::TraceKind::kDeliver && e.peer == "quiet") {
      last_from_quiet = world.start() + e.time;
    }
  });
  ClientOptions copt;
  copt.heartbeat_interval = absl::Seconds(1);
  copt.heartbeat_timeout = absl::Seconds(3);
  auto quiet =
      *Client::CreateReconnecting(world.env(quiet_host), world.client_factory(quiet_host),
                                  {Address::HostName("server", kPort)}, ConnectOptions{}, copt);
  auto live =
      *Client::CreateReconnecting(world.env(live_host), world.client_factory(live_host),
                                  {Address::HostName("server", kPort)}, ConnectOptions{}, copt);
  ASSERT_TRUE(quiet->Call("echo", "x", world.Now() + absl::Seconds(5)).ok());
  ASSERT_TRUE(live->Call("echo", "x", world.Now() + absl::Seconds(5)).ok());
  ASSERT_TRUE(world.RunFor(absl::Milliseconds(1700)).ok());
  ASSERT_TRUE(world.Freeze(quiet_host).ok());
  ASSERT_TRUE(world.RunFor(absl::Seconds(10)).ok());
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].second.kind(), CloseReason::Kind::kTimeout);
  EXPECT_THAT(closes[0].second.detail(), ::testing::HasSubstr("nothing received from the client"));
  EXPECT_EQ(closes[0].first - last_from_quiet, absl::Milliseconds(4500));
  EXPECT_TRUE(live->ready());
  EXPECT_EQ(server->Sessions().size(), 1u);
  ASSERT_TRUE(world.Resume(quiet_host).ok());
  quiet->Close();
  live->Close();
  server->Close();
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimRpcTest, ::testing::Range<uint64_t>(1, 31));

// PushToAll names the sessions a push failed for: here one still in its handshake (a peer that
// connected and never said hello).
TEST(SimRpcPushTest, PushToAllNamesTheSessionsItFailedFor) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  auto server = Server::Create(world.env(server_host));
  auto listener = world.server_factory(server_host)
                      .Listen(Address::HostName("server", kPort),
                              [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  ASSERT_TRUE(listener.ok()) << listener.status();
  int pushes = 0;
  const sim::HostId good_host = *world.AddHost("good");
  auto good_conn = world.client_factory(good_host).ConnectBlocking(
      {Address::HostName("server", kPort)}, ConnectOptions{});
  ASSERT_TRUE(good_conn.ok()) << good_conn.status();
  ClientOptions options;
  options.on_push = [&pushes](std::string_view, std::string_view) { ++pushes; };
  auto client = Client::Create(world.env(good_host), *good_conn, options);
  ASSERT_TRUE(client->WaitReady(world.Now() + absl::Seconds(5)));
  const sim::HostId silent_host = *world.AddHost("silent");
  auto silent = world.client_factory(silent_host)
                    .ConnectBlocking({Address::HostName("server", kPort)}, ConnectOptions{});
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_TRUE(world.RunFor(absl::Milliseconds(100)).ok());
  const auto sessions = server->Sessions();
  ASSERT_EQ(sessions.size(), 2u);
  const Server::PushResult result = server->PushToAll("inval", "1");
  EXPECT_EQ(result.delivered, 1u);
  ASSERT_EQ(result.failed.size(), 1u);
  EXPECT_EQ(result.failed[0].first, sessions[1]->id());
  EXPECT_EQ(result.failed[0].second.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(world.RunFor(absl::Milliseconds(100)).ok());
  EXPECT_EQ(pushes, 1);
  client->Close();
  (*silent)->Close();
  server->Close();
}

}  // namespace
}  // namespace netlayer::rpc

namespace netlayer::rpc {
namespace {

// The per-method stats (calls by status, latency buckets in virtual time) and the protections'
// refusals, on both ends (rpc/stats.h; what the metrics adapter exports).
TEST(SimRpcStatsTest, CallsAreCountedByMethodStatusAndLatency) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  ServerOptions options;
  options.max_inflight_calls = 1;
  auto server = Server::Create(world.env(server_host), options);
  Env& server_env = world.env(server_host);
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  server->Register("wait", [&server_env](const Request&, Responder resp) {
    auto held = std::make_shared<Responder>(std::move(resp));
    server_env.RunAt(server_env.Now() + absl::Milliseconds(30),
                     [held] { (void)held->Reply("done"); });
  });
  auto listener = world.server_factory(server_host)
                      .Listen(Address::HostName("server", kPort),
                              [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  ASSERT_TRUE(listener.ok());
  auto client =
      *Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                  {Address::HostName("server", kPort)}, ConnectOptions{});
  const absl::Time deadline = world.Now() + absl::Seconds(5);
  ASSERT_TRUE(client->Call("echo", "a", deadline).ok());
  ASSERT_TRUE(client->Call("echo", "b", deadline).ok());
  CallFuture first = client->CallAsync("wait", "", deadline);
  CallFuture second = client->CallAsync("wait", "", deadline);  // over max_inflight_calls
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_EQ(second.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(client->Call("nope", "", deadline).status().code(), absl::StatusCode::kUnimplemented);

  const ServerStats s = server->stats();
  ASSERT_TRUE(s.methods.contains("echo") && s.methods.contains("wait")) << s.ToJson();
  const MethodStats& echo = s.methods.at("echo");
  EXPECT_EQ(echo.calls, 2u);
  EXPECT_EQ(echo.by_status, (std::map<std::string, uint64_t>{{"OK", 2}}));
  EXPECT_EQ(echo.latency_count, 2u);
  EXPECT_EQ(echo.latency_counts[0], 2u);  // answered in the same virtual instant
  const MethodStats& wait = s.methods.at("wait");
  EXPECT_EQ(wait.calls, 1u);  // the second was refused before a handler ran
  EXPECT_EQ(wait.by_status, (std::map<std::string, uint64_t>{{"OK", 1}}));
  EXPECT_EQ(wait.latency_sum_ns, absl::ToInt64Nanoseconds(absl::Milliseconds(30)));
  EXPECT_EQ(wait.latency_counts[8], 1u);  // (0.025 s, 0.05 s]
  EXPECT_EQ(s.methods.at("(unknown)").by_status.at("UNIMPLEMENTED"), 1u);
  EXPECT_EQ(s.refusals.at("max_inflight_calls"), 1u);
  EXPECT_EQ(s.refusals.at("max_sessions"), 0u);
  EXPECT_EQ(s.calls_by_status.at("RESOURCE_EXHAUSTED"), 1u);
  EXPECT_EQ(s.calls_by_method.at("wait"), 1u);
  EXPECT_THAT(s.ToJson(), ::testing::HasSubstr("\"refusals\":{"));

  const ClientStats c = client->stats();
  ASSERT_TRUE(c.methods.contains("wait")) << c.ToJson();
  EXPECT_EQ(c.methods.at("wait").calls, 2u);
  EXPECT_EQ(c.methods.at("wait").by_status,
            (std::map<std::string, uint64_t>{{"OK", 1}, {"RESOURCE_EXHAUSTED", 1}}));
  EXPECT_EQ(c.methods.at("wait").latency_count, 2u);
  EXPECT_GE(c.methods.at("wait").latency_sum_ns, absl::ToInt64Nanoseconds(absl::Milliseconds(30)));
  EXPECT_EQ(c.methods.at("nope").by_status.at("UNIMPLEMENTED"), 1u);
  EXPECT_EQ(c.methods.at("echo").latency_count, 2u);
  EXPECT_TRUE(c.handshake_failures.empty());
  client->Close();
  server->Close();
}

}  // namespace
}  // namespace netlayer::rpc
