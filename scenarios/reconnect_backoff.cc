// reconnect-backoff: clients with several addresses against servers that come and go (listeners
// closed and reopened, hosts crashed and restarted), under the seed's faults.
//
// Safety: an oracle follows every connect in the trace and checks it against the seed's connect
// schedule, computed here independently of core::ConnectSchedule: each round tries the addresses
// in the given order; an attempt starts the moment the previous one failed; the next round
// starts exactly `delay` after the round's last failure, with delay = min_delay, then times
// delay_backoff after each round, capped at max_delay; an attempt never outlives
// attempt_timeout; with max_attempts = N, the connect fails after exactly N rounds, and the
// failure reported to the client names every attempt.
// Also a reconnecting rpc client against the same servers, which accept and close at once (as a
// server that drops every connection, or speaks another version, does): no handshake ever
// completes, so its connect schedule never restarts. Its attempts never exceed what that one
// schedule allows (DESIGN.md §11, "Back-off survives flapping"), and with max_attempts it gives
// up, its calls failing kUnavailable with a reason naming the early close.
// Liveness: after faults stop and every server is back, every client connects again.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "builtin.h"
#include "netlayer/rpc/client.h"
#include "schedule_bound.h"
#include "testing_plants.h"

namespace netlayer::scenarios {
namespace {

using sim::HostId;
using sim::ScenarioContext;
using sim::TraceEvent;
using sim::TraceKind;

constexpr int kServers = 3;
constexpr int kClients = 2;
constexpr uint16_t kPort = 7000;

class ReconnectBackoff final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kRestartScheduleOnDrop,
             "the rpc client restarts its reconnect schedule after every drop, even before a "
             "handshake completed"}};
  }

  absl::Duration FaultPhase() const override { return absl::Seconds(30); }
  absl::Duration LivenessBound() const override { return absl::Seconds(40); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    Generator& gen = world_->generator();
    for (int i = 0; i < kServers; ++i) {
      auto server = std::make_unique<ServerState>();
      server->name = absl::StrCat("server", i + 1);
      server->host = *world_->AddHost(server->name);
      // Servers may stop for a while and have their own clocks. The clients' oracle checks
      // attempt times exactly in world time, so their clocks and processes stay true.
      world_->SetFreezable(server->host, true);
      world_->SetClockSkewable(server->host, true);
      ServerState* s = server.get();
      world_->SetRestartHook(s->host, [this, s] { OpenListener(*s); });
      OpenListener(*s);
      ScheduleChurn(*s);
      servers_.push_back(std::move(server));
    }
    for (int i = 0; i < kClients; ++i) {
      auto client = std::make_unique<ClientState>();
      client->name = absl::StrCat("client", i + 1);
      client->host = *world_->AddHost(client->name);
      // Each client its own schedule, drawn from the seed.
      ConnectOptions& o = client->options;
      o.min_delay = absl::Milliseconds(UniformInt(gen, 20, 300));
      o.delay_backoff = std::vector<double>{1.0, 1.5, 2.0, 3.0}[UniformInt(gen, 0, 3)];
      o.max_delay = o.min_delay * static_cast<double>(UniformInt(gen, 1, 8));
      if (Bernoulli(gen, 0.5)) o.max_attempts = static_cast<int>(UniformInt(gen, 1, 4));
      o.attempt_timeout = absl::Milliseconds(UniformInt(gen, 200, 800));
      // Every server, in an order of this client's own.
      std::vector<int> order = {0, 1, 2};
      for (int k = kServers - 1; k > 0; --k) std::swap(order[k], order[UniformInt(gen, 0, k)]);
      for (int k : order) {
        client->addresses.push_back(Address::HostName(servers_[k]->name, kPort));
      }
      world_->Note(
          client->host,
          absl::StrCat("schedule min=", absl::FormatDuration(o.min_delay),
                       " max=", absl::FormatDuration(o.max_delay), " backoff=", o.delay_backoff,
                       " max_attempts=", o.max_attempts ? absl::StrCat(*o.max_attempts) : "none",
                       " attempt_timeout=", absl::FormatDuration(o.attempt_timeout)));
      by_host_[client->name] = client.get();
      clients_.push_back(std::move(client));
    }
    ctx.ObserveTrace([this](const TraceEvent& e) { Observe(e); });
    for (auto& c : clients_) StartConnect(*c);
    StartRpcClient();
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& s : servers_) {
      if (world_->IsUp(s->host) && s->listener == nullptr) OpenListener(*s);
    }
    for (auto& c : clients_) {
      ClientState* client = c.get();
      client->connected_at_heal = client->connected;
      ctx.Eventually(absl::StrCat(client->name, " connects again"),
                     [client] { return client->connected > client->connected_at_heal; });
    }
  }

  void Finish(ScenarioContext& ctx) override {
    stopping_ = true;
    uint64_t checked = 0;
    for (auto& c : clients_) {
      checked += c->attempts_checked;
      world_->Note(c->host, absl::StrCat("connected=", c->connected, " failed=", c->failed,
                                         " attempts checked=", c->attempts_checked));
    }
    ctx.Check(checked > 0, "the oracle saw connect attempts",
              [] { return std::string("no attempt was traced"); });
    FinishRpcClient(ctx);
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->attempt) c->attempt->Cancel();
    }
    if (rpc_.client) rpc_.client->Close();
  }

 private:
  struct ServerState {
    std::string name;
    HostId host;
    std::shared_ptr<Listener> listener;
  };
  // The oracle's view of one connect (connect#id in the trace).
  struct Tracked {
    std::vector<std::string> addresses;
    int round = 1;
    size_t index = 0;      // the address the next attempt must go to
    absl::Duration delay;  // the next wait
    absl::Duration next_try_at;
    bool trying = false;
    absl::Duration tried_at;
    bool done = false;
  };
  struct ClientState {
    std::string name;
    HostId host;
    ConnectOptions options;
    std::vector<Address> addresses;
    std::shared_ptr<ConnectAttempt> attempt;
    std::map<uint64_t, Tracked> connects;  // by connect id
    uint64_t connected = 0;
    uint64_t failed = 0;
    uint64_t connected_at_heal = 0;
    uint64_t attempts_checked = 0;
  };

  class Callbacks final : public ConnectHandler {
   public:
    Callbacks(ReconnectBackoff* scenario, ClientState* client)
        : scenario_(scenario), client_(client) {}
    void Connected(std::shared_ptr<Connection> connection) override {
      scenario_->OnConnected(*client_, std::move(connection));
    }
    void FailedConnection(const absl::Status& status) override {
      scenario_->OnFailed(*client_, status);
    }

   private:
    ReconnectBackoff* scenario_;
    ClientState* client_;
  };

  // Idempotent: the restart hook and the liveness phase may both ask for it.
  void OpenListener(ServerState& s) {
    if (s.listener != nullptr && s.listener->IsOpen()) return;
    auto listener = world_->server_factory(s.host).Listen(
        Address::HostName(s.name, kPort), [](std::shared_ptr<Connection> c) { c->Close(); });
    ctx_->Check(listener.ok(), "a server can listen again",
                [&] { return absl::StrCat(s.name, ": ", listener.status().ToString()); });
    if (listener.ok()) s.listener = *listener;
  }

  // While faults run, each server goes away now and then: its listener closes, or its host
  // crashes; it comes back after a while.
  void ScheduleChurn(ServerState& s) {
    const absl::Duration wait =
        absl::Milliseconds(static_cast<int64_t>(Exponential(world_->generator(), 1500)));
    (void)world_->At(world_->Now() + wait, [this, &s] {
      if (world_->faults_stopped()) return;
      const absl::Duration down =
          absl::Milliseconds(static_cast<int64_t>(Exponential(world_->generator(), 1000)));
      if (world_->IsUp(s.host) && s.listener != nullptr) {
        if (Bernoulli(world_->generator(), 0.5)) {
          s.listener->Close();
          s.listener = nullptr;
          (void)world_->At(world_->Now() + down, [this, &s] {
            if (world_->IsUp(s.host) && s.listener == nullptr) OpenListener(s);
          });
        } else {
          s.listener = nullptr;
          (void)world_->Crash(s.host);
          (void)world_->At(world_->Now() + down, [this, &s] {
            if (!world_->IsUp(s.host)) (void)world_->Restart(s.host);
          });
        }
      }
      ScheduleChurn(s);
    });
  }

  void StartConnect(ClientState& c) {
    if (stopping_) return;
    auto attempt = world_->client_factory(c.host).Connect(c.addresses, c.options,
                                                          std::make_shared<Callbacks>(this, &c));
    ctx_->Check(attempt.ok(), "valid connect requests are accepted",
                [&] { return attempt.status().ToString(); });
    if (attempt.ok()) c.attempt = *attempt;
  }

  void Pause(ClientState& c) {
    const absl::Duration pause = absl::Milliseconds(UniformInt(world_->generator(), 0, 400));
    Env& env = world_->env(c.host);
    env.RunAt(env.Now() + pause, [this, &c] { StartConnect(c); });
  }

  void OnConnected(ClientState& c, std::shared_ptr<Connection> connection) {
    ++c.connected;
    // Hold the connection a little, then close it and connect again.
    Env& env = world_->env(c.host);
    const absl::Duration hold = absl::Milliseconds(UniformInt(world_->generator(), 0, 300));
    env.RunAt(env.Now() + hold, [this, &c, connection] {
      connection->Close();
      Pause(c);
    });
  }

  void OnFailed(ClientState& c, const absl::Status& status) {
    ++c.failed;
    ctx_->Check(
        c.options.max_attempts.has_value() && status.code() == absl::StatusCode::kUnavailable,
        "only a connect with max_attempts gives up, with kUnavailable",
        [&] { return absl::StrCat(c.name, ": ", status.ToString()); });
    if (c.options.max_attempts) {
      // Every attempt's reason is in the report: one "round N <address>: ..." per attempt.
      for (int round = 1; round <= *c.options.max_attempts; ++round) {
        for (const Address& a : c.addresses) {
          const std::string attempt = absl::StrCat("round ", round, " ", a.ToString(), ": ");
          ctx_->Check(absl::StrContains(status.message(), attempt),
                      "a failed connect reports every attempt's reason", [&] {
                        return absl::StrCat(c.name, ": '", attempt, "' missing from ",
                                            status.ToString());
                      });
        }
      }
    }
    Pause(c);
  }

  // ---- The oracle ----
  void Observe(const TraceEvent& e) {
    if (e.kind != TraceKind::kConnect) return;
    if (e.host == "rpc-client" && absl::StrContains(e.detail, " try ")) CountRpcAttempt();
    auto client_it = by_host_.find(e.host);
    if (client_it == by_host_.end()) return;
    ClientState& c = *client_it->second;
    // "connect#<id> <what>"
    if (!absl::StartsWith(e.detail, "connect#")) return;
    const size_t space = e.detail.find(' ');
    uint64_t id = 0;
    if (space == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(e.detail).substr(8, space - 8), &id))
      return;
    const absl::string_view what = absl::string_view(e.detail).substr(space + 1);
    auto fail = [&](std::string why) {
      ctx_->Fail("connect attempts follow the schedule",
                 absl::StrCat(c.name, " connect#", id, ": ", why, " (event: ", e.detail, ")"));
    };

    if (absl::StartsWith(what, "start [")) {
      Tracked t;
      absl::string_view list = what.substr(7, what.size() - 8);
      t.addresses = absl::StrSplit(list, ", ");
      t.delay = c.options.min_delay;
      t.next_try_at = e.time;
      std::vector<std::string> expected;
      for (const Address& a : c.addresses) expected.push_back(a.ToString());
      if (t.addresses != expected) return fail("addresses differ from the request");
      c.connects[id] = t;
      return;
    }
    auto it = c.connects.find(id);
    if (it == c.connects.end()) return;
    Tracked& t = it->second;
    if (t.done) return;
    const std::string round_try = absl::StrCat("round ", t.round, " try ");
    if (absl::StartsWith(what, "round ") && absl::StrContains(what, " try ")) {
      if (t.trying) return fail("a second attempt started before the first ended");
      if (!absl::StartsWith(what, round_try)) return fail(absl::StrCat("expected round ", t.round));
      const absl::string_view address = what.substr(round_try.size());
      if (address != t.addresses[t.index]) {
        return fail(absl::StrCat("expected address ", t.addresses[t.index]));
      }
      if (e.time != t.next_try_at) {
        return fail(absl::StrCat("attempt at ", absl::FormatDuration(e.time), ", schedule says ",
                                 absl::FormatDuration(t.next_try_at)));
      }
      t.trying = true;
      t.tried_at = e.time;
      ++c.attempts_checked;
    } else if (absl::StartsWith(what, "attempt failed")) {
      if (!t.trying) return fail("an attempt failed that had not started");
      if (e.time - t.tried_at > c.options.attempt_timeout) {
        return fail(absl::StrCat("the attempt took ", absl::FormatDuration(e.time - t.tried_at),
                                 ", more than attempt_timeout"));
      }
      t.trying = false;
      if (++t.index < t.addresses.size()) {
        t.next_try_at = e.time;  // the next address at once
      } else if (c.options.max_attempts && t.round >= *c.options.max_attempts) {
        t.next_try_at = absl::InfiniteDuration();  // must fail now
      } else {
        t.next_try_at = e.time + t.delay;
        t.delay = std::min(t.delay * c.options.delay_backoff, c.options.max_delay);
        ++t.round;
        t.index = 0;
      }
    } else if (absl::StartsWith(what, "connected")) {
      if (!t.trying) return fail("connected without an attempt in progress");
      t.done = true;
    } else if (absl::StartsWith(what, "failed:")) {
      if (!c.options.max_attempts || t.round != *c.options.max_attempts ||
          t.index != t.addresses.size()) {
        return fail(absl::StrCat(
            "gave up in round ", t.round, " after ", t.index, " addresses; max_attempts=",
            c.options.max_attempts ? absl::StrCat(*c.options.max_attempts) : "none"));
      }
      t.done = true;
    } else if (absl::StartsWith(what, "cancelled") || absl::StartsWith(what, "ended")) {
      t.done = true;
    }
    if (t.done) c.connects.erase(it);
  }

  // ---- The rpc client: one schedule from start to end, since no handshake ever completes ----
  struct RpcClientState {
    HostId host;
    ConnectOptions options;
    std::vector<Address> addresses;
    absl::Time start;
    int64_t attempts = 0;
    std::optional<rpc::CallResult> result;  // of the call made at the start
    std::shared_ptr<rpc::Client> client;
  };

  void StartRpcClient() {
    Generator& gen = world_->generator();
    rpc_.host = *world_->AddHost("rpc-client");
    // Its bound is checked on its own clock: it may stop and have its clock skewed.
    world_->SetFreezable(rpc_.host, true);
    world_->SetClockSkewable(rpc_.host, true);
    ConnectOptions& o = rpc_.options;
    o.min_delay = absl::Milliseconds(UniformInt(gen, 20, 200));
    o.delay_backoff = Bernoulli(gen, 0.5) ? 1.5 : 2.0;
    o.max_delay = o.min_delay * static_cast<double>(UniformInt(gen, 2, 8));
    if (Bernoulli(gen, 0.5)) o.max_attempts = static_cast<int>(UniformInt(gen, 1, 4));
    o.attempt_timeout = absl::Milliseconds(UniformInt(gen, 200, 800));
    for (const auto& s : servers_) rpc_.addresses.push_back(Address::HostName(s->name, kPort));
    rpc_.start = world_->HostNow(rpc_.host);
    auto client = rpc::Client::CreateReconnecting(
        world_->env(rpc_.host), world_->client_factory(rpc_.host), rpc_.addresses, o);
    ctx_->Check(client.ok(), "the rpc client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    rpc_.client = *client;
    if (ctx_->planted(kRestartScheduleOnDrop)) {
      rpc::testing::SetPlants(*rpc_.client, {.restart_schedule_on_drop = true});
    }
    rpc_.client->CallAsync("anything", "", absl::InfiniteFuture(),
                           [this](rpc::CallResult r) { rpc_.result = std::move(r); });
  }

  void CountRpcAttempt() {
    ++rpc_.attempts;
    const absl::Duration elapsed = world_->HostNow(rpc_.host) - rpc_.start;
    const int64_t allowed = MaxAttemptsStarted(rpc_.options, rpc_.addresses.size(), elapsed);
    ctx_->Check(rpc_.attempts <= allowed,
                "an rpc client's connection attempts never exceed what its schedule allows", [&] {
                  return absl::StrCat("attempt ", rpc_.attempts, " at ",
                                      absl::FormatDuration(elapsed), "; the schedule allows ",
                                      allowed);
                });
  }

  void FinishRpcClient(ScenarioContext& ctx) {
    if (!rpc_.client) return;
    world_->Note(rpc_.host, absl::StrCat("rpc attempts=", rpc_.attempts));
    ctx.Check(!rpc_.client->ready(), "no handshake completes with a server that drops",
              [] { return std::string("the rpc client is ready"); });
    if (!rpc_.options.max_attempts) return;
    ctx.Check(rpc_.result.has_value() &&
                  rpc_.result->status().code() == absl::StatusCode::kUnavailable &&
                  absl::StrContains(rpc_.result->status().message(), "gave up connecting"),
              "an rpc client with max_attempts gives up, naming the reason", [&] {
                return rpc_.result ? rpc_.result->status().ToString()
                                   : std::string("its call is still pending");
              });
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  RpcClientState rpc_;
  std::vector<std::unique_ptr<ServerState>> servers_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  std::map<std::string, ClientState*, std::less<>> by_host_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeReconnectBackoff() {
  return std::make_unique<ReconnectBackoff>();
}

}  // namespace netlayer::scenarios
