// A small key-value store served over netlayer rpc: the application of this example.
//
// KvStore is a hand-rolled hash table of (key -> version, value). A put carries a version and
// only a newer version replaces the stored one (last writer wins), so a put that arrives late
// (a retry, an old connection's bytes) never undoes a newer one.
//
// Methods registered by ServeKv (payloads are plain text):
//   "put"  "<key>\n<version>\n<value>"  -> "ok"
//   "get"  "<key>"                       -> "<version>\n<value>", or NOT_FOUND
//
// Thread rules: KvStore is not synchronised; ServeKv's handlers lock a mutex around it, so a
// posix server (handlers of several sessions at once) may share one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "netlayer/rpc/server.h"

namespace kv {

struct Entry {
  uint64_t version = 0;
  std::string value;
};

class KvStore {
 public:
  // `lose_on_resize`: the planted bug. When the table grows, the entries of its last bucket are
  // not moved to the new table: acknowledged updates are silently lost. Only a workload that
  // writes enough distinct keys to make the table grow can see it.
  explicit KvStore(bool lose_on_resize = false);

  // Stores `value` unless the key already holds `version` or newer.
  void Put(const std::string& key, uint64_t version, std::string value);
  std::optional<Entry> Get(const std::string& key) const;
  size_t size() const { return size_; }

 private:
  size_t Bucket(const std::string& key, size_t buckets) const;
  void Grow();

  bool lose_on_resize_;
  size_t size_ = 0;
  std::vector<std::vector<std::pair<std::string, Entry>>> buckets_;
};

// Registers "put" and "get" on `server`, over `store` (which must outlive the server).
void ServeKv(netlayer::rpc::Server& server, std::shared_ptr<KvStore> store);

}  // namespace kv
