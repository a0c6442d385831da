// The objstore's message encoding (docs/OBJSTORE.md §2): big-endian u64 / u32 and u32-length
// prefixed strings, inside rpc payloads. Decoding never trusts a length: every read is bounded
// by what remains, and a short or malformed payload is an InvalidArgument, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace netlayer::objstore {

// Object ids: 1..kMaxOidLength bytes of [A-Za-z0-9._:-] (they appear in error messages and
// logs as they are).
inline constexpr size_t kMaxOidLength = 64;
// Stores in one transaction, and oids named in one message.
inline constexpr size_t kMaxStoresPerCommit = 1024;
absl::Status ValidateOid(std::string_view oid);

class Writer {
 public:
  Writer& U64(uint64_t v);
  Writer& U32(uint32_t v);
  Writer& U8(uint8_t v);
  Writer& Bytes(std::string_view s);  // u32 length + bytes
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  absl::StatusOr<uint64_t> U64();
  absl::StatusOr<uint32_t> U32();
  absl::StatusOr<uint8_t> U8();
  absl::StatusOr<std::string> Bytes();
  // A count of items, each at least `min_item_bytes` long, bounded by `max` and by what remains.
  absl::StatusOr<uint32_t> Count(size_t min_item_bytes, size_t max);
  // InvalidArgument if bytes remain.
  absl::Status End() const;
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// ---- Messages ----
struct Store {
  std::string oid;
  uint64_t serial = 0;  // the tid of the version the transaction read; 0: a new object
  std::string data;
};

struct Invalidation {
  uint64_t epoch = 0;
  uint64_t tid = 0;
  std::vector<std::string> oids;
};

std::string EncodeStores(uint64_t epoch, const std::vector<Store>& stores);
absl::Status DecodeStores(std::string_view payload, uint64_t& epoch, std::vector<Store>& stores);
std::string EncodeInvalidation(const Invalidation& inv);
absl::StatusOr<Invalidation> DecodeInvalidation(std::string_view payload);
// The "invalidate" push carries one or more transactions' invalidations back to back, in tid
// order (the server sends a group commit's in one push per session): the encodings of
// EncodeInvalidation concatenated. InvalidArgument for an empty or malformed payload.
absl::StatusOr<std::vector<Invalidation>> DecodeInvalidations(std::string_view payload);

// A conflict's error message: "conflict: oid1,oid2" (oids cannot contain ',').
std::string ConflictMessage(const std::vector<std::string>& oids);
// The oids of a kAborted conflict status; empty for any other status.
std::vector<std::string> ConflictOids(const absl::Status& status);

}  // namespace netlayer::objstore
