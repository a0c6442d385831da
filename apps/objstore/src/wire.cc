#include "netlayer/objstore/wire.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace netlayer::objstore {

absl::Status ValidateOid(std::string_view oid) {
  if (oid.empty() || oid.size() > kMaxOidLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("objstore: an oid is 1..", kMaxOidLength, " bytes, got ", oid.size()));
  }
  for (char c : oid) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return absl::InvalidArgumentError("objstore: an oid is made of [A-Za-z0-9._:-]");
  }
  return absl::OkStatus();
}

Writer& Writer::U64(uint64_t v) {
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>(v >> (8 * i)));
  return *this;
}
Writer& Writer::U32(uint32_t v) {
  for (int i = 3; i >= 0; --i) out_.push_back(static_cast<char>(v >> (8 * i)));
  return *this;
}
Writer& Writer::U8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}
Writer& Writer::Bytes(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  out_.append(s);
  return *this;
}

namespace {
absl::Status Short(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("objstore: message too short for ", what));
}
}  // namespace

absl::StatusOr<uint64_t> Reader::U64() {
  if (in_.size() < 8) return Short("a u64");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in_[i]);
  in_.remove_prefix(8);
  return v;
}
absl::StatusOr<uint32_t> Reader::U32() {
  if (in_.size() < 4) return Short("a u32");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in_[i]);
  in_.remove_prefix(4);
  return v;
}
absl::StatusOr<uint8_t> Reader::U8() {
  if (in_.empty()) return Short("a u8");
  const uint8_t v = static_cast<unsigned char>(in_[0]);
  in_.remove_prefix(1);
  return v;
}
absl::StatusOr<std::string> Reader::Bytes() {
  absl::StatusOr<uint32_t> n = U32();
  if (!n.ok()) return n.status();
  if (in_.size() < *n) return Short("a string");
  std::string s(in_.substr(0, *n));
  in_.remove_prefix(*n);
  return s;
}
absl::StatusOr<uint32_t> Reader::Count(size_t min_item_bytes, size_t max) {
  absl::StatusOr<uint32_t> n = U32();
  if (!n.ok()) return n.status();
  if (*n > max || static_cast<uint64_t>(*n) * min_item_bytes > in_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("objstore: bad item count ", *n));
  }
  return n;
}
absl::Status Reader::End() const {
  if (!in_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("objstore: ", in_.size(), " trailing bytes"));
  }
  return absl::OkStatus();
}

std::string EncodeStores(uint64_t epoch, const std::vector<Store>& stores) {
  Writer w;
  w.U64(epoch).U32(static_cast<uint32_t>(stores.size()));
  for (const Store& s : stores) w.Bytes(s.oid).U64(s.serial).Bytes(s.data);
  return w.Take();
}

absl::Status DecodeStores(std::string_view payload, uint64_t& epoch, std::vector<Store>& stores) {
  Reader r(payload);
  absl::StatusOr<uint64_t> e = r.U64();
  if (!e.ok()) return e.status();
  epoch = *e;
  absl::StatusOr<uint32_t> n = r.Count(4 + 8 + 4, kMaxStoresPerCommit);
  if (!n.ok()) return n.status();
  stores.clear();
  for (uint32_t i = 0; i < *n; ++i) {
    Store s;
    absl::StatusOr<std::string> oid = r.Bytes();
    if (!oid.ok()) return oid.status();
    absl::StatusOr<uint64_t> serial = r.U64();
    if (!serial.ok()) return serial.status();
    absl::StatusOr<std::string> data = r.Bytes();
    if (!data.ok()) return data.status();
    if (absl::Status v = ValidateOid(*oid); !v.ok()) return v;
    stores.push_back({std::move(*oid), *serial, std::move(*data)});
  }
  return r.End();
}

std::string EncodeInvalidation(const Invalidation& inv) {
  Writer w;
  w.U64(inv.epoch).U64(inv.tid).U32(static_cast<uint32_t>(inv.oids.size()));
  for (const std::string& oid : inv.oids) w.Bytes(oid);
  return w.Take();
}

namespace {
absl::StatusOr<Invalidation> ReadInvalidation(Reader& r) {
  Invalidation inv;
  absl::StatusOr<uint64_t> epoch = r.U64();
  if (!epoch.ok()) return epoch.status();
  absl::StatusOr<uint64_t> tid = r.U64();
  if (!tid.ok()) return tid.status();
  absl::StatusOr<uint32_t> n = r.Count(4, SIZE_MAX);
  if (!n.ok()) return n.status();
  inv.epoch = *epoch;
  inv.tid = *tid;
  for (uint32_t i = 0; i < *n; ++i) {
    absl::StatusOr<std::string> oid = r.Bytes();
    if (!oid.ok()) return oid.status();
    inv.oids.push_back(std::move(*oid));
  }
  return inv;
}
}  // namespace

absl::StatusOr<Invalidation> DecodeInvalidation(std::string_view payload) {
  Reader r(payload);
  absl::StatusOr<Invalidation> inv = ReadInvalidation(r);
  if (!inv.ok()) return inv.status();
  if (absl::Status s = r.End(); !s.ok()) return s;
  return inv;
}

absl::StatusOr<std::vector<Invalidation>> DecodeInvalidations(std::string_view payload) {
  Reader r(payload);
  std::vector<Invalidation> out;
  do {
    absl::StatusOr<Invalidation> inv = ReadInvalidation(r);
    if (!inv.ok()) return inv.status();
    out.push_back(std::move(*inv));
  } while (!r.done());
  return out;
}

std::string ConflictMessage(const std::vector<std::string>& oids) {
  return absl::StrCat("conflict: ", absl::StrJoin(oids, ","));
}

std::vector<std::string> ConflictOids(const absl::Status& status) {
  std::vector<std::string> out;
  if (status.code() != absl::StatusCode::kAborted) return out;
  absl::string_view m = status.message();
  if (!absl::ConsumePrefix(&m, "conflict: ")) return out;
  for (absl::string_view oid : absl::StrSplit(m, ',', absl::SkipEmpty())) out.emplace_back(oid);
  return out;
}

}  // namespace netlayer::objstore
