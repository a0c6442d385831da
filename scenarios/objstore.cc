// objstore: the ZEO-like object store (apps/objstore) in the simulator: three clients running
// transactions over five objects (some read-only, most storing what they read), with conflicts,
// under the seed's faults (partitions, clogs, resets, server crash and restart with a new epoch).
// The server delays load replies (a slow storage read), so a reply can cross an invalidation in
// flight (ZEO issue 155).
//
// Safety, checked as each event happens:
//   - a client's cache never serves a version older than an invalidation it has received;
//   - every load returns a version some commit of the log produced (its data is what that commit
//     wrote); the server commits in tid order and every store named the current serial, checked
//     against the scenario's own model of the log (serializability under optimistic concurrency);
//   - an acknowledged commit is in the log with exactly the client's stores (none is lost while
//     the server lives), and at the end the server holds the log's last versions.
// Liveness, after faults stop: every client commits again; then, with the workload stopped,
// every client is synced on the server's epoch and its cache holds only current versions.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "builtin.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#include "netlayer/sim/host.h"

namespace netlayer::scenarios {
namespace {

using objstore::Loaded;
using objstore::Store;
using sim::ScenarioContext;

constexpr int kClients = 3;
constexpr int kObjects = 5;
constexpr uint16_t kPort = 8200;

std::string OidName(int i) { return absl::StrCat("o", i); }

class ObjstoreScenario final : public sim::Scenario {
 public:
  absl::Duration LivenessBound() const override { return absl::Seconds(20); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    server_host_.emplace(*world_, *world_->AddHost("server"));
    world_->SetCrashable(server_host_->id(), true);
    // Every host may stop for a while and has its own clock (offset, drift, steps).
    world_->SetFreezable(server_host_->id(), true);
    world_->SetClockSkewable(server_host_->id(), true);
    world_->SetRestartHook(server_host_->id(), [this] { StartServer(); });
    StartServer();
    for (int i = 0; i < kClients; ++i) {
      auto c = std::make_unique<ClientState>();
      c->name = absl::StrCat("client", i + 1);
      c->host.emplace(*world_, *world_->AddHost(c->name));
      world_->SetFreezable(c->host->id(), true);
      world_->SetClockSkewable(c->host->id(), true);
      StartClient(*c);
      clients_.push_back(std::move(c));
    }
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& c : clients_) c->commits_at_heal = c->commits;
    ctx.Eventually(
        "after faults stop, every client commits again and its cache converges to the server",
        [this] { return Converged(); }, [this] { return convergence_problem_; });
  }

