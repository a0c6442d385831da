// rpc-faults: several clients, each keeping several calls in flight (the work of several
// threads), against one server under the seed's fault mix (partitions, clogs, resets, server
// crash and restart), then a heal phase.
//
// Safety, checked as each event happens:
//   - every call completes at most once, with its own reply (the reply echoes the call's unique
//     payload) or with kUnavailable / kDeadlineExceeded, and never after its deadline;
//   - a call sent on a connection that closes has completed by the time the client reports the
//     close (on_disconnected): it fails at once, not at its deadline (DESIGN.md §11);
//   - a client's connection attempts never exceed what its connect schedule allows; the schedule
//     restarts only after a connection proved healthy (its handshake completed);
//   - pushes on a connection arrive in order, without gaps, and a reply is processed after
//     exactly the pushes the server sent before it (ZEO's cache-consistency rule);
//   - the application's mistakes and overloads get clear answers: a reply over the frame limit
//     ("big") is refused with an error Status and the client gets kResourceExhausted (or the
//     connection's loss, or its deadline under faults), never a reply, a crash or a hang;
//     replies that fill the server's bounded output queue ("bulk") end the same way; a handler
//     that answers twice ("twice") gets an error Status for the second answer and the client
//     sees one; a handler that answers after the deadline ("late") is ignored by the client.
// "Never after its deadline" allows sim::kHostTimerSlack (a drifting clock may step over the
// deadline's exact nanosecond) and the client's freezes and clock steps meanwhile; it holds for
// calls made in any state of the client: connected, handshaking or reconnecting.
// Liveness, after faults stop: every client is connected again and completes new calls, and an
// oversized reply comes back as a clear error (kResourceExhausted), not as silence.
// Finish: once the workload stops, every call ever started has completed (so, with the above,
// every call is answered exactly once).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "builtin.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/draw.h"
#include "schedule_bound.h"
#include "testing_plants.h"

