// Storage: the object store's state, sans-I/O (no network, clock or thread): objects (oid ->
// data and the tid of the transaction that last wrote it), the last tid, the epoch, and a
// bounded log of recent transactions' oids, for clients that reconnect (docs/OBJSTORE.md §3).
//
// Transactions commit with optimistic concurrency: each store names the serial (tid) of the
// version it read (0: the object must not exist yet); if any is stale, nothing is written and
// the commit fails kAborted, "conflict: " naming every stale oid. Tids are consecutive from 1
// within an epoch. A memory-only server restarted has a new epoch and starts empty; a durable
// one (ObjectServer with a data directory) replays its log into a Storage of the same epoch.
//
// A durable commit has two steps: Prepare checks it and assigns its tid (later Prepares see its
// stores as current, so two prepared transactions never both win), Apply makes it visible once
// its log record is synced (loads and InvalidatedSince see only applied transactions), or
// AbortPending drops every prepared one (the log failed). Commit is Prepare + Apply at once.
//
// Thread rules: none (not synchronised); ObjectServer guards it with its lock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "netlayer/objstore/wire.h"

namespace netlayer::objstore {

struct StorageOptions {
  uint64_t epoch = 1;
  // Transactions remembered for InvalidatedSince; a client further behind drops its cache.
  size_t max_log = 1000;
  // Bounds: objects held, bytes per object.
  size_t max_objects = size_t{1} << 20;
  size_t max_object_bytes = size_t{1} << 20;
};

struct Object {
  std::string data;
  uint64_t tid = 0;
};

class Storage {
 public:
  explicit Storage(StorageOptions options = {}) : options_(options) {}

  uint64_t epoch() const { return epoch_; }
  uint64_t last_tid() const { return last_tid_; }
  size_t size() const { return objects_.size(); }
  const std::map<std::string, Object, std::less<>>& objects() const { return objects_; }

  // NotFound for an unknown oid.
  absl::StatusOr<Object> Load(std::string_view oid) const;
  // The new tid. kAborted ("conflict: a,b") if a serial is stale or `epoch` is not this one
  // (then every oid is named); InvalidArgument for no stores, a duplicate oid or a bad oid;
  // ResourceExhausted past max_objects / max_object_bytes.
  absl::StatusOr<uint64_t> Commit(uint64_t epoch, const std::vector<Store>& stores);
  // Commit's checks against the applied and prepared state; the tid it will have. Nothing is
  // visible until Apply.
  absl::StatusOr<uint64_t> Prepare(uint64_t epoch, const std::vector<Store>& stores);
  // REQUIRES: `tid` is the oldest prepared transaction (last_tid() + 1), `stores` its stores.
  void Apply(uint64_t tid, const std::vector<Store>& stores);
  // Forgets every prepared transaction (their tids are given out again).
  void AbortPending();
  size_t pending() const { return next_tid_ - last_tid_; }

  // Recovery: a durable server's log replayed into an empty Storage. SetEpoch first; then each
  // record in order (REQUIRES: tid == last_tid() + 1; no checks: the log holds what was checked).
  void SetEpoch(uint64_t epoch) { epoch_ = epoch; }
  void Replay(uint64_t tid, const std::vector<Store>& stores);

  // What changed after `tid` for a client that saw everything up to `tid` in `epoch`: the oids
  // (sorted, unique), or too_old if the log no longer reaches back that far, the epoch differs
  // or the tid is from the future (the client must drop its whole cache).
  struct Since {
    bool too_old = false;
    std::vector<std::string> oids;
  };
  Since InvalidatedSince(uint64_t epoch, uint64_t tid) const;

 private:
  const StorageOptions options_;
  uint64_t epoch_ = options_.epoch;
  std::map<std::string, Object, std::less<>> objects_;
  uint64_t last_tid_ = 0;
  uint64_t next_tid_ = 0;  // last tid given out by Prepare (== last_tid_: none pending)
  // oid -> (tid of its newest prepared store, prepared stores of it); new oids prepared.
  std::map<std::string, std::pair<uint64_t, int>, std::less<>> prepared_;
  size_t prepared_new_ = 0;
  std::deque<std::pair<uint64_t, std::vector<std::string>>> log_;  // oldest first
};

}  // namespace netlayer::objstore
