// The transaction log's format (objstore/log.h): records round-trip; a scan stops at a torn or
// corrupt tail wherever it is cut; Storage's two-step commit (Prepare, Apply, AbortPending).
#include "netlayer/objstore/log.h"

#include <string>

#include "gtest/gtest.h"
#include "netlayer/objstore/storage.h"

namespace netlayer::objstore {
namespace {

TEST(Crc32cTest, KnownValue) {
  // The CRC-32C check value (RFC 3720 B.4: "123456789").
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
}

std::string ThreeRecords(std::vector<size_t>* ends) {
  std::string log = EncodeLogHeader(42);
  ends->push_back(log.size());
  log += EncodeLogRecord(1, {Store{"a", 0, "one"}});
  ends->push_back(log.size());
  log += EncodeLogRecord(2, {Store{"a", 1, "two"}, Store{"b", 0, std::string(700, 'x')}});
  ends->push_back(log.size());
  log += EncodeLogRecord(3, {Store{"c", 0, ""}});
  ends->push_back(log.size());
  return log;
}

TEST(LogTest, RoundTrip) {
  std::vector<size_t> ends;
  const std::string log = ThreeRecords(&ends);
  absl::StatusOr<ScannedLog> scanned = ScanLog(log);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_TRUE(scanned->has_header);
  EXPECT_EQ(scanned->epoch, 42u);
  ASSERT_EQ(scanned->records.size(), 3u);
  EXPECT_EQ(scanned->records[1].tid, 2u);
  EXPECT_EQ(scanned->records[1].stores[1].data, std::string(700, 'x'));
  EXPECT_FALSE(scanned->torn());
  EXPECT_EQ(scanned->valid_bytes, log.size());
}

TEST(LogTest, EveryCutKeepsExactlyTheCompleteRecords) {
  std::vector<size_t> ends;
  const std::string log = ThreeRecords(&ends);
  for (size_t cut = 0; cut <= log.size(); ++cut) {
    absl::StatusOr<ScannedLog> scanned = ScanLog(std::string_view(log).substr(0, cut));
    ASSERT_TRUE(scanned.ok()) << cut;
    size_t complete = 0;
    for (size_t i = 1; i < ends.size(); ++i) complete += ends[i] <= cut ? 1 : 0;
    EXPECT_EQ(scanned->records.size(), complete) << cut;
    EXPECT_EQ(scanned->has_header, cut >= kLogHeaderBytes) << cut;
    const size_t valid = cut < kLogHeaderBytes ? 0 : ends[complete];
    EXPECT_EQ(scanned->valid_bytes, valid) << cut;
    EXPECT_EQ(scanned->torn(), valid != cut) << cut;
  }
}

TEST(LogTest, CorruptionStopsTheScanThere) {
  std::vector<size_t> ends;
  std::string log = ThreeRecords(&ends);
  // A flipped byte inside record 2's body: records 2 and 3 are the tail.
  log[ends[1] + 12] ^= 0x01;
  absl::StatusOr<ScannedLog> scanned = ScanLog(log);
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(scanned->records.size(), 1u);
  EXPECT_EQ(scanned->valid_bytes, ends[1]);
  EXPECT_NE(scanned->tail_problem.find("checksum"), std::string::npos) << scanned->tail_problem;
  // Zeros where a record should be (pages lost after a failed sync).
  std::string zeros = EncodeLogHeader(1) + std::string(600, '\0');
  scanned = ScanLog(zeros);
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(scanned->records.size(), 0u);
  EXPECT_EQ(scanned->valid_bytes, kLogHeaderBytes);
  // A tid gap ends the valid log too.
  std::string gap = EncodeLogHeader(1) + EncodeLogRecord(1, {Store{"a", 0, "x"}}) +
                    EncodeLogRecord(3, {Store{"a", 1, "y"}});
  scanned = ScanLog(gap);
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(scanned->records.size(), 1u);
  // A bad header is not a torn tail: the scan refuses it.
  std::string bad = log;
  bad[3] = 'X';
  EXPECT_EQ(ScanLog(bad).status().code(), absl::StatusCode::kDataLoss);
}

TEST(StorageTwoStepTest, PreparedStoresConflictButStayInvisibleUntilApplied) {
  Storage storage;
  absl::StatusOr<uint64_t> t1 = storage.Prepare(1, {Store{"a", 0, "x"}});
  ASSERT_TRUE(t1.ok());
  EXPECT_EQ(*t1, 1u);
  EXPECT_EQ(storage.Load("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(storage.last_tid(), 0u);
  // A second transaction that read "a" as absent conflicts with the prepared one.
  EXPECT_EQ(storage.Prepare(1, {Store{"a", 0, "y"}}).status().code(), absl::StatusCode::kAborted);
  // One that builds on the prepared version is fine, and gets the next tid.
  absl::StatusOr<uint64_t> t2 = storage.Prepare(1, {Store{"a", 1, "z"}, Store{"b", 0, "w"}});
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t2, 2u);
  EXPECT_EQ(storage.pending(), 2u);
  storage.Apply(1, {Store{"a", 0, "x"}});
  EXPECT_EQ(storage.Load("a")->data, "x");
  storage.Apply(2, {Store{"a", 1, "z"}, Store{"b", 0, "w"}});
  EXPECT_EQ(storage.Load("a")->data, "z");
  EXPECT_EQ(storage.last_tid(), 2u);
  EXPECT_EQ(storage.pending(), 0u);
  // Aborted: the tid is given out again and the prepared stores are forgotten.
  ASSERT_TRUE(storage.Prepare(1, {Store{"c", 0, "q"}}).ok());
  storage.AbortPending();
  absl::StatusOr<uint64_t> t3 = storage.Prepare(1, {Store{"c", 0, "r"}});
  ASSERT_TRUE(t3.ok());
  EXPECT_EQ(*t3, 3u);
}

TEST(StorageTwoStepTest, MaxObjectsCountsPreparedNewObjects) {
  StorageOptions options;
  options.max_objects = 2;
  Storage storage(options);
  ASSERT_TRUE(storage.Prepare(1, {Store{"a", 0, "x"}}).ok());
  ASSERT_TRUE(storage.Prepare(1, {Store{"b", 0, "x"}}).ok());
  EXPECT_EQ(storage.Prepare(1, {Store{"c", 0, "x"}}).status().code(),
            absl::StatusCode::kResourceExhausted);
  storage.Apply(1, {Store{"a", 0, "x"}});
  storage.Apply(2, {Store{"b", 0, "x"}});
  EXPECT_EQ(storage.Prepare(1, {Store{"c", 0, "x"}}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(storage.Prepare(1, {Store{"a", 1, "y"}}).ok());
}

}  // namespace
}  // namespace netlayer::objstore