namespace netlayer::scenarios {
namespace {

std::string AsString(std::string_view s) { return std::string(s); }

using sim::HostId;
using sim::ScenarioContext;
using sim::TraceEvent;
using sim::TraceKind;

constexpr int kClients = 3;
constexpr int kCallsInFlight = 4;  // per client
constexpr uint16_t kPort = 8100;
// The server's frame limit ("big" replies are one byte over it) and output bound ("bulk"
// replies fill it while a client is partitioned away).
constexpr size_t kFrameLimit = size_t{64} << 10;
constexpr size_t kMaxOutputBytes = size_t{256} << 10;
constexpr size_t kBulkReply = size_t{24} << 10;
constexpr absl::Duration kCallDeadline = absl::Seconds(3);

class RpcFaults final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kKeepCallsOnClose,
             "the client does not fail the calls of a connection that closes (they end at their "
             "deadline)"},
            {kNoDeadlineWhileConnecting,
             "a call made while the client is not connected gets no deadline timer"},
            {kLoseReplyOnSendFailure, "the server drops a reply it cannot send, silently"}};
  }

  absl::Duration LivenessBound() const override { return absl::Seconds(15); }

  // The connection limits are drawn per seed (sim/draw.h): output bounds from 64 KiB (a bulk
  // reply's error path and the output-full refusal become common) to 256 KiB, lingers from
  // 100 ms (a close to a partitioned or stalled peer ends on its linger) to 10 s.
  void ConfigureWorld(const sim::ScenarioOptions& options, sim::WorldOptions& world) override {
    ConnectionLimits base = world.connection_limits;
    base.max_output_bytes = kMaxOutputBytes;
    Xoshiro256 gen = sim::OptionsGenerator(options.seed);
    world.connection_limits = sim::DrawConnectionLimits(gen, base, kFrameLimit);
    drawn_ = sim::DescribeConnectionLimits(world.connection_limits);
  }
  std::string DrawnOptions() const override { return drawn_; }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    server_host_ = *world_->AddHost("server");
    world_->SetCrashable(server_host_, true);
    // Every host may stop for a while and has its own clock (offset, drift, steps).
    world_->SetFreezable(server_host_, true);
    world_->SetClockSkewable(server_host_, true);
    world_->SetRestartHook(server_host_, [this] { StartServer(); });
    StartServer();
    for (int i = 0; i < kClients; ++i) {
      auto client = std::make_unique<ClientState>();
      client->name = absl::StrCat("client", i + 1);
      client->host = *world_->AddHost(client->name);
      world_->SetFreezable(client->host, true);
      world_->SetClockSkewable(client->host, true);
      StartClient(*client);
      by_host_[client->name] = client.get();
      clients_.push_back(std::move(client));
    }
    ctx.ObserveTrace([this](const TraceEvent& e) { CountAttempt(e); });
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& c : clients_) {
      ClientState* client = c.get();
      client->ok_at_heal = client->ok;
      client->big_refused_at_heal = client->big_refused;
      ctx.Eventually(
          absl::StrCat(client->name, " reconnects"), [client] { return client->rpc->ready(); },
          [client] { return absl::StrCat("last error: ", client->rpc->last_error().ToString()); });
      ctx.Eventually(
          absl::StrCat(client->name, " completes new calls"),
          [client] { return client->ok >= client->ok_at_heal + 5; },
          [client] {
            return absl::StrCat(client->ok - client->ok_at_heal, " of 5 calls succeeded");
          });
      ctx.Eventually(
          absl::StrCat(client->name, " gets an oversized reply's clear error"),
          [client] { return client->big_refused > client->big_refused_at_heal; },
          [client] {
            return absl::StrCat(client->big_calls, " big calls in all, ", client->big_refused,
                                " refused with kResourceExhausted");
          });
    }
  }

  void Finish(ScenarioContext& ctx) override {
    stopping_ = true;
    auto all_done = [this] {
      for (auto& c : clients_) {
        if (!c->outstanding.empty()) return false;
      }
      return true;
    };
    // Calls have deadlines, so every one completes within its deadline after the workload stops.
    world_->RunUntil([&] { return ctx.failed() || all_done(); }, world_->Now() + absl::Seconds(10));
    for (auto& c : clients_) {
      ctx.Check(c->outstanding.empty(), "every call completes", [&] {
        return absl::StrCat(c->name, " has ", c->outstanding.size(),
                            " calls that never completed, first #", c->outstanding.begin()->first);
      });
      world_->Note(c->host, absl::StrCat("calls ok=", c->ok, " failed=", c->failed,
                                         " pushes=", c->pushes_total, " big=", c->big_calls,
                                         " refused=", c->big_refused));
    }
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->rpc) c->rpc->Close();  // pending calls complete now, while their state is alive
    }
    if (server_) server_->Close();
  }

 private:
  std::string drawn_;
  struct Outstanding {
    std::string payload;
    absl::Time deadline;
    // The connection (numbered by on_ready) the call was sent on; 0 while it waits for one.
    uint64_t connection = 0;
    std::string method;
    bool made_connected = false;  // the client was ready when the call was made
    // The client host's frozen time and clock steps when the call was made: a deadline kept on
    // the client's own clock may be met late by as much as they grow meanwhile.
    absl::Duration frozen_at, stepped_at;
  };
  struct ClientState {
    std::string name;
    HostId host;
    ConnectOptions connect;
    uint64_t next_call = 1;
    std::map<uint64_t, Outstanding> outstanding;  // by call number
    uint64_t connection = 0;                      // connections that completed their handshake
    bool ready = false;                           // between on_ready and on_disconnected
    // The connect schedule in progress: when it started and the attempts made since.
    absl::Time schedule_start;
    int64_t attempts = 0;
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t ok_at_heal = 0;
    uint64_t big_calls = 0;
    uint64_t big_refused = 0;  // big calls answered with the server's clear error
    uint64_t big_refused_at_heal = 0;
    uint64_t pushes_seen = 0;  // on the current connection
    uint64_t pushes_total = 0;
    // Last, so it is destroyed first: its callbacks use the members above.
    std::shared_ptr<rpc::Client> rpc;
  };

  void StartServer() {
    Env& env = world_->env(server_host_);
    rpc::ServerOptions options;
    options.message_options.max_message_size = kFrameLimit;
    server_ = rpc::Server::Create(env, options);
    if (ctx_->planted(kLoseReplyOnSendFailure)) {
      rpc::testing::SetPlants(*server_, {.lose_reply_on_send_failure = true});
    }
    pushes_sent_.clear();
    ++incarnation_;
    // echo and slow-echo answer with the payload and how many pushes this session was sent
    // before the reply, so the client can check the order it processes them in.
    server_->Register("echo", [this](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(
          absl::StrCat(absl::string_view(request.payload.data(), request.payload.size()), "|",
                       pushes_sent_[request.session.id()]));
    });
    server_->Register(
        "slow-echo", [this, &env](const rpc::Request& request, rpc::Responder responder) {
          const absl::Duration delay = absl::Milliseconds(UniformInt(world_->generator(), 1, 200));
          std::weak_ptr<rpc::Session> session = request.session.shared_from_this();
          env.RunAt(env.Now() + delay, [this, session, payload = std::string(request.payload),
                                        responder = std::move(responder)]() mutable {
            auto s = session.lock();
            if (s == nullptr) return;  // the session is gone; the responder drops the answer
            (void)responder.Reply(absl::StrCat(payload, "|", pushes_sent_[s->id()]));
          });
        });
    // A reply one byte over the frame limit: refused with an error Status (the client gets a
    // small error reply instead).
    server_->Register("big", [this](const rpc::Request&, rpc::Responder responder) {
      const absl::Status s = responder.Reply(std::string(kFrameLimit + 1, 'B'));
      ctx_->Check(!s.ok(), "a reply over the frame limit is refused with an error Status",
                  [] { return std::string("Reply returned OK"); });
    });
    // A larger reply: under a partition these fill the bounded output queue.
    server_->Register("bulk", [this](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(absl::StrCat(AsString(request.payload), "|",
                                         pushes_sent_[request.session.id()], "|",
                                         std::string(kBulkReply, 'b')));
    });
    // An application that answers twice: the second answer is an error, the client sees one.
    server_->Register("twice", [this](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(
          absl::StrCat(AsString(request.payload), "|", pushes_sent_[request.session.id()]));
      const absl::Status second = responder.Reply("second answer");
      ctx_->Check(second.code() == absl::StatusCode::kFailedPrecondition,
                  "answering a call twice returns FailedPrecondition",
                  [&] { return second.ToString(); });
    });
    // Answered around or after the call's deadline: a late reply is ignored by the client.
    server_->Register("late", [this, &env](const rpc::Request& request, rpc::Responder responder) {
      const absl::Duration delay = absl::Milliseconds(UniformInt(world_->generator(), 2500, 4000));
      std::weak_ptr<rpc::Session> session = request.session.shared_from_this();
      env.RunAt(env.Now() + delay, [this, session, payload = std::string(request.payload),
                                    responder = std::move(responder)]() mutable {
        auto s = session.lock();
        if (s == nullptr) return;
        (void)responder.Reply(absl::StrCat(payload, "|", pushes_sent_[s->id()]));
      });
    });
    auto listener = world_->server_factory(server_host_)
                        .Listen(Address::HostName("server", kPort),
                                [this](std::shared_ptr<Connection> c) { server_->Serve(c); });
    ctx_->Check(listener.ok(), "the server can listen after a (re)start",
                [&] { return listener.status().ToString(); });
    if (listener.ok()) listener_ = *listener;
    SchedulePush(env);
  }

  // Every 50 ms the server pushes an "invalidation" to each ready session, numbered per session.
  void SchedulePush(Env& env) {
    const uint64_t incarnation = incarnation_;
    env.RunAt(env.Now() + absl::Milliseconds(50), [this, &env, incarnation] {
      if (incarnation != incarnation_ || stopping_) return;
      for (const auto& session : server_->Sessions()) {
        if (!session->ready()) continue;
        uint64_t& sent = pushes_sent_[session->id()];
        if (session->Push("invalidate", absl::StrCat(sent)).ok()) ++sent;
      }
      SchedulePush(env);
    });
  }

  void StartClient(ClientState& c) {
    ConnectOptions& connect = c.connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Seconds(1);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(1);
    c.schedule_start = world_->HostNow(c.host);
    rpc::ClientOptions options;
    options.on_ready = [&c](uint16_t) {
      c.pushes_seen = 0;
      c.ready = true;
      ++c.connection;
      // The calls that waited were sent on this connection, in order, just before.
      for (auto& [number, call] : c.outstanding) {
        if (call.connection == 0) call.connection = c.connection;
      }
    };
    options.on_disconnected = [this, &c](const CloseReason& reason) { OnDisconnected(c, reason); };
    options.on_push = [this, &c](std::string_view method, std::string_view payload) {
      uint64_t number = 0;
      ctx_->Check(
          method == "invalidate" &&
              absl::SimpleAtoi(absl::string_view(payload.data(), payload.size()), &number) &&
              number == c.pushes_seen,
          "pushes arrive in order, once, without gaps", [&] {
            return absl::StrCat(c.name, " expected push #", c.pushes_seen, ", got ",
                                std::string(method), " '", std::string(payload), "'");
          });
      ++c.pushes_seen;
      ++c.pushes_total;
    };
    auto client =
        rpc::Client::CreateReconnecting(world_->env(c.host), world_->client_factory(c.host),
                                        {Address::HostName("server", kPort)}, connect, options);
    ctx_->Check(client.ok(), "the client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    c.rpc = *client;
    rpc::testing::Plants plants;
    plants.keep_calls_on_close = ctx_->planted(kKeepCallsOnClose);
    plants.no_deadline_while_connecting = ctx_->planted(kNoDeadlineWhileConnecting);
    rpc::testing::SetPlants(*c.rpc, plants);
    for (int i = 0; i < kCallsInFlight; ++i) IssueCall(c);
  }

  void IssueCall(ClientState& c) {
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(c.host);
    const uint64_t number = c.next_call++;
    const std::string payload =
        absl::StrCat(c.name, "#", number, ":", UniformInt(world_->generator(), 0, 1u << 30));
    const absl::Time deadline = env.Now() + kCallDeadline;
    const uint64_t pick = UniformInt(world_->generator(), 0, 99);
    const char* method = pick < 30   ? "slow-echo"
                         : pick < 34 ? "big"
                         : pick < 42 ? "bulk"
                         : pick < 46 ? "twice"
                         : pick < 48 ? "late"
                                     : "echo";
    if (std::string_view(method) == "big") ++c.big_calls;
    // Made while connected, a call is sent at once on the current connection.
    c.outstanding.emplace(
        number, Outstanding{payload, deadline, c.ready ? c.connection : 0, method, c.ready,
                            world_->FrozenTime(c.host), world_->ClockStepped(c.host)});
    c.rpc->CallAsync(method, payload, deadline,
                     [this, &c, number](rpc::CallResult result) { OnDone(c, number, result); });
  }

  void OnDone(ClientState& c, uint64_t number, const rpc::CallResult& result) {
    auto it = c.outstanding.find(number);
    ctx_->Check(it != c.outstanding.end(), "every call completes at most once",
                [&] { return absl::StrCat(c.name, " call #", number, " completed again"); });
    if (it == c.outstanding.end()) return;
    const std::string payload = std::move(it->second.payload);
    const absl::Time deadline = it->second.deadline;
    const std::string method = std::move(it->second.method);
    const bool made_connected = it->second.made_connected;
    // On the client's own clock, where its deadline is; a freeze or clock step of the client
    // meanwhile may make it late by as much.
    const absl::Duration allowed = sim::kHostTimerSlack +
                                   (world_->FrozenTime(c.host) - it->second.frozen_at) +
                                   (world_->ClockStepped(c.host) - it->second.stepped_at);
    c.outstanding.erase(it);
    const absl::Time now = world_->HostNow(c.host);
    ctx_->Check(now <= deadline + allowed, "a call never outlives its deadline", [&] {
      return absl::StrCat(c.name, " call #", number, " (made while ",
                          made_connected ? "connected" : "not connected", ") completed ",
                          absl::FormatDuration(now - deadline), " after its deadline (",
                          absl::FormatDuration(allowed), " allowed): ", result.status().ToString());
    });
    const bool big = method == "big";
    ctx_->Check(!big || !result.ok(), "a reply over the frame limit never arrives",
                [&] { return absl::StrCat(c.name, " call #", number, " got a reply"); });
    if (result.ok()) {
      // "payload|pushes" (bulk replies add "|padding").
      std::vector<absl::string_view> parts = absl::StrSplit(*result, absl::MaxSplits('|', 2));
      if (parts.size() == 3 && method == "bulk") parts.pop_back();
      uint64_t pushes_before = 0;
      ctx_->Check(parts.size() == 2 && parts[0] == payload, "each reply goes to its own call", [&] {
        return absl::StrCat(c.name, " call #", number, " (", payload, ") got reply '", *result,
                            "'");
      });
      ctx_->Check(parts.size() == 2 && absl::SimpleAtoi(parts[1], &pushes_before) &&
                      pushes_before == c.pushes_seen,
                  "a reply is processed after exactly the pushes sent before it", [&] {
                    return absl::StrCat(c.name, " call #", number, ": server had pushed ",
                                        parts.size() == 2 ? std::string(parts[1]) : "?",
                                        " before replying, client had processed ", c.pushes_seen);
                  });
      ++c.ok;
    } else {
      const absl::StatusCode code = result.status().code();
      // The server's clear error for a reply it could not send (over the frame limit, or its
      // output queue full).
      const bool refused = code == absl::StatusCode::kResourceExhausted &&
                           absl::StrContains(result.status().message(), "could not be sent") &&
                           (big || method == "bulk");
      if (big && refused) ++c.big_refused;
      ctx_->Check(
          code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
              refused || (stopping_ && code == absl::StatusCode::kCancelled),
          "a call fails only with kUnavailable, kDeadlineExceeded or the server's clear error",
          [&] {
            return absl::StrCat(c.name, " call #", number, ": ", result.status().ToString());
          });
      ++c.failed;
    }
    // The next call of this "thread" after a short think time.
    Env& env = world_->env(c.host);
    const absl::Duration think =
        absl::Microseconds(static_cast<int64_t>(Exponential(world_->generator(), 20000)));
    env.RunAt(env.Now() + think, [this, &c] { IssueCall(c); });
  }

  // The client saw its connection close: every call sent on it has failed already (the client
  // fails them before it reports the close), and the connect schedule restarts only if the
  // connection had proved healthy.
  void OnDisconnected(ClientState& c, const CloseReason& reason) {
    if (c.ready) {
      for (const auto& [number, call] : c.outstanding) {
        ctx_->Check(call.connection != c.connection,
                    "a call on a connection that closed fails when the close is seen",
                    // Named copies: clang 14 cannot capture structured bindings.
                    [&, n = number, &payload = call.payload] {
                      return absl::StrCat(c.name, " call #", n, " (", payload,
                                          ") still pending after the close: ", reason.ToString());
                    });
      }
      c.schedule_start = world_->HostNow(c.host);
      c.attempts = 0;
    }
    c.ready = false;
  }

  // Every connect attempt a client makes ("connect#N round R try <address>" in the trace).
  void CountAttempt(const TraceEvent& e) {
    if (e.kind != TraceKind::kConnect || !absl::StrContains(e.detail, " try ")) return;
    auto it = by_host_.find(e.host);
    if (it == by_host_.end()) return;
    ClientState& c = *it->second;
    ++c.attempts;
    const absl::Duration elapsed = world_->HostNow(c.host) - c.schedule_start;
    const int64_t allowed = MaxAttemptsStarted(c.connect, 1, elapsed);
    ctx_->Check(c.attempts <= allowed,
                "connection attempts never exceed what the connect schedule allows", [&] {
                  return absl::StrCat(c.name, ": attempt ", c.attempts, " ",
                                      absl::FormatDuration(elapsed),
                                      " after the schedule started; it allows ", allowed);
                });
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  HostId server_host_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::map<uint64_t, uint64_t> pushes_sent_;  // session id -> pushes sent to it
  uint64_t incarnation_ = 0;
  std::vector<std::unique_ptr<ClientState>> clients_;
  std::map<std::string, ClientState*, std::less<>> by_host_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeRpcFaults() { return std::make_unique<RpcFaults>(); }

}  // namespace netlayer::scenarios
