#include "netlayer/objstore/storage.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace netlayer::objstore {

absl::StatusOr<Object> Storage::Load(std::string_view oid) const {
  auto it = objects_.find(oid);
  if (it == objects_.end()) {
    return absl::NotFoundError(absl::StrCat("objstore: no object ", std::string(oid)));
  }
  return it->second;
}

absl::StatusOr<uint64_t> Storage::Commit(uint64_t epoch, const std::vector<Store>& stores) {
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
    if (!objects_.contains(s.oid)) ++added;
  }
  std::vector<std::string> stale;
  for (const Store& s : stores) {
    auto it = objects_.find(s.oid);
    const uint64_t current = it == objects_.end() ? 0 : it->second.tid;
    if (epoch != options_.epoch || s.serial != current) stale.push_back(s.oid);
  }
  if (!stale.empty()) return absl::AbortedError(ConflictMessage(stale));
  if (objects_.size() + added > options_.max_objects) {
    return absl::ResourceExhaustedError(
        absl::StrCat("objstore: the store holds ", options_.max_objects, " objects at most"));
  }
  const uint64_t tid = ++last_tid_;
  std::vector<std::string> oids;
  for (const Store& s : stores) {
    objects_[s.oid] = Object{s.data, tid};
    oids.push_back(s.oid);
  }
  log_.emplace_back(tid, std::move(oids));
  while (log_.size() > options_.max_log) log_.pop_front();
  return tid;
}

Storage::Since Storage::InvalidatedSince(uint64_t epoch, uint64_t tid) const {
  Since out;
  if (epoch != options_.epoch || tid > last_tid_) {
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
    if (t > tid) oids.insert(names.begin(), names.end());
  }
  out.oids.assign(oids.begin(), oids.end());
  return out;
}

}  // namespace netlayer::objstore
