// The durable object server's transaction log (docs/OBJSTORE.md, "The transaction log"): one
// append-only file, a header, then one record per committed transaction. Sans-I/O: these
// functions encode and scan bytes; ObjectServer reads and writes the file through the Env's
// FileSystem.
//
//   header  "NLOSLOG1" (8 bytes) | epoch u64 | crc32c of the 16 bytes before it, u32   (20 bytes)
//   record  body length u32 | crc32c(body) u32 | body
//   body    tid u64 | count u32 | count x (oid: u32 length + bytes, serial u64,
//                                          data: u32 length + bytes)
// All integers big-endian; the body is EncodeStores(tid, stores) (wire.h). Tids are consecutive
// from 1. A record is valid if it is complete, its checksum matches, its body decodes (valid
// oids, no more than kMaxStoresPerCommit stores) and its tid follows the previous one.
//
// Scanning stops at the first invalid record: everything from there is the torn tail (a write
// cut short by a crash, power loss or a full disk), which recovery truncates before appending.
// A header that is incomplete is a log that was never used (the header is synced before the
// first commit); a complete header with a bad checksum is corruption the scan reports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "netlayer/objstore/wire.h"

namespace netlayer::objstore {

inline constexpr size_t kLogHeaderBytes = 20;
inline constexpr size_t kLogRecordHeaderBytes = 8;
// The largest body a scan accepts (a larger length field is a torn or corrupt record).
inline constexpr uint32_t kMaxLogRecordBody = uint32_t{1} << 30;

// CRC-32C (Castagnoli), as iSCSI, ext4 and LevelDB use it.
uint32_t Crc32c(std::string_view data);

std::string EncodeLogHeader(uint64_t epoch);
std::string EncodeLogRecord(uint64_t tid, const std::vector<Store>& stores);

struct LogRecord {
  uint64_t tid = 0;
  std::vector<Store> stores;
};

struct ScannedLog {
  bool has_header = false;  // false: an empty or never-used log (no complete header)
  uint64_t epoch = 0;
  std::vector<LogRecord> records;
  uint64_t valid_bytes = 0;  // header + valid records: where the torn tail starts
  uint64_t total_bytes = 0;
  std::string tail_problem;  // why the scan stopped before the end ("" if it did not)
  bool torn() const { return valid_bytes < total_bytes; }
};

// DataLoss if the header is complete but its magic or checksum is wrong.
absl::StatusOr<ScannedLog> ScanLog(std::string_view bytes);

}  // namespace netlayer::objstore
