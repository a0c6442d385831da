// objstore: the ZEO-like object store (apps/objstore) in the simulator: three clients running
// transactions over five objects (some read-only, most storing what they read), with conflicts,
// under the seed's faults (partitions, clogs, resets, stalls, freezes, server crash and power-off)
// and the seed's disk faults. The server is the durable one: its transaction log lives on the
// server host's simulated disk (sim/disk.h), whose mix is drawn per seed (DrawDiskProfile: sync
// latency, EIO on sync with or without dropping the unsynced pages, ENOSPC with a short write,
// how often a power-off tears the unsynced tail), each fault traced on the server's timeline. A
// restarted server recovers the log: same epoch, same tids, and the clients keep their caches.
// A server whose log failed (EIO, ENOSPC) stops acknowledging; the scenario, as a supervisor
// would, restarts it (in place: the page cache survives) and retries a start that a disk fault
// failed. The server delays load replies (a slow storage read), so a reply can cross an
// invalidation in flight (ZEO issue 155).
//
// Safety, checked as each event happens:
//   - a client's cache never serves a version older than an invalidation it has received;
//   - every load returns a version some commit of the log produced (its data is what that commit
//     wrote); the server commits in tid order and every store named the current serial, checked
//     against the scenario's own model of the log (serializability under optimistic concurrency);
//   - an acknowledged commit is in the log with exactly the client's stores;
//   - every acknowledged commit is present after every restart: recovery replays the model's log
//     (what the server acknowledged, and what it had appended and recovered since) record for
//     record; records past it (appended, never acknowledged, kept by the page cache) join it;
//   - no transaction is ever partly visible: once a transaction read a version, its later loads
//     of the other oids that version's commit wrote return that commit's version or a newer one;
//   - loads never return a version older than one the client already saw (loaded or committed);
//   - caches stay consistent across restarts of the same epoch: when a client has synced, every
//     entry of its cache is the version current at the tid it synced to;
//   - at the end the server holds the log's last versions.
// History (docs/HISTORY.md): every load, commit, sync and invalidation each client saw is
// recorded (keys "e<epoch>/<oid>") and checked at the end with history::CheckTransactions:
// loads return versions commits wrote, committed transactions are serializable, and no load
// returns a version older than one its client had already observed. The plants
// cache-unverified-on-reconnect and sync-misses-first-transaction turn the scenario's own cache
// checks off: the history alone catches them.
// Liveness, after faults stop: every client commits again; then, with the workload stopped,
// every client is synced on the server's epoch and its cache holds only current versions.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "builtin.h"
#include "netlayer/history/history.h"
#include "netlayer/history/transactions.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#include "netlayer/sim/disk.h"
#include "netlayer/sim/host.h"
#include "objstore_plants.h"

