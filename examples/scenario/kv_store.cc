#include "kv_store.h"

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kv {

KvStore::KvStore(bool lose_on_resize) : lose_on_resize_(lose_on_resize), buckets_(8) {}

size_t KvStore::Bucket(const std::string& key, size_t buckets) const {
  // FNV-1a: fixed across runs and platforms (std::hash is not required to be).
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
  return static_cast<size_t>(h % buckets);
}

void KvStore::Grow() {
  std::vector<std::vector<std::pair<std::string, Entry>>> next(buckets_.size() * 2);
  // The planted bug: an off-by-one that skips the last bucket.
  const size_t moved = lose_on_resize_ ? buckets_.size() - 1 : buckets_.size();
  size_ = 0;
  for (size_t b = 0; b < moved; ++b) {
    for (auto& kv : buckets_[b]) {
      next[Bucket(kv.first, next.size())].push_back(std::move(kv));
      ++size_;
    }
  }
  buckets_ = std::move(next);
}

void KvStore::Put(const std::string& key, uint64_t version, std::string value) {
  auto& bucket = buckets_[Bucket(key, buckets_.size())];
  for (auto& [k, entry] : bucket) {
    if (k != key) continue;
    if (version > entry.version) entry = Entry{version, std::move(value)};
    return;
  }
  bucket.emplace_back(key, Entry{version, std::move(value)});
  if (++size_ > 2 * buckets_.size()) Grow();
}

std::optional<Entry> KvStore::Get(const std::string& key) const {
  for (const auto& [k, entry] : buckets_[Bucket(key, buckets_.size())]) {
    if (k == key) return entry;
  }
  return std::nullopt;
}

void ServeKv(netlayer::rpc::Server& server, std::shared_ptr<KvStore> store) {
  auto mu = std::make_shared<std::mutex>();
  server.Register("put", [store, mu](const netlayer::rpc::Request& request,
                                     netlayer::rpc::Responder responder) {
    // Debian 12's Abseil has its own string_view: convert std::string_view before absl calls.
    const absl::string_view payload(request.payload.data(), request.payload.size());
    std::vector<std::string> parts = absl::StrSplit(payload, absl::MaxSplits('\n', 2));
    uint64_t version = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &version)) {
      (void)responder.Fail(absl::InvalidArgumentError("put: expected key\\nversion\\nvalue"));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(*mu);
      store->Put(parts[0], version, std::move(parts[2]));
    }
    (void)responder.Reply("ok");
  });
  server.Register("get", [store, mu](const netlayer::rpc::Request& request,
                                     netlayer::rpc::Responder responder) {
    std::optional<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(*mu);
      entry = store->Get(std::string(request.payload));
    }
    if (!entry) {
      (void)responder.Fail(absl::NotFoundError(std::string(request.payload)));
      return;
    }
    (void)responder.Reply(absl::StrCat(entry->version, "\n", entry->value));
  });
}

}  // namespace kv
