#include "netlayer/history/history.h"

#include <gtest/gtest.h>

namespace netlayer::history {
namespace {

TEST(Recorder, RecordsOutcomesWithStrictlyIncreasingTimes) {
  absl::Time now = absl::FromUnixSeconds(100);
  Recorder r([&] { return now; });
  const uint64_t a = r.Invoke(1, "write", "x", 3);
  const uint64_t b = r.Invoke(2, "read", "x");
  now += absl::Milliseconds(5);
  r.Ok(a);
  r.Info(b, "timeout");
  const uint64_t c = r.Invoke(1, "cas", "x", Json::array({3, 4}));
  r.Fail(c, "conflict");
  const uint64_t d = r.Invoke(3, "read", "x");
  std::vector<Operation> ops = r.Snapshot();
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].outcome, Outcome::kOk);
  EXPECT_EQ(ops[0].invoke, absl::ToUnixNanos(absl::FromUnixSeconds(100)));
  EXPECT_EQ(ops[1].invoke, ops[0].invoke + 1);  // the clock did not move: +1 ns
  EXPECT_EQ(ops[0].complete, absl::ToUnixNanos(now));
  EXPECT_EQ(ops[1].outcome, Outcome::kInfo);
  EXPECT_EQ(ops[1].complete, kNever);
  EXPECT_EQ(ops[2].outcome, Outcome::kFail);
  EXPECT_EQ(ops[2].result, "conflict");
  EXPECT_EQ(ops[3].index, d);
  EXPECT_EQ(ops[3].outcome, Outcome::kInfo);  // never completed
}

TEST(JsonLines, RoundTrips) {
  absl::Time now = absl::FromUnixSeconds(1);
  Recorder r([&] { return now; });
  const uint64_t a = r.Invoke(7, "commit", "", Json{{"reads", {{"e1/o1", 0}}}});
  r.Ok(a, Json{{"version", 4}});
  const uint64_t b = r.Invoke(8, "read", "k");
  r.Info(b);
  const std::string text = ToJsonLines(r.Snapshot());
  absl::StatusOr<std::vector<Operation>> back = FromJsonLines(text);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].process, 7);
  EXPECT_EQ((*back)[0].value["reads"]["e1/o1"], 0);
  EXPECT_EQ((*back)[0].result["version"], 4);
  EXPECT_EQ((*back)[1].complete, kNever);
  EXPECT_EQ(ToJsonLines(*back), text);
}

TEST(JsonLines, NamesTheBadLine) {
  auto r = FromJsonLines("{\"process\":1,\"f\":\"read\",\"type\":\"ok\",\"invoke\":1}\nnope\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status();
  auto t = FromJsonLines("{\"process\":1,\"f\":\"read\",\"type\":\"maybe\",\"invoke\":1}\n");
  EXPECT_FALSE(t.ok());
}

}  // namespace
}  // namespace netlayer::history
