// kv: two clients against one kv server (kv_store.h) under the seed's faults (partitions, clogs,
// resets, split and merged deliveries), then a heal phase.
//
// Workload: each client, one request at a time, writes one of its own 96 keys (chosen at random,
// so the store sees many distinct keys and grows) with a version one higher than any it sent
// for that key, and every third request reads back one of its keys it has written.
// Safety: a read returns the newest version the client has been acknowledged for that key, or a
//   newer one it sent but whose answer it never got: an acknowledged update is never lost.
// Liveness: after faults stop, each client completes new writes.
// A workload that only overwrites a handful of keys never makes the table grow, and never sees
// the planted bug (docs/SCENARIOS.md, "Workloads that expose lost updates").
#include "kv_scenario.h"

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kv_store.h"
#include "netlayer/core/generator.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace kv {
namespace {

using netlayer::Address;
using netlayer::ConnectOptions;
using netlayer::Env;
using netlayer::sim::HostId;
using netlayer::sim::ScenarioContext;

constexpr int kClients = 2;
constexpr uint64_t kKeysPerClient = 96;
constexpr uint16_t kPort = 7000;

class KvScenario final : public netlayer::sim::Scenario {
 public:
  std::vector<netlayer::sim::Plant> Plants() const override {
    return {{kLoseOnResize, "the store's resize skips its last bucket (lost updates)"}};
  }
  absl::Duration FaultPhase() const override { return absl::Seconds(10); }
  absl::Duration LivenessBound() const override { return absl::Seconds(20); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    const HostId server_host = *world_->AddHost("server");
    store_ = std::make_shared<KvStore>(ctx.planted(kLoseOnResize));
    server_ = netlayer::rpc::Server::Create(world_->env(server_host));
    ServeKv(*server_, store_);
    auto listener =
        world_->server_factory(server_host)
            .Listen(Address::HostName("server", kPort),
                    [this](std::shared_ptr<netlayer::Connection> c) { server_->Serve(c); });
    ctx.Check(listener.ok(), "the server listens", [&] { return listener.status().ToString(); });
    if (listener.ok()) listener_ = *listener;
    for (int i = 0; i < kClients; ++i) {
      auto c = std::make_unique<Client>();
      c->name = absl::StrCat("client", i + 1);
      c->host = *world_->AddHost(c->name);
      StartClient(*c);
      clients_.push_back(std::move(c));
    }
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& c : clients_) {
      Client* client = c.get();
      client->acked_at_heal = client->acked;
      ctx.Eventually(
          absl::StrCat(client->name, " completes new writes"),
          [client] { return client->acked >= client->acked_at_heal + 5; },
          [client] { return absl::StrCat(client->acked - client->acked_at_heal, " of 5"); });
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
  struct Key {
    uint64_t acked = 0;  // newest version acknowledged
    uint64_t sent = 0;   // newest version sent
  };
  struct Client {
    std::string name;
    HostId host;
    uint64_t requests = 0;
    uint64_t acked = 0, acked_at_heal = 0;
    std::map<std::string, Key> keys;  // ordered: iteration order never depends on hashing
    std::shared_ptr<netlayer::rpc::Client> rpc;  // last: destroyed first
  };

  void StartClient(Client& c) {
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Seconds(1);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(1);
    netlayer::rpc::ClientOptions options;
    auto client = netlayer::rpc::Client::CreateReconnecting(
        world_->env(c.host), world_->client_factory(c.host), {Address::HostName("server", kPort)},
        connect, options);
    ctx_->Check(client.ok(), "the client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    c.rpc = *client;
    Next(c);
  }

  void Next(Client& c) {
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(c.host);
    const absl::Time deadline = env.Now() + absl::Seconds(2);
    auto after = [this, &c, &env] {
      env.RunAt(env.Now() + absl::Milliseconds(netlayer::UniformInt(world_->generator(), 1, 30)),
                [this, &c] { Next(c); });
    };
    if (++c.requests % 3 == 0 && !c.keys.empty()) {
      // Read back a key written before (the n-th of the written keys, n drawn from the seed).
      auto it = c.keys.begin();
      std::advance(it, netlayer::UniformInt(world_->generator(), 0, c.keys.size() - 1));
      const std::string key = it->first;
      const Key expected = it->second;  // what was acked before the read was sent
      c.rpc->CallAsync("get", key, deadline,
                       [this, &c, key, expected, after](netlayer::rpc::CallResult result) {
                         CheckRead(c, key, expected, result);
                         after();
                       });
      return;
    }
    const std::string key = absl::StrCat(
        c.name, "-k", netlayer::UniformInt(world_->generator(), 0, kKeysPerClient - 1));
    const uint64_t version = ++c.keys[key].sent;
    c.rpc->CallAsync("put", absl::StrCat(key, "\n", version, "\nv", version), deadline,
                     [this, &c, key, version, after](netlayer::rpc::CallResult result) {
                       if (result.ok()) {
                         Key& k = c.keys[key];
                         k.acked = std::max(k.acked, version);
                         ++c.acked;
                       }
                       after();
                     });
  }

  void CheckRead(Client& c, const std::string& key, const Key& expected,
                 const netlayer::rpc::CallResult& result) {
    if (!result.ok() && result.status().code() != absl::StatusCode::kNotFound) return;  // faults
    uint64_t version = 0;
    if (result.ok()) {
      std::vector<absl::string_view> parts = absl::StrSplit(*result, absl::MaxSplits('\n', 1));
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &version)) {
        ctx_->Fail("a read returns what was written", absl::StrCat(key, ": '", *result, "'"));
        return;
      }
    }
    ctx_->Check(version >= expected.acked && version <= expected.sent,
                "an acknowledged update is never lost", [&] {
                  return absl::StrCat(c.name, " read ", key, " version ", version,
                                      result.ok() ? "" : " (not found)", "; acknowledged ",
                                      expected.acked, ", sent up to ", expected.sent,
                                      "; the store holds ", store_->size(), " keys");
                });
  }

  ScenarioContext* ctx_ = nullptr;
  netlayer::sim::World* world_ = nullptr;
  bool stopping_ = false;
  std::shared_ptr<KvStore> store_;
  std::shared_ptr<netlayer::rpc::Server> server_;
  std::shared_ptr<netlayer::Listener> listener_;
  std::vector<std::unique_ptr<Client>> clients_;  // destroyed before the server
};

}  // namespace

std::unique_ptr<netlayer::sim::Scenario> MakeKvScenario() { return std::make_unique<KvScenario>(); }

const netlayer::sim::ScenarioRegistry& Scenarios() {
  static const auto* registry = [] {
    auto* r = new netlayer::sim::ScenarioRegistry();
    (void)r->Add({"kv", "two clients write and read their own keys on a kv server under faults",
                  MakeKvScenario});
    return r;
  }();
  return *registry;
}

}  // namespace kv
