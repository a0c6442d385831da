#include "netlayer/objstore/storage.h"

#include <atomic>
#include <set>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "objstore_plants.h"

namespace netlayer::objstore {

absl::StatusOr<Object> Storage::Load(std::string_view oid) const {
  auto it = objects_.find(oid);
  if (it == objects_.end()) {
    return absl::NotFoundError(absl::StrCat("objstore: no object ", std::string(oid)));
  }
  return it->second;
}

absl::StatusOr<uint64_t> Storage::Commit(uint64_t epoch, const std::vector<Store>& stores) {
  absl::StatusOr<uint64_t> tid = Prepare(epoch, stores);
  if (tid.ok()) Apply(*tid, stores);
  return tid;
}

absl::StatusOr<uint64_t> Storage::Prepare(uint64_t epoch, const std::vector<Store>& stores) {
  if (stores.empty()) return absl::InvalidArgumentError("objstore: a commit stores something");
  if (stores.size() > kMaxStoresPerCommit) {
    return absl::InvalidArgumentError("objstore: too many stores in one commit");
  }
  std::set<std::string_view> seen;
  size_t added = 0;
  for (const Store& s : stores) {
    if (absl::Status v = ValidateOid(s.oid); !v.ok()) return v;
    if (!seen.insert(s.oid).second) {
      return absl::InvalidArgumentError(absl::StrCat("objstore: ", s.oid, " stored twice"));
    }
    if (s.data.size() > options_.max_object_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("objstore: ", s.oid, " is ", s.data.size(),
                                                       " bytes (max ", options_.max_object_bytes,
                                                       ")"));
    }
    if (!objects_.contains(s.oid) && !prepared_.contains(s.oid)) ++added;
  }
  std::vector<std::string> stale;
  for (const Store& s : stores) {
    uint64_t current = 0;
    if (auto p = prepared_.find(s.oid); p != prepared_.end()) {
      current = p->second.first;
    } else if (auto it = objects_.find(s.oid); it != objects_.end()) {
      current = it->second.tid;
    }
    if (epoch != epoch_ || s.serial != current) stale.push_back(s.oid);
  }
  if (!stale.empty()) return absl::AbortedError(ConflictMessage(stale));
  if (objects_.size() + prepared_new_ + added > options_.max_objects) {
    return absl::ResourceExhaustedError(
        absl::StrCat("objstore: the store holds ", options_.max_objects, " objects at most"));
  }
  const uint64_t tid = ++next_tid_;
  for (const Store& s : stores) {
    auto [p, fresh] = prepared_.try_emplace(s.oid, tid, 0);
    p->second.first = tid;
    ++p->second.second;
    if (fresh && !objects_.contains(s.oid)) ++prepared_new_;
  }
  return tid;
}

void Storage::Apply(uint64_t tid, const std::vector<Store>& stores) {
  NETLAYER_ASSERT(tid == last_tid_ + 1 && tid <= next_tid_,
                  "objstore: transactions are applied in the order prepared");
  for (const Store& s : stores) {
    auto p = prepared_.find(s.oid);
    NETLAYER_ASSERT(p != prepared_.end(), "objstore: an applied store was prepared");
    // A prepared oid not yet stored was counted new when first prepared; it exists from now on.
    if (!objects_.contains(s.oid)) --prepared_new_;
    if (--p->second.second == 0) prepared_.erase(p);
  }
  Replay(tid, stores);
}

void Storage::AbortPending() {
  prepared_.clear();
  prepared_new_ = 0;
  next_tid_ = last_tid_;
}

void Storage::Replay(uint64_t tid, const std::vector<Store>& stores) {
  NETLAYER_ASSERT(tid == last_tid_ + 1, "objstore: tids are consecutive");
  last_tid_ = tid;
  if (next_tid_ < tid) next_tid_ = tid;
  std::vector<std::string> oids;
  for (const Store& s : stores) {
    objects_[s.oid] = Object{s.data, tid};
    oids.push_back(s.oid);
  }
  log_.emplace_back(tid, std::move(oids));
  while (log_.size() > options_.max_log) log_.pop_front();
}

Storage::Since Storage::InvalidatedSince(uint64_t epoch, uint64_t tid) const {
  Since out;
  if (epoch != epoch_ || tid > last_tid_) {
    out.too_old = true;
    return out;
  }
  if (tid == last_tid_) return out;
  // The log must hold every transaction after `tid` (tids are consecutive).
  if (log_.empty() || log_.front().first > tid + 1) {
    out.too_old = true;
    return out;
  }
  std::set<std::string> oids;
  for (const auto& [t, names] : log_) {
    // Planted: the first transaction the client missed is left out (an off-by-one).
    const uint64_t after = testing::SyncMissesFirstTransaction() ? tid + 1 : tid;
    if (t > after) oids.insert(names.begin(), names.end());
  }
  out.oids.assign(oids.begin(), oids.end());
  return out;
}

namespace {
std::atomic<bool> sync_misses_first_transaction{false};
}  // namespace

void testing::SetSyncMissesFirstTransaction(bool on) { sync_misses_first_transaction = on; }
bool testing::SyncMissesFirstTransaction() { return sync_misses_first_transaction; }

}  // namespace netlayer::objstore