  void Finish(ScenarioContext& ctx) override {
    // The server holds the last version of every object of its epoch's log.
    const Epoch& log = model_[epoch_];
    const auto objects = server_->Objects();
    ctx.Check(objects.size() == log.current.size(), "no acknowledged commit is lost", [&] {
      return absl::StrCat("server holds ", objects.size(), " objects, the log ",
                          log.current.size());
    });
    for (const auto& [oid, version] : log.current) {
      auto it = objects.find(oid);
      ctx.Check(it != objects.end() && it->second.tid == version.first &&
                    it->second.data == version.second,
                "no acknowledged commit is lost",
                [&] { return absl::StrCat(oid, " differs from the log's tid ", version.first); });
    }
    for (auto& c : clients_) {
      world_->Note(c->host->id(), absl::StrCat("commits=", c->commits, " conflicts=", c->conflicts,
                                               " loads=", c->loads, " cache_hits=", c->cache_hits));
    }
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->client) c->client->Close();
    }
    if (server_) server_->Close();
  }

 private:
  // The commit log of one server life, as the server reported it (on_commit, in order).
  struct Epoch {
    uint64_t last_tid = 0;
    std::map<std::string, std::pair<uint64_t, std::string>> current;   // oid -> (tid, data)
    std::map<std::pair<std::string, uint64_t>, std::string> versions;  // (oid, tid) -> data
    std::map<uint64_t, std::vector<Store>> commits;
  };
  struct ClientState {
    std::string name;
    std::optional<sim::SimHost> host;
    // Newest invalidation received, per epoch and oid.
    std::map<uint64_t, std::map<std::string, uint64_t>> invalidated;
    bool busy = false;  // a transaction is in progress
    uint64_t transactions = 0;
    uint64_t commits = 0;
    uint64_t commits_at_heal = 0;
    uint64_t conflicts = 0;
    uint64_t loads = 0;
    uint64_t cache_hits = 0;
    // Last: destroyed first, its callbacks use the members above.
    std::shared_ptr<objstore::Client> client;
  };
  // A transaction: read `oids` in turn, then store new data naming the serials read.
  struct Transaction {
    std::vector<std::string> oids;
    std::vector<Store> stores;
    uint64_t epoch = 0;
    bool read_only = false;  // loads only (a stale cache entry outlives it)
  };

  void StartServer() {
    ++epoch_;
    model_[epoch_];  // a new, empty log
    objstore::ServerOptions options;
    options.storage.epoch = epoch_;
    options.storage.max_log = 20;  // small, so reconnecting clients are sometimes "too old"
    options.load_delay = [this] {
      return absl::Milliseconds(UniformInt(world_->generator(), 0, 80));
    };
    options.on_commit = [this](uint64_t epoch, uint64_t tid, const std::vector<Store>& stores) {
      OnServerCommit(epoch, tid, stores);
    };
    server_.reset();
    auto server = objstore::ObjectServer::Start(*server_host_, Address::HostName("server", kPort),
                                                std::move(options));
    ctx_->Check(server.ok(), "the server can listen after a (re)start",
                [&] { return server.status().ToString(); });
    if (server.ok()) server_ = std::move(*server);
  }

  void OnServerCommit(uint64_t epoch, uint64_t tid, const std::vector<Store>& stores) {
    Epoch& log = model_[epoch];
    ctx_->Check(epoch == epoch_ && tid == log.last_tid + 1, "the server commits in tid order",
                [&] { return absl::StrCat("tid ", tid, " after ", log.last_tid); });
    for (const Store& s : stores) {
      auto it = log.current.find(s.oid);
      const uint64_t current = it == log.current.end() ? 0 : it->second.first;
      ctx_->Check(s.serial == current,
                  "committed transactions are serializable (every store read the current "
                  "version)",
                  [&] {
                    return absl::StrCat("tid ", tid, " stored ", s.oid, " read at ", s.serial,
                                        ", current is ", current);
                  });
    }
    log.last_tid = tid;
    for (const Store& s : stores) {
      log.current[s.oid] = {tid, s.data};
      log.versions[{s.oid, tid}] = s.data;
    }
    log.commits[tid] = stores;
  }

  void StartClient(ClientState& c) {
    objstore::ClientOptions options;
    options.cache_size = 4;  // fewer than the objects: evictions happen too
    options.connect.min_delay = absl::Milliseconds(100);
    options.connect.max_delay = absl::Seconds(1);
    options.connect.attempt_timeout = absl::Seconds(1);
    options.check_loads_against_invalidations = !ctx_->planted(kObjstoreCacheUnchecked);
    options.on_invalidation = [&c](const objstore::Invalidation& inv) {
      for (const std::string& oid : inv.oids) {
        uint64_t& newest = c.invalidated[inv.epoch][oid];
        newest = std::max(newest, inv.tid);
      }
    };
    auto client = objstore::Client::Create(*c.host, {Address::HostName("server", kPort)}, options);
    ctx_->Check(client.ok(), "the client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    c.client = *client;
    ScheduleTransaction(c, absl::Milliseconds(10));
  }

  void ScheduleTransaction(ClientState& c, absl::Duration after) {
    Env& env = c.host->env();
    env.RunAt(env.Now() + after, [this, &c] { BeginTransaction(c); });
  }

  void BeginTransaction(ClientState& c) {
    if (stopping_ || quiesce_ || ctx_->failed() || c.busy) return;
    c.busy = true;
    ++c.transactions;
    auto tx = std::make_shared<Transaction>();
    const int first = static_cast<int>(UniformInt(world_->generator(), 0, kObjects - 1));
    tx->oids.push_back(OidName(first));
    if (Bernoulli(world_->generator(), 0.5)) {
      tx->oids.push_back(
          OidName((first + 1 + UniformInt(world_->generator(), 0, kObjects - 2)) % kObjects));
    }
    tx->epoch = c.client->epoch();
    tx->read_only = Bernoulli(world_->generator(), 0.4);
    LoadNext(c, tx);
  }

  void LoadNext(ClientState& c, std::shared_ptr<Transaction> tx) {
    if (tx->stores.size() == tx->oids.size()) {
      if (tx->read_only) return EndTransaction(c, true);
      Commit(c, tx);
      return;
    }
    const std::string oid = tx->oids[tx->stores.size()];
    Env& env = c.host->env();
    c.client->LoadAsync(
        oid, env.Now() + absl::Seconds(3), [this, &c, tx, oid](absl::StatusOr<Loaded> loaded) {
          uint64_t serial = 0;
          if (loaded.ok()) {
            CheckLoad(c, oid, *loaded);
            if (loaded->epoch != tx->epoch) return EndTransaction(c, false);
            serial = loaded->serial;
          } else if (loaded.status().code() != absl::StatusCode::kNotFound) {
            return EndTransaction(c, false);
          }
          tx->stores.push_back(
              Store{oid, serial, absl::StrCat(c.name, "/t", c.transactions, "/", oid)});
          LoadNext(c, tx);
        });
  }

  void CheckLoad(ClientState& c, const std::string& oid, const Loaded& loaded) {
    ++c.loads;
    if (loaded.from_cache) ++c.cache_hits;
    const uint64_t newest = c.invalidated[loaded.epoch][oid];
    ctx_->Check(!loaded.from_cache || loaded.serial >= newest,
                "a client's cache never serves a version older than an invalidation it received",
                [&] {
                  return absl::StrCat(c.name, " served ", oid, " at tid ", loaded.serial,
                                      " from its cache after an invalidation at tid ", newest,
                                      " (epoch ", loaded.epoch, ")");
                });
    auto log = model_.find(loaded.epoch);
    const bool known = log != model_.end() && log->second.versions.contains({oid, loaded.serial});
    ctx_->Check(known && log->second.versions.at({oid, loaded.serial}) == loaded.data,
                "every load returns a version the commit log produced", [&] {
                  return absl::StrCat(c.name, " loaded ", oid, " at tid ", loaded.serial, " epoch ",
                                      loaded.epoch, " data '", loaded.data, "'",
                                      known ? " (different data)" : " (no such commit)");
                });
  }

  void Commit(ClientState& c, std::shared_ptr<Transaction> tx) {
    Env& env = c.host->env();
    c.client->CommitAsync(
        tx->stores, env.Now() + absl::Seconds(3), [this, &c, tx](absl::StatusOr<uint64_t> tid) {
          if (tid.ok()) {
            ++c.commits;
            CheckAcknowledged(c, *tid, *tx);
          } else if (tid.status().code() == absl::StatusCode::kAborted) {
            ++c.conflicts;
            ctx_->Check(!objstore::ConflictOids(tid.status()).empty(), "a conflict names its oids",
                        [&] { return tid.status().ToString(); });
          }
          EndTransaction(c, tid.ok());
        });
  }

  void CheckAcknowledged(ClientState& c, uint64_t tid, const Transaction& tx) {
    // The reply came over a live connection, so the server that committed is the current one.
    const Epoch& log = model_[epoch_];
    auto it = log.commits.find(tid);
    bool same = it != log.commits.end() && it->second.size() == tx.stores.size();
    for (size_t i = 0; same && i < tx.stores.size(); ++i) {
      same = it->second[i].oid == tx.stores[i].oid && it->second[i].data == tx.stores[i].data;
    }
    ctx_->Check(same, "an acknowledged commit is in the log with the client's stores", [&] {
      return absl::StrCat(c.name, " got tid ", tid, " in epoch ", epoch_, "; the log ",
                          it == log.commits.end() ? "has no such tid" : "holds other stores");
    });
  }

  void EndTransaction(ClientState& c, bool committed) {
    c.busy = false;
    const absl::Duration think = committed
                                     ? absl::Milliseconds(UniformInt(world_->generator(), 5, 60))
                                     : absl::Milliseconds(UniformInt(world_->generator(), 20, 200));
    ScheduleTransaction(c, think);
  }

  // After faults stop: each client commits twice more; then the workload stops and every cache
  // must hold only the server's current versions, on the server's epoch.
  bool Converged() {
    for (auto& c : clients_) {
      if (c->commits < c->commits_at_heal + 2) {
        convergence_problem_ = absl::StrCat(c->name, " committed ", c->commits - c->commits_at_heal,
                                            " of 2 transactions");
        return false;
      }
    }
    quiesce_ = true;
    const auto objects = server_->Objects();
    for (auto& c : clients_) {
      if (c->busy) {
        convergence_problem_ = absl::StrCat(c->name, " is still in a transaction");
        return false;
      }
      if (!c->client->synced() || c->client->epoch() != epoch_) {
        convergence_problem_ = absl::StrCat(c->name, " is not synced on epoch ", epoch_);
        return false;
      }
      for (const auto& [oid, cached] : c->client->CacheContents()) {
        auto it = objects.find(oid);
        if (it == objects.end() || it->second.tid != cached.tid) {
          convergence_problem_ =
              absl::StrCat(c->name, " caches ", oid, " at tid ", cached.tid, ", the server has ",
                           it == objects.end() ? 0 : it->second.tid);
          return false;
        }
      }
    }
    return true;
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  std::optional<sim::SimHost> server_host_;
  std::unique_ptr<objstore::ObjectServer> server_;
  uint64_t epoch_ = 0;
  std::map<uint64_t, Epoch> model_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  bool stopping_ = false;
  bool quiesce_ = false;
  std::string convergence_problem_;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeObjstore() { return std::make_unique<ObjstoreScenario>(); }

}  // namespace netlayer::scenarios
