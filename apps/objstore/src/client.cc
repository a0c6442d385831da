#include "netlayer/objstore/client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/log.h"
#include "netlayer/objstore/server.h"

namespace netlayer::objstore {

std::string ClientCacheStats::ToJson() const {
  return absl::StrCat("{\"hits\":", hits, ",\"misses\":", misses,
                      ",\"invalidations\":", invalidations,
                      ",\"dropped_entries\":", dropped_entries, ",\"full_drops\":", full_drops,
                      ",\"uncached_replies\":", uncached_replies, ",\"entries\":", entries,
                      ",\"syncs\":", syncs, ",\"rpc\":", rpc.ToJson(), "}");
}

Client::Client(Host& host, ClientOptions options) : host_(host), options_(std::move(options)) {}

Client::~Client() { Close(); }

absl::StatusOr<std::shared_ptr<Client>> Client::Create(Host& host, std::vector<Address> servers,
                                                       ClientOptions options) {
  if (options.cache_size == 0) {
    return absl::InvalidArgumentError("objstore client: cache_size must be at least 1");
  }
  std::shared_ptr<Client> client(new Client(host, std::move(options)));
  rpc::ClientOptions rpc_options = client->options_.rpc;
  rpc_options.protocol = kProtocol;
  std::weak_ptr<Client> weak = client;
  rpc_options.on_ready = [weak](uint16_t) {
    if (auto c = weak.lock()) c->OnReady();
  };
  rpc_options.on_disconnected = [weak](const CloseReason& reason) {
    if (auto c = weak.lock()) {
      c->OnDisconnected();
      if (c->options_.on_disconnected) c->options_.on_disconnected(reason);
    }
  };
  rpc_options.on_gave_up = [weak, user = client->options_.rpc.on_gave_up](const absl::Status& why) {
    if (auto c = weak.lock()) c->WakeSyncWaiters();
    if (user) user(why);
  };
  rpc_options.on_push = [weak](std::string_view method, std::string_view payload) {
    if (auto c = weak.lock()) c->OnPush(method, payload);
  };
  auto rpc = rpc::Client::CreateReconnecting(host.env(), host.client_factory(), std::move(servers),
                                             client->options_.connect, std::move(rpc_options));
  if (!rpc.ok()) return rpc.status();
  bool deferred;
  {
    MutexLock lock(client->mu_);
    client->rpc_ = *rpc;
    client->attached_ = true;
    deferred = std::exchange(client->ready_deferred_, false);
  }
  if (deferred) client->OnReady();  // the connection was ready before rpc_ was set
  return client;
}

void Client::Close() {
  if (rpc_) rpc_->Close();
  std::vector<std::shared_ptr<Notification>> waiters;
  {
    MutexLock lock(mu_);
    synced_ = false;
    waiters.swap(sync_waiters_);
  }
  for (auto& w : waiters) w->Notify();
}

// ---- Connection and sync ----

void Client::OnReady() {
  uint64_t connection;
  std::string request;
  {
    MutexLock lock(mu_);
    if (!attached_) {
      ready_deferred_ = true;  // Create sends the sync once rpc_ is set
      return;
    }
    connection = ++connection_;
    synced_ = false;
    request = Writer().U64(epoch_).U64(last_tid_).Take();
  }
  std::weak_ptr<Client> weak = weak_from_this();
  rpc_->CallAsync("sync", request, host_.env().Now() + absl::Seconds(30),
                  [weak, connection](rpc::CallResult result) {
                    if (auto c = weak.lock()) c->OnSyncReply(connection, result);
                  });
}

void Client::OnDisconnected() {
  MutexLock lock(mu_);
  ready_deferred_ = false;  // that connection is gone; the next on_ready syncs
  synced_ = false;
  ++connection_;  // a sync reply of the lost connection changes nothing
}

void Client::OnSyncReply(uint64_t connection, const rpc::CallResult& result) {
  if (!result.ok()) return;  // the connection is lost; the next one syncs again
  Reader r(*result);
  absl::StatusOr<uint64_t> epoch = r.U64();
  absl::StatusOr<uint64_t> tid = epoch.ok() ? r.U64() : epoch;
  absl::StatusOr<uint8_t> too_old = tid.ok() ? r.U8() : tid.status();
  absl::StatusOr<uint32_t> n = too_old.ok() ? r.Count(4, SIZE_MAX) : too_old.status();
  std::vector<std::string> oids;
  for (uint32_t i = 0; n.ok() && i < *n; ++i) {
    absl::StatusOr<std::string> oid = r.Bytes();
    if (!oid.ok()) {
      n = oid.status();
      break;
    }
    oids.push_back(std::move(*oid));
  }
  if (!n.ok() || !r.End().ok()) {
    Log(LogLayer::kRpc).error("objstore client: malformed sync reply");
    return;
  }
  std::vector<std::shared_ptr<Notification>> waiters;
  uint64_t synced_epoch, synced_tid;
  {
    MutexLock lock(mu_);
    if (connection != connection_) return;
    if (*too_old != 0 || *epoch != epoch_) {
      DropAllLocked();
      epoch_ = *epoch;
      last_tid_ = *tid;
    } else {
      if (!options_.planted_sync_keeps_missed) {
        for (const std::string& oid : oids) DropLocked(oid);
      }
      last_tid_ = std::max(last_tid_, *tid);
    }
    synced_ = true;
    ++counts_.syncs;
    waiters.swap(sync_waiters_);
    synced_epoch = epoch_;
    synced_tid = last_tid_;
  }
  for (auto& w : waiters) w->Notify();
  if (options_.on_synced) options_.on_synced(synced_epoch, synced_tid);
}

void Client::OnPush(std::string_view method, std::string_view payload) {
  if (method != "invalidate") return;
  absl::StatusOr<std::vector<Invalidation>> invs = DecodeInvalidations(payload);
  if (!invs.ok()) {
    Log(LogLayer::kRpc).error("objstore client: {}", invs.status().ToString());
    return;
  }
  {
    MutexLock lock(mu_);
    for (const Invalidation& inv : *invs) {
      ++counts_.invalidations;
      if (inv.epoch != epoch_) {
        // Another server life: nothing cached is known to be current.
        DropAllLocked();
        epoch_ = inv.epoch;
        last_tid_ = 0;
      } else {
        for (const std::string& oid : inv.oids) {
          DropLocked(oid);
          if (loads_in_flight_.contains(oid)) {
            uint64_t& newest = invalidated_in_flight_[oid];
            newest = std::max(newest, inv.tid);
          }
        }
        last_tid_ = std::max(last_tid_, inv.tid);
      }
    }
  }
  if (options_.on_invalidation) {
    for (const Invalidation& inv : *invs) options_.on_invalidation(inv);
  }
}

// ---- Cache ----

void Client::PutLocked(const std::string& oid, Object object) {
  auto it = cache_.find(oid);
  if (it != cache_.end()) {
    lru_.erase(it->second.lru);
    cache_.erase(it);
  }
  while (cache_.size() >= options_.cache_size) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(oid);
  cache_.emplace(oid, Entry{std::move(object), lru_.begin()});
}

void Client::DropLocked(const std::string& oid) {
  auto it = cache_.find(oid);
  if (it == cache_.end()) return;
  lru_.erase(it->second.lru);
  cache_.erase(it);
  ++counts_.dropped_entries;
}

void Client::DropAllLocked() {
  counts_.dropped_entries += cache_.size();
  cache_.clear();
  lru_.clear();
  ++counts_.full_drops;
  ++cache_gen_;
}

// ---- Loads and commits ----

void Client::LoadAsync(const std::string& oid, absl::Time deadline, LoadCallback done) {
  if (absl::Status v = ValidateOid(oid); !v.ok()) {
    done(v);
    return;
  }
  uint64_t cache_gen;
  {
    MutexLock lock(mu_);
    auto it = synced_ ? cache_.find(oid) : cache_.end();
    if (it != cache_.end()) {
      ++counts_.hits;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      Loaded hit{it->second.object.data, it->second.object.tid, epoch_, true};
      lock.unlock();
      done(std::move(hit));
      return;
    }
    ++counts_.misses;
    ++loads_in_flight_[oid];
    cache_gen = cache_gen_;
  }
  std::weak_ptr<Client> weak = weak_from_this();
  rpc_->CallAsync("load", oid, deadline,
                  [weak, oid, cache_gen, done = std::move(done)](rpc::CallResult result) {
                    auto c = weak.lock();
                    if (c == nullptr) {
                      done(absl::CancelledError("objstore client closed"));
                      return;
                    }
                    c->OnLoadReply(oid, cache_gen, result, done);
                  });
}

void Client::OnLoadReply(const std::string& oid, uint64_t cache_gen, const rpc::CallResult& result,
                         const LoadCallback& done) {
  absl::StatusOr<Loaded> loaded = absl::UnknownError("unset");
  if (!result.ok()) {
    loaded = result.status();
  } else {
    Reader r(*result);
    absl::StatusOr<uint64_t> epoch = r.U64();
    absl::StatusOr<uint64_t> serial = epoch.ok() ? r.U64() : epoch;
    absl::StatusOr<std::string> data = serial.ok() ? r.Bytes() : serial.status();
    if (!data.ok() || !r.End().ok()) {
      loaded = absl::InternalError("objstore client: malformed load reply");
    } else {
      loaded = Loaded{std::move(*data), *serial, *epoch, false};
    }
  }
  {
    MutexLock lock(mu_);
    uint64_t newest_invalidation = 0;
    auto inv = invalidated_in_flight_.find(oid);
    if (inv != invalidated_in_flight_.end()) newest_invalidation = inv->second;
    auto in_flight = loads_in_flight_.find(oid);
    if (in_flight != loads_in_flight_.end() && --in_flight->second == 0) {
      loads_in_flight_.erase(in_flight);
      if (inv != invalidated_in_flight_.end()) invalidated_in_flight_.erase(inv);
    }
    if (loaded.ok()) {
      const bool crossed = options_.check_loads_against_invalidations &&
                           (newest_invalidation > loaded->serial || cache_gen != cache_gen_);
      if (loaded->epoch == epoch_ && !crossed) {
        PutLocked(oid, Object{loaded->data, loaded->serial});
      } else {
        ++counts_.uncached_replies;
      }
    }
  }
  done(std::move(loaded));
}

void Client::CommitAsync(std::vector<Store> stores, absl::Time deadline, CommitCallback done) {
  std::string request;
  {
    MutexLock lock(mu_);
    request = EncodeStores(epoch_, stores);
  }
  std::weak_ptr<Client> weak = weak_from_this();
  rpc_->CallAsync(
      "commit", request, deadline,
      [weak, stores = std::move(stores), done = std::move(done)](rpc::CallResult result) {
        auto c = weak.lock();
        if (c == nullptr) {
          done(absl::CancelledError("objstore client closed"));
          return;
        }
        absl::StatusOr<uint64_t> tid = absl::UnknownError("unset");
        if (!result.ok()) tid = result.status();
        {
          MutexLock lock(c->mu_);
          if (result.ok()) {
            Reader r(*result);
            absl::StatusOr<uint64_t> epoch = r.U64();
            absl::StatusOr<uint64_t> t = epoch.ok() ? r.U64() : epoch;
            if (!t.ok()) {
              tid = absl::InternalError("objstore client: malformed commit reply");
            } else {
              tid = *t;
              // Invalidations of earlier tids came before this reply (the server sends them
              // under its lock), so the stores are the current versions.
              if (*epoch == c->epoch_ || c->options_.planted_cache_commit_of_old_epoch) {
                for (const Store& s : stores) c->PutLocked(s.oid, Object{s.data, *t});
                c->last_tid_ = std::max(c->last_tid_, *t);
              }
            }
          } else {
            for (const std::string& oid : ConflictOids(result.status())) c->DropLocked(oid);
          }
        }
        done(std::move(tid));
      });
}

namespace {
// Runs an async call and waits for its callback.
template <typename T, typename Start>
T Wait(Env& env, absl::Time deadline, Start start) {
  std::shared_ptr<Notification> n = env.NewNotification();
  auto result = std::make_shared<std::optional<T>>();
  start([n, result](T r) {
    *result = std::move(r);
    n->Notify();
  });
  n->WaitUntil(deadline == absl::InfiniteFuture() ? deadline : deadline + absl::Seconds(1));
  if (!result->has_value()) return T(absl::DeadlineExceededError("objstore: no answer"));
  return std::move(**result);
}
}  // namespace

absl::StatusOr<Loaded> Client::Load(const std::string& oid, absl::Time deadline) {
  return Wait<absl::StatusOr<Loaded>>(host_.env(), deadline,
                                      [&](auto cb) { LoadAsync(oid, deadline, std::move(cb)); });
}

absl::StatusOr<uint64_t> Client::Commit(std::vector<Store> stores, absl::Time deadline) {
  return Wait<absl::StatusOr<uint64_t>>(host_.env(), deadline, [&](auto cb) {
    CommitAsync(std::move(stores), deadline, std::move(cb));
  });
}

absl::StatusOr<std::string> Client::ServerStats(absl::Time deadline) {
  return rpc_->Call("stats", "", deadline);
}

bool Client::WaitSynced(absl::Time deadline) {
  std::shared_ptr<Notification> n;
  {
    MutexLock lock(mu_);
    if (synced_) return true;
    if (ended_) return false;
    n = host_.env().NewNotification();
    sync_waiters_.push_back(n);
  }
  n->WaitUntil(deadline);
  return synced();
}

absl::Status Client::last_error() const {
  if (!rpc_) return absl::FailedPreconditionError("objstore client: not started");
  return rpc_->last_error();
}

void Client::WakeSyncWaiters() {
  std::vector<std::shared_ptr<Notification>> waiters;
  {
    MutexLock lock(mu_);
    ended_ = true;
    waiters.swap(sync_waiters_);
  }
  for (auto& w : waiters) w->Notify();
}

bool Client::synced() const {
  MutexLock lock(mu_);
  return synced_;
}
uint64_t Client::epoch() const {
  MutexLock lock(mu_);
  return epoch_;
}
uint64_t Client::last_tid() const {
  MutexLock lock(mu_);
  return last_tid_;
}

std::optional<Object> Client::Cached(const std::string& oid) const {
  MutexLock lock(mu_);
  auto it = cache_.find(oid);
  if (it == cache_.end()) return std::nullopt;
  return it->second.object;
}

std::map<std::string, Object> Client::CacheContents() const {
  MutexLock lock(mu_);
  std::map<std::string, Object> out;
  for (const auto& [oid, e] : cache_) out.emplace(oid, e.object);
  return out;
}

ClientCacheStats Client::stats() const {
  ClientCacheStats out;
  {
    MutexLock lock(mu_);
    out = counts_;
    out.entries = cache_.size();
  }
  out.rpc = rpc_->stats();
  return out;
}

}  // namespace netlayer::objstore
