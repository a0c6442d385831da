// objstore::Client: loads through a bounded cache, commits transactions, follows invalidations
// (after ZEO's ClientStorage), written once against netlayer::Host. Cache rules
// (docs/OBJSTORE.md §4):
//   1. The cache serves only while synced: connected, and the sync for this connection answered.
//   2. An invalidation (epoch, tid, oids) drops the named oids; one of another epoch drops all.
//   3. A load reply is cached only if no invalidation of that oid newer than the reply's serial
//      arrived while the load was in flight (ZEO issue 155: a reply crossing an invalidation),
//      and no whole-cache drop happened meanwhile.
//   4. On each connection the client first sends sync(epoch, last tid seen): the server answers
//      with the oids invalidated since (dropped), or too old / a new epoch (drop everything).
//   5. A committed transaction's own stores are cached at the new tid; a conflict drops the
//      conflicting oids.
// The cache holds at most ClientOptions::cache_size entries (least recently used go first).
//
// Thread rules: every method may be called from any thread. Callbacks (LoadCallback,
// CommitCallback, on_invalidation, on_synced, on_disconnected) run on the connection's delivery
// thread or inline, with no lock held; blocking methods (Load, Commit, Stats, WaitSynced) may not
// be called from them.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/host.h"
#include "netlayer/core/mutex.h"
#include "netlayer/objstore/storage.h"
#include "netlayer/objstore/wire.h"
#include "netlayer/rpc/client.h"

namespace netlayer::objstore {

struct ClientOptions {
  size_t cache_size = 10000;  // entries; at least 1
  ConnectOptions connect = [] {
    ConnectOptions c;
    c.min_delay = absl::Milliseconds(100);
    c.max_delay = absl::Seconds(5);
    c.delay_backoff = 2;
    c.attempt_timeout = absl::Seconds(5);
    return c;
  }();
  // Everything but protocol and the callbacks, which the client sets.
  rpc::ClientOptions rpc;
  // An invalidation arrived (after the cache dropped its oids).
  std::function<void(const Invalidation&)> on_invalidation;
  // A sync answered: the client may serve from its cache again.
  std::function<void(uint64_t epoch, uint64_t last_tid)> on_synced;
  // A connection was lost or refused after it was made (the reason: a reset, a TLS rejection
  // "tls no-peer-certificate: ...", ...); the client reconnects unless closed. May call Close.
  std::function<void(const CloseReason& reason)> on_disconnected;
  // Rule 3 above. false only to prove that the objstore scenario catches ZEO issue 155.
  bool check_loads_against_invalidations = true;
  // TEST HOOKS, never set outside planted-bug runs (docs/SCENARIOS.md, "Planted bugs"):
  // caches a commit's stores even when its reply comes from an earlier epoch than the one the
  // client synced with since (a reply a crashed server's kernel delivered late); applies a sync
  // reply of the same epoch without dropping the oids it names (the invalidations missed while
  // disconnected).
  bool planted_cache_commit_of_old_epoch = false;
  bool planted_sync_keeps_missed = false;
};

struct Loaded {
  std::string data;
  uint64_t serial = 0;
  uint64_t epoch = 0;
  bool from_cache = false;
};

struct ClientCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t invalidations = 0;     // pushes received
  uint64_t dropped_entries = 0;   // by invalidations, syncs and conflicts
  uint64_t full_drops = 0;        // too old, or a new epoch
  uint64_t uncached_replies = 0;  // load replies not cached by rule 3
  uint64_t entries = 0;
  uint64_t syncs = 0;
  rpc::ClientStats rpc;
  std::string ToJson() const;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  using LoadCallback = std::function<void(absl::StatusOr<Loaded>)>;
  using CommitCallback = std::function<void(absl::StatusOr<uint64_t>)>;

  // Connects (reconnecting on loss) to the first of `servers` that answers.
  static absl::StatusOr<std::shared_ptr<Client>> Create(Host& host, std::vector<Address> servers,
                                                        ClientOptions options = {});
  ~Client();

  // From the cache when synced and cached (inline), else from the server. NotFound for an
  // unknown oid; kUnavailable / kDeadlineExceeded as rpc calls fail.
  void LoadAsync(const std::string& oid, absl::Time deadline, LoadCallback done);
  absl::StatusOr<Loaded> Load(const std::string& oid, absl::Time deadline);
  // The new tid; kAborted "conflict: oid,..." (ConflictOids) if a serial was stale.
  void CommitAsync(std::vector<Store> stores, absl::Time deadline, CommitCallback done);
  absl::StatusOr<uint64_t> Commit(std::vector<Store> stores, absl::Time deadline);
  // The server's stats as JSON.
  absl::StatusOr<std::string> ServerStats(absl::Time deadline);

  // Blocks until synced (true), or the deadline or the rpc client's end (it gave up, or a
  // permanent failure such as a rejected certificate: rpc::ClientOptions::
  // retry_permanent_failures) (false; last_error() says why).
  bool WaitSynced(absl::Time deadline);
  bool synced() const;
  // Why the rpc client is not ready (rpc::Client::last_error()).
  absl::Status last_error() const;
  uint64_t epoch() const;
  uint64_t last_tid() const;
  // The cached version of `oid` (does not count as a use).
  std::optional<Object> Cached(const std::string& oid) const;
  std::map<std::string, Object> CacheContents() const;
  ClientCacheStats stats() const;
  void Close();

 private:
  struct Entry {
    Object object;
    std::list<std::string>::iterator lru;
  };
  Client(Host& host, ClientOptions options);
  void OnReady();
  void OnDisconnected();
  // The rpc client ended (it gave up, or a permanent failure): WaitSynced returns.
  void WakeSyncWaiters();
  void OnPush(std::string_view method, std::string_view payload);
  void OnSyncReply(uint64_t connection, const rpc::CallResult& result);
  void OnLoadReply(const std::string& oid, uint64_t cache_gen, const rpc::CallResult& result,
                   const LoadCallback& done);
  void PutLocked(const std::string& oid, Object object) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropLocked(const std::string& oid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Host& host_;
  const ClientOptions options_;
  // Set once in Create, under mu_, after the rpc client exists; its callbacks may run before
  // that (a fast handshake on a connection thread), so OnReady defers to Create until then.
  // Never written again, so read without mu_ once `attached_` was seen (or by the creator).
  std::shared_ptr<rpc::Client> rpc_;

  mutable Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;     // 0: none seen yet
  uint64_t last_tid_ ABSL_GUARDED_BY(mu_) = 0;  // in epoch_
  uint64_t connection_ ABSL_GUARDED_BY(mu_) = 0;
  bool attached_ ABSL_GUARDED_BY(mu_) = false;        // rpc_ is set
  bool ready_deferred_ ABSL_GUARDED_BY(mu_) = false;  // on_ready came before rpc_ was set
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped by every whole-cache drop: a load issued before one is not cached.
  uint64_t cache_gen_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  // Loads in flight per oid, and the newest invalidation of that oid seen meanwhile (rule 3);
  // bounded by the rpc client's pending calls.
  std::map<std::string, uint64_t> loads_in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> invalidated_in_flight_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Notification>> sync_waiters_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // WakeSyncWaiters: the rpc client gave up
  ClientCacheStats counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netlayer::objstore