namespace netlayer::scenarios {
namespace {

using objstore::Loaded;
using objstore::Store;
using sim::ScenarioContext;

// Plants declared here (the rare ones that `explore` is measured on, docs/SIMULATOR.md).
constexpr char kCacheCommitOfOldEpoch[] = "objstore-cache-commit-of-old-epoch";
constexpr char kSyncKeepsMissed[] = "objstore-sync-keeps-missed";

constexpr int kClients = 3;
constexpr int kObjects = 5;
constexpr uint16_t kPort = 8200;

std::string OidName(int i) { return absl::StrCat("o", i); }

class ObjstoreScenario final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kObjstoreCacheUnchecked,
             "the client caches a load reply without checking the invalidations received meanwhile "
             "(ZEO issue 155)"},
            {kObjstoreAckBeforeSync,
             "the durable server acknowledges a commit once its record is appended, before the "
             "sync"},
            {kObjstoreNoTornTailTruncate,
             "the durable server's recovery leaves a torn tail in the log and appends after it"},
            {kCacheCommitOfOldEpoch,
             "the client caches a commit's stores from a reply of an earlier server life (a "
             "crash between the reply and its delivery, the client resynced meanwhile)"},
            {kSyncKeepsMissed,
             "a same-epoch sync reply does not drop the oids invalidated while the client was "
             "disconnected"},
            {kCacheUnverifiedOnReconnect,
             "the client keeps its cache across a reconnect without applying the invalidations it "
             "missed (objstore-sync-keeps-missed with the scenario's own cache checks off: caught "
             "by the history check alone)"},
            {kSyncMissesFirstTransaction,
             "the server's sync leaves out the first transaction a client missed (caught by the "
             "history check alone)"}};
  }

  std::string DrawnOptions() const override { return disk_profile_.Describe(); }

  absl::Duration LivenessBound() const override { return absl::Seconds(20); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    history_ = std::make_unique<history::Recorder>([w = world_] { return w->Now(); });
    own_cache_checks_ =
        !ctx.planted(kCacheUnverifiedOnReconnect) && !ctx.planted(kSyncMissesFirstTransaction);
    // Process-wide (runs of a process are sequential): set for this run, reset in TearDown.
    objstore::testing::SetSyncMissesFirstTransaction(ctx.planted(kSyncMissesFirstTransaction));
    server_host_.emplace(*world_, *world_->AddHost("server"));
    world_->SetCrashable(server_host_->id(), true);
    // Every host may stop for a while and has its own clock (offset, drift, steps).
    world_->SetFreezable(server_host_->id(), true);
    world_->SetClockSkewable(server_host_->id(), true);
    world_->SetRestartHook(server_host_->id(), [this] { StartServer(); });
    disk_profile_ = sim::DrawDiskProfile(ctx.seed());
    world_->disk(server_host_->id()).set_profile(disk_profile_);
    StartServer();
    Supervise();
    for (int i = 0; i < kClients; ++i) {
      auto c = std::make_unique<ClientState>();
      c->name = absl::StrCat("client", i + 1);
      c->process = i + 1;
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
    if (server_ == nullptr) return;  // Converged held: it is up
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
                // Named copies: clang 14 cannot capture structured bindings.
                [&o = oid, tid = version.first] {
                  return absl::StrCat(o, " differs from the log's tid ", tid);
                });
    }
    // What the clients saw, checked alone (no model of the log).
    const history::TransactionsResult checked = history::CheckTransactions(history_->Snapshot());
    ctx.Check(checked.ok(),
              "the clients' history: loads return committed versions, commits are serializable, "
              "no load is older than what its client had observed",
              [&] { return checked.Report(); });
    for (auto& c : clients_) {
      world_->Note(c->host->id(), absl::StrCat("commits=", c->commits, " conflicts=", c->conflicts,
                                               " loads=", c->loads, " cache_hits=", c->cache_hits));
    }
  }

  void TearDown(ScenarioContext& ctx) override {
    if (ctx.wants_history() && history_ != nullptr) {
      ctx.WriteHistory(history::ToJsonLines(history_->Snapshot()));
    }
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->client) c->client->Close();
    }
    if (server_) server_->Close();
    objstore::testing::SetSyncMissesFirstTransaction(false);
  }

 private:
  // The commit log of one server life, as the server reported it (on_commit, in order).
  struct Epoch {
    uint64_t last_tid = 0;
    std::map<std::string, std::pair<uint64_t, std::string>> current;   // oid -> (tid, data)
    std::map<std::pair<std::string, uint64_t>, std::string> versions;  // (oid, tid) -> data
    std::map<uint64_t, std::vector<Store>> commits;
    std::map<std::string, std::map<uint64_t, std::string>> by_oid;  // oid -> tid -> data
    // The version of `oid` current once every transaction up to `tid` committed (0: none).
    uint64_t VersionAt(const std::string& oid, uint64_t tid) const {
      auto it = by_oid.find(oid);
      if (it == by_oid.end()) return 0;
      auto v = it->second.upper_bound(tid);
      return v == it->second.begin() ? 0 : std::prev(v)->first;
    }
  };
  struct ClientState {
    std::string name;
    int64_t process = 0;  // in the history
    std::optional<sim::SimHost> host;
    // Newest invalidation received, per epoch and oid.
    std::map<uint64_t, std::map<std::string, uint64_t>> invalidated;
    // Newest version loaded or committed, per epoch and oid.
    std::map<uint64_t, std::map<std::string, uint64_t>> seen;
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
    // oid -> the tid of a version this transaction read that also wrote the oid (newest).
    std::map<std::string, uint64_t> implied;
  };

  void StartServer() {
    objstore::ServerOptions options;
    options.storage.epoch = next_fresh_epoch_;  // a fresh log's; a recovered one keeps its own
    options.storage.max_log = 20;  // small, so reconnecting clients are sometimes "too old"
    options.data_dir = "/objstore";
    options.load_delay = [this] {
      return absl::Milliseconds(UniformInt(world_->generator(), 0, 80));
    };
    options.on_commit = [this](uint64_t epoch, uint64_t tid, const std::vector<Store>& stores) {
      OnServerCommit(epoch, tid, stores);
    };
    recovered_.clear();
    options.on_recover = [this](uint64_t epoch, uint64_t tid, const std::vector<Store>& stores) {
      recovered_.push_back({epoch, tid, stores});
    };
    options.sync_before_acknowledging = !ctx_->planted(kObjstoreAckBeforeSync);
    options.truncate_torn_tail = !ctx_->planted(kObjstoreNoTornTailTruncate);
    server_.reset();
    auto server = objstore::ObjectServer::Start(*server_host_, Address::HostName("server", kPort),
                                                std::move(options));
    if (!server.ok()) {
      // The disk failed recovery (EIO on its sync, ENOSPC on a fresh header): the supervisor
      // tries again. Nothing recovered is visible, so the model takes none of it.
      const absl::StatusCode code = server.status().code();
      ctx_->Check(
          code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kResourceExhausted,
          "the server can start after a (re)start unless its disk fails",
          [&] { return server.status().ToString(); });
      world_->Note(server_host_->id(), absl::StrCat("start failed: ", server.status().message()));
      return;
    }
    server_ = std::move(*server);
    epoch_ = server_->epoch();
    if (server_->recovery().fresh) ++next_fresh_epoch_;
    CheckRecovery();
  }

  // What Start replayed, against the model: every transaction of the model's log, in order and
  // with the same stores; then, maybe, transactions the model never saw acknowledged (appended,
  // then the process died or the log failed; the page cache kept them), which join the log now
  // that recovery synced them.
  void CheckRecovery() {
    const uint64_t epoch = server_->epoch();
    Epoch& log = model_[epoch];
    const uint64_t expected = log.last_tid;
    for (const Recovered& r : recovered_) {
      if (r.tid <= expected) {
        auto it = log.commits.find(r.tid);
        bool same = it != log.commits.end() && it->second.size() == r.stores.size();
        for (size_t i = 0; same && i < r.stores.size(); ++i) {
          same = it->second[i].oid == r.stores[i].oid && it->second[i].data == r.stores[i].data;
        }
        ctx_->Check(same, "every acknowledged commit is present after every restart", [&] {
          return absl::StrCat("recovery replayed tid ", r.tid, " of epoch ", epoch,
                              " with other stores than the log's");
        });
      } else {
        OnServerCommit(r.epoch, r.tid, r.stores);
      }
    }
    ctx_->Check(server_->last_tid() >= expected,
                "every acknowledged commit is present after every restart", [&] {
                  return absl::StrCat("the log of epoch ", epoch, " reached tid ", expected,
                                      "; recovery found ", server_->last_tid(), " (",
                                      server_->recovery().records, " records, ",
                                      server_->recovery().torn_bytes,
                                      " torn bytes cut: ", server_->recovery().tail_problem, ")");
                });
    world_->Note(server_host_->id(),
                 absl::StrCat("recovered epoch ", epoch, " up to tid ", server_->last_tid(), " (",
                              server_->recovery().records, " records, ",
                              server_->recovery().torn_bytes, " torn bytes cut)"));
  }

  // The supervisor: a server whose log failed is restarted (in place: the process exits and is
  // started again, the page cache stays); a start that a disk fault failed is tried again.
  void Supervise() {
    (void)world_->At(world_->Now() + absl::Milliseconds(100), [this] {
      if (stopping_) return;
      const sim::HostId host = server_host_->id();
      if (world_->IsUp(host) && !world_->IsFrozen(host)) {
        if (server_ == nullptr) {
          StartServer();
        } else if (!server_->log_status().ok()) {
          world_->Note(server_host_->id(), "the log failed: restarting the server");
          StartServer();
        }
      }
      Supervise();
    });
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
      log.by_oid[s.oid][tid] = s.data;
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
    options.on_synced = [this, &c](uint64_t epoch, uint64_t tid) {
      history_->Observe(c.process, "sync", "", history::Json{{"scope", Scope(epoch)}},
                        history::Json{{"version", tid}});
      if (own_cache_checks_) CheckSynced(c, epoch, tid);
    };
    options.planted_cache_commit_of_old_epoch = ctx_->planted(kCacheCommitOfOldEpoch);
    options.planted_sync_keeps_missed =
        ctx_->planted(kSyncKeepsMissed) || ctx_->planted(kCacheUnverifiedOnReconnect);
    options.on_invalidation = [this, &c](const objstore::Invalidation& inv) {
      history_->Observe(c.process, "invalidate", "", history::Json{{"scope", Scope(inv.epoch)}},
                        history::Json{{"version", inv.tid}});
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
    const uint64_t op =
        history_->Invoke(c.process, "load", Key(c.client->epoch(), oid),
                         history::Json{{"txn", absl::StrCat(c.name, "/t", c.transactions)}});
    c.client->LoadAsync(
        oid, env.Now() + absl::Seconds(3), [this, &c, tx, oid, op](absl::StatusOr<Loaded> loaded) {
          RecordLoad(op, c.client->epoch(), oid, loaded);
          uint64_t serial = 0;
          if (loaded.ok()) {
            CheckLoad(c, oid, *loaded);
            CheckTransactionView(c, *tx, oid, *loaded);
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

  static std::string Scope(uint64_t epoch) { return absl::StrCat("e", epoch); }
  static std::string Key(uint64_t epoch, const std::string& oid) {
    return absl::StrCat(Scope(epoch), "/", oid);
  }

  void RecordLoad(uint64_t op, uint64_t client_epoch, const std::string& oid,
                  const absl::StatusOr<Loaded>& loaded) {
    if (loaded.ok()) {
      history_->SetKey(op, Key(loaded->epoch, oid));
      history_->Ok(op, history::Json{{"version", loaded->serial},
                                     {"data", loaded->data},
                                     {"cache", loaded->from_cache}});
    } else if (loaded.status().code() == absl::StatusCode::kNotFound) {
      // A not-found reply names no epoch (it may come from a server the client has not synced
      // with yet): recorded as unknown.
      (void)client_epoch;
      history_->Info(op, "not found (epoch unknown)");
    } else {
      history_->Info(op, std::string(loaded.status().message()));
    }
  }

  void CheckLoad(ClientState& c, const std::string& oid, const Loaded& loaded) {
    ++c.loads;
    if (loaded.from_cache) ++c.cache_hits;
    const uint64_t newest = c.invalidated[loaded.epoch][oid];
    ctx_->Check(!own_cache_checks_ || !loaded.from_cache || loaded.serial >= newest,
                "a client's cache never serves a version older than an invalidation it received",
                [&] {
                  return absl::StrCat(c.name, " served ", oid, " at tid ", loaded.serial,
                                      " from its cache after an invalidation at tid ", newest,
                                      " (epoch ", loaded.epoch, ")");
                });
    uint64_t& seen = c.seen[loaded.epoch][oid];
    ctx_->Check(!own_cache_checks_ || loaded.serial >= seen,
                "loads never return a version older than one the client already saw", [&] {
                  return absl::StrCat(
                      c.name, " loaded ", oid, " at tid ", loaded.serial,
                      loaded.from_cache ? " (from its cache)" : " (from the server)",
                      " after it saw tid ", seen, " (epoch ", loaded.epoch, ")");
                });
    seen = std::max(seen, loaded.serial);
    auto log = model_.find(loaded.epoch);
    const bool known = log != model_.end() && log->second.versions.contains({oid, loaded.serial});
    ctx_->Check(known && log->second.versions.at({oid, loaded.serial}) == loaded.data,
                "every load returns a version the commit log produced", [&] {
                  return absl::StrCat(c.name, " loaded ", oid, " at tid ", loaded.serial, " epoch ",
                                      loaded.epoch, " data '", loaded.data, "'",
                                      known ? " (different data)" : " (no such commit)");
                });
  }

  // Within one transaction: a version read implies the versions its commit wrote of other oids.
  void CheckTransactionView(ClientState& c, Transaction& tx, const std::string& oid,
                            const Loaded& loaded) {
    auto implied = tx.implied.find(oid);
    if (implied != tx.implied.end() && loaded.epoch == tx.epoch) {
      ctx_->Check(!own_cache_checks_ || loaded.serial >= implied->second,
                  "no transaction is ever partly visible", [&] {
        return absl::StrCat(c.name, " read a version of tid ", implied->second, " that also wrote ",
                            oid, ", then loaded ", oid, " at tid ", loaded.serial,
                            loaded.from_cache ? " (from its cache)" : " (from the server)");
      });
    }
    auto log = model_.find(loaded.epoch);
    if (log == model_.end() || loaded.epoch != tx.epoch) return;
    auto commit = log->second.commits.find(loaded.serial);
    if (commit == log->second.commits.end()) return;
    for (const Store& s : commit->second) {
      uint64_t& t = tx.implied[s.oid];
      t = std::max(t, loaded.serial);
    }
  }

  // After a sync, the cache holds only versions current at the tid it synced to.
  void CheckSynced(ClientState& c, uint64_t epoch, uint64_t tid) {
    auto log = model_.find(epoch);
    for (const auto& [oid, cached] : c.client->CacheContents()) {
      const uint64_t current = log == model_.end() ? 0 : log->second.VersionAt(oid, tid);
      ctx_->Check(
          cached.tid == current, "caches stay consistent across restarts of the same epoch",
          // Structured bindings captured by name: clang 14 cannot capture them implicitly.
          [&, &o = oid, cached_tid = cached.tid] {
            return absl::StrCat(c.name, " synced to tid ", tid, " of epoch ", epoch, " caching ",
                                o, " at tid ", cached_tid, "; current is ", current);
          });
    }
  }

  void Commit(ClientState& c, std::shared_ptr<Transaction> tx) {
    Env& env = c.host->env();
    // The commit names the epoch the client is on when it sends it.
    const uint64_t epoch = c.client->epoch();
    history::Json reads = history::Json::object(), writes = history::Json::object();
    for (const Store& s : tx->stores) {
      reads[Key(epoch, s.oid)] = s.serial;
      writes[Key(epoch, s.oid)] = s.data;
    }
    const uint64_t op = history_->Invoke(c.process, "commit", "",
                                         history::Json{{"reads", reads}, {"writes", writes}});
    c.client->CommitAsync(
        tx->stores, env.Now() + absl::Seconds(3), [this, &c, tx, op](absl::StatusOr<uint64_t> tid) {
          if (tid.ok()) {
            history_->Ok(op, history::Json{{"version", *tid}});
          } else if (tid.status().code() == absl::StatusCode::kAborted) {
            history_->Fail(op, std::string(tid.status().message()));
          } else {
            history_->Info(op, std::string(tid.status().message()));
          }
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
    // The reply came over the client's connection, from the server it synced with: after a
    // process crash its kernel still delivers what that server had sent (a FIN follows), so the
    // reply may arrive when a later server is already up.
    const uint64_t epoch = c.client->epoch();
    const Epoch& log = model_[epoch];
    auto it = log.commits.find(tid);
    bool same = it != log.commits.end() && it->second.size() == tx.stores.size();
    for (size_t i = 0; same && i < tx.stores.size(); ++i) {
      same = it->second[i].oid == tx.stores[i].oid && it->second[i].data == tx.stores[i].data;
    }
    for (const Store& s : tx.stores) {
      uint64_t& seen = c.seen[epoch][s.oid];
      seen = std::max(seen, tid);
    }
    ctx_->Check(same, "an acknowledged commit is in the log with the client's stores", [&] {
      return absl::StrCat(c.name, " got tid ", tid, " in epoch ", epoch, "; the log ",
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
    if (server_ == nullptr) {
      convergence_problem_ = "the server is not running";
      return false;
    }
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
      if (!own_cache_checks_) continue;
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
  sim::DiskProfile disk_profile_;
  // What the current Start replayed (on_recover), checked once it succeeded.
  struct Recovered {
    uint64_t epoch;
    uint64_t tid;
    std::vector<Store> stores;
  };
  std::vector<Recovered> recovered_;
  uint64_t next_fresh_epoch_ = 1;
  uint64_t epoch_ = 0;
  std::map<uint64_t, Epoch> model_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  bool stopping_ = false;
  bool quiesce_ = false;
  std::string convergence_problem_;
  bool own_cache_checks_ = true;
  std::unique_ptr<history::Recorder> history_;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeObjstore() { return std::make_unique<ObjstoreScenario>(); }

}  // namespace netlayer::scenarios
