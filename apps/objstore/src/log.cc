#include "netlayer/objstore/log.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace netlayer::objstore {
namespace {

constexpr char kMagic[] = "NLOSLOG1";

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string EncodeLogHeader(uint64_t epoch) {
  std::string out(kMagic, 8);
  out += Writer().U64(epoch).Take();
  PutU32(out, Crc32c(out));
  return out;
}

std::string EncodeLogRecord(uint64_t tid, const std::vector<Store>& stores) {
  const std::string body = EncodeStores(tid, stores);
  std::string out;
  out.reserve(kLogRecordHeaderBytes + body.size());
  PutU32(out, static_cast<uint32_t>(body.size()));
  PutU32(out, Crc32c(body));
  out += body;
  return out;
}

absl::StatusOr<ScannedLog> ScanLog(std::string_view bytes) {
  ScannedLog log;
  log.total_bytes = bytes.size();
  if (bytes.size() < kLogHeaderBytes) {
    if (!bytes.empty()) log.tail_problem = "an incomplete header (a log never used)";
    return log;
  }
  if (bytes.substr(0, 8) != std::string_view(kMagic, 8) ||
      GetU32(bytes.substr(16)) != Crc32c(bytes.substr(0, 16))) {
    return absl::DataLossError("objstore: the log's header is corrupt (not an objstore log?)");
  }
  log.has_header = true;
  log.epoch = GetU64(bytes.substr(8));
  uint64_t at = kLogHeaderBytes;
  uint64_t last_tid = 0;
  while (at < bytes.size()) {
    const std::string_view rest = bytes.substr(at);
    if (rest.size() < kLogRecordHeaderBytes) {
      log.tail_problem = absl::StrCat("an incomplete record header at byte ", at);
      break;
    }
    const uint32_t length = GetU32(rest);
    if (length > kMaxLogRecordBody || rest.size() - kLogRecordHeaderBytes < length) {
      log.tail_problem = absl::StrCat("an incomplete record at byte ", at);
      break;
    }
    const std::string_view body = rest.substr(kLogRecordHeaderBytes, length);
    if (GetU32(rest.substr(4)) != Crc32c(body)) {
      log.tail_problem = absl::StrCat("a checksum mismatch at byte ", at);
      break;
    }
    LogRecord record;
    if (absl::Status s = DecodeStores(body, record.tid, record.stores); !s.ok()) {
      log.tail_problem = absl::StrCat("an undecodable record at byte ", at, ": ", s.message());
      break;
    }
    bool valid_oids = !record.stores.empty();
    for (const Store& s : record.stores) valid_oids = valid_oids && ValidateOid(s.oid).ok();
    if (!valid_oids || record.tid != last_tid + 1) {
      log.tail_problem =
          absl::StrCat("record at byte ", at, " has tid ", record.tid, " after tid ", last_tid);
      break;
    }
    last_tid = record.tid;
    log.records.push_back(std::move(record));
    at += kLogRecordHeaderBytes + length;
  }
  log.valid_bytes = at;
  if (log.tail_problem.empty()) log.valid_bytes = bytes.size();
  return log;
}

}  // namespace netlayer::objstore
