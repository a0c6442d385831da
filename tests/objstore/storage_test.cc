// objstore::Storage (sans-I/O) and the wire codec: optimistic commits, conflicts naming every
// stale oid, the bounded invalidation log, epochs, malformed payloads.
#include "netlayer/objstore/storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "netlayer/objstore/wire.h"

namespace netlayer::objstore {
namespace {

using ::testing::ElementsAre;

TEST(StorageTest, CommitsAndConflictsNameEveryStaleOid) {
  Storage s(StorageOptions{.epoch = 7});
  ASSERT_EQ(*s.Commit(7, {{"a", 0, "a1"}, {"b", 0, "b1"}}), 1u);
  EXPECT_EQ(s.Load("a")->data, "a1");
  EXPECT_EQ(s.Load("a")->tid, 1u);
  EXPECT_EQ(s.Load("zz").status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(*s.Commit(7, {{"a", 1, "a2"}}), 2u);
  // b read at 1 is current, a read at 1 is stale, c must not exist: a and c conflict.
  auto conflict = s.Commit(7, {{"a", 1, "x"}, {"b", 1, "x"}, {"c", 3, "x"}});
  ASSERT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(ConflictOids(conflict.status()), ElementsAre("a", "c"));
  EXPECT_EQ(s.Load("b")->data, "b1") << "a failed commit writes nothing";
  EXPECT_EQ(s.last_tid(), 2u);
  // Another epoch's serials never match.
  EXPECT_EQ(s.Commit(6, {{"b", 1, "x"}}).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.Commit(7, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Commit(7, {{"d", 0, "1"}, {"d", 0, "2"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Commit(7, {{"bad oid", 0, "1"}}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StorageTest, InvalidatedSinceIsBoundedByTheLog) {
  Storage s(StorageOptions{.epoch = 1, .max_log = 3});
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(
        s.Commit(1, {{i % 2 ? "odd" : "even", i < 2 ? 0u : static_cast<uint64_t>(i - 1), "x"}})
            .ok());
  EXPECT_EQ(s.last_tid(), 5u);
  EXPECT_THAT(s.InvalidatedSince(1, 4).oids, ElementsAre("even"));
  EXPECT_THAT(s.InvalidatedSince(1, 2).oids, ElementsAre("even", "odd"));
  EXPECT_FALSE(s.InvalidatedSince(1, 2).too_old);
  EXPECT_TRUE(s.InvalidatedSince(1, 1).too_old) << "tid 2 fell out of the log";
  EXPECT_TRUE(s.InvalidatedSince(1, 5).oids.empty());
  EXPECT_TRUE(s.InvalidatedSince(2, 5).too_old) << "another epoch";
  EXPECT_TRUE(s.InvalidatedSince(1, 9).too_old) << "a tid from the future";
}

TEST(WireTest, RoundTripsAndRejectsMalformedPayloads) {
  const std::vector<Store> stores = {{"a", 3, "data"}, {"b", 0, ""}};
  uint64_t epoch = 0;
  std::vector<Store> decoded;
  ASSERT_TRUE(DecodeStores(EncodeStores(9, stores), epoch, decoded).ok());
  EXPECT_EQ(epoch, 9u);
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0].data, "data");
  std::string payload = EncodeStores(9, stores);
  for (size_t cut = 0; cut < payload.size(); ++cut) {
    EXPECT_FALSE(DecodeStores(payload.substr(0, cut), epoch, decoded).ok()) << cut;
  }
  EXPECT_FALSE(DecodeStores(payload + "x", epoch, decoded).ok());
  // A count that the payload cannot hold is refused before anything is allocated.
  EXPECT_FALSE(DecodeStores(Writer().U64(1).U32(0xffffffff).Take(), epoch, decoded).ok());
  Invalidation inv{2, 5, {"a", "b"}};
  auto back = DecodeInvalidation(EncodeInvalidation(inv));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->tid, 5u);
  EXPECT_THAT(back->oids, ElementsAre("a", "b"));
  // A group commit's push: several transactions back to back; every cut but the boundary fails.
  const std::string one = EncodeInvalidation(inv);
  const std::string two = one + EncodeInvalidation({2, 6, {"c"}});
  auto group = DecodeInvalidations(two);
  ASSERT_TRUE(group.ok());
  ASSERT_EQ(group->size(), 2u);
  EXPECT_EQ((*group)[0].tid, 5u);
  EXPECT_EQ((*group)[1].tid, 6u);
  EXPECT_THAT((*group)[1].oids, ElementsAre("c"));
  for (size_t cut = 0; cut < two.size(); ++cut) {
    EXPECT_EQ(DecodeInvalidations(two.substr(0, cut)).ok(), cut == one.size()) << cut;
  }
  EXPECT_FALSE(DecodeInvalidation(two).ok());  // the single decoder takes exactly one
}

}  // namespace
}  // namespace netlayer::objstore
