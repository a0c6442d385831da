#include "netlayer/history/linearizability.h"

#include <gtest/gtest.h>

namespace netlayer::history {
namespace {

// An operation on `key` by `p` over [invoke, complete] (complete ignored for info).
Operation Op(int64_t p, std::string f, std::string key, Json value, Outcome outcome, Json result,
             int64_t invoke, int64_t complete) {
  Operation op;
  op.process = p;
  op.f = std::move(f);
  op.key = std::move(key);
  op.value = std::move(value);
  op.outcome = outcome;
  op.result = std::move(result);
  op.invoke = invoke;
  op.complete = outcome == Outcome::kInfo ? kNever : complete;
  return op;
}
constexpr Outcome kOk = Outcome::kOk;
constexpr Outcome kFail = Outcome::kFail;
constexpr Outcome kInfo = Outcome::kInfo;

std::vector<Operation> Indexed(std::vector<Operation> ops) {
  for (size_t i = 0; i < ops.size(); ++i) ops[i].index = i;
  return ops;
}

LinearizabilityResult Check(const Model& m, std::vector<Operation> ops) {
  return CheckLinearizable(m, Indexed(std::move(ops)));
}

TEST(Register, SequentialHistoryIsLinearizable) {
  auto m = RegisterModel();
  auto r = Check(
      *m,
      {Op(1, "write", "", 1, kOk, nullptr, 0, 10), Op(2, "read", "", nullptr, kOk, 1, 20, 30),
       Op(1, "write", "", 2, kOk, nullptr, 40, 50), Op(2, "read", "", nullptr, kOk, 2, 60, 70)});
  EXPECT_TRUE(r.ok()) << r.Report();
  EXPECT_EQ(r.operations, 4u);
}

TEST(Register, StaleReadIsAViolationNamingTheRead) {
  auto m = RegisterModel();
  auto r = Check(
      *m, {Op(1, "write", "", 1, kOk, nullptr, 0, 10), Op(1, "write", "", 2, kOk, nullptr, 20, 30),
           Op(2, "read", "", nullptr, kOk, 1, 40, 50)});
  ASSERT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  ASSERT_EQ(r.prefix.size(), 2u);
  EXPECT_EQ(r.prefix[1].value, 2);
  EXPECT_EQ(r.states.back(), "2");
  ASSERT_FALSE(r.unplaced.empty());
  EXPECT_EQ(r.unplaced[0].f, "read");
  EXPECT_NE(r.Report().find("#2 p2 read -> ok 1 [0.000000040s, 0.000000050s]"), std::string::npos)
      << r.Report();
}

TEST(Register, ConcurrentReadMaySeeEitherValue) {
  auto m = RegisterModel();
  EXPECT_TRUE(Check(*m, {Op(1, "write", "", 1, kOk, nullptr, 0, 100),
                         Op(2, "read", "", nullptr, kOk, nullptr, 10, 20),
                         Op(3, "read", "", nullptr, kOk, 1, 30, 40)})
                  .ok());
  // But not go back: 1 then null, both within the write.
  EXPECT_FALSE(Check(*m, {Op(1, "write", "", 1, kOk, nullptr, 0, 100),
                          Op(2, "read", "", nullptr, kOk, 1, 10, 20),
                          Op(3, "read", "", nullptr, kOk, nullptr, 30, 40)})
                   .ok());
}

TEST(Register, LostUpdateOfTwoCompareAndSets) {
  auto m = RegisterModel();
  // Both swapped from 0: one of them did not see the other's write.
  auto r = Check(*m, {Op(1, "write", "", 0, kOk, nullptr, 0, 10),
                      Op(1, "cas", "", Json::array({0, 1}), kOk, nullptr, 20, 30),
                      Op(2, "cas", "", Json::array({0, 2}), kOk, nullptr, 40, 50)});
  EXPECT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  // A failed cas did not happen.
  EXPECT_TRUE(Check(*m, {Op(1, "write", "", 0, kOk, nullptr, 0, 10),
                         Op(1, "cas", "", Json::array({0, 1}), kOk, nullptr, 20, 30),
                         Op(2, "cas", "", Json::array({0, 2}), kFail, nullptr, 40, 50),
                         Op(2, "read", "", nullptr, kOk, 1, 60, 70)})
                  .ok());
}

TEST(Register, UnknownWriteMayTakeEffectLaterOrNever) {
  auto m = RegisterModel();
  // Seen long after its invocation.
  EXPECT_TRUE(Check(*m, {Op(1, "write", "", 1, kInfo, nullptr, 0, 0),
                         Op(2, "read", "", nullptr, kOk, nullptr, 10, 20),
                         Op(2, "read", "", nullptr, kOk, 1, 1000, 1010)})
                  .ok());
  // Never seen.
  EXPECT_TRUE(Check(*m, {Op(1, "write", "", 1, kInfo, nullptr, 0, 0),
                         Op(2, "read", "", nullptr, kOk, nullptr, 1000, 1010)})
                  .ok());
  // It takes effect once: not 1, then null, then 1 again.
  EXPECT_FALSE(Check(*m, {Op(1, "write", "", 1, kInfo, nullptr, 0, 0),
                          Op(2, "read", "", nullptr, kOk, 1, 10, 20),
                          Op(2, "read", "", nullptr, kOk, nullptr, 30, 40)})
                   .ok());
  // Not before it was invoked.
  EXPECT_FALSE(Check(*m, {Op(2, "read", "", nullptr, kOk, 1, 10, 20),
                          Op(1, "write", "", 1, kInfo, nullptr, 30, 0)})
                   .ok());
  // A read whose result is unknown constrains nothing.
  EXPECT_TRUE(Check(*m, {Op(2, "read", "", nullptr, kInfo, nullptr, 0, 0),
                         Op(1, "write", "", 1, kOk, nullptr, 10, 20)})
                  .ok());
}

TEST(Kv, PartitionsByKeyAndNamesTheFailingKey) {
  auto m = KvModel();
  auto r = Check(
      *m, {Op(1, "write", "a", 1, kOk, nullptr, 0, 10), Op(2, "write", "b", 5, kOk, nullptr, 0, 10),
           Op(3, "read", "a", nullptr, kOk, 1, 20, 30),
           Op(3, "read", "b", nullptr, kOk, nullptr, 40, 50)});
  ASSERT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  EXPECT_EQ(r.parts, 2u);
  EXPECT_EQ(r.key, "b");
  EXPECT_EQ(r.unplaced[0].key, "b");
  // The register model sees one register: the same history is a violation there too, a write
  // of 5 then a read of 1 ("a") is not.
  EXPECT_TRUE(Check(*m, {Op(1, "write", "a", 1, kOk, nullptr, 0, 10),
                         Op(2, "write", "b", 5, kOk, nullptr, 0, 10),
                         Op(3, "read", "a", nullptr, kOk, 1, 20, 30),
                         Op(3, "read", "b", nullptr, kOk, 5, 40, 50)})
                  .ok());
}

TEST(Mutex, TokensGrowAndFencedWritesFollowThem) {
  auto m = MutexModel();
  EXPECT_TRUE(Check(*m, {Op(1, "acquire", "l", nullptr, kOk, 10, 0, 10),
                         Op(1, "acquire", "l", nullptr, kOk, 10, 20, 30),  // renewal
                         Op(1, "write", "l", 10, kOk, "accepted", 40, 50),
                         Op(2, "acquire", "l", nullptr, kOk, 20, 60, 70),  // lease ran out
                         Op(2, "write", "l", 20, kOk, "accepted", 80, 90),
                         Op(1, "write", "l", 10, kOk, "refused", 100, 110)})
                  .ok());
  // A later grant with a smaller token.
  EXPECT_FALSE(Check(*m, {Op(1, "acquire", "l", nullptr, kOk, 20, 0, 10),
                          Op(2, "acquire", "l", nullptr, kOk, 10, 20, 30)})
                   .ok());
  // The storage accepted an older token after a newer one.
  auto r = Check(*m, {Op(1, "acquire", "l", nullptr, kOk, 10, 0, 10),
                      Op(2, "acquire", "l", nullptr, kOk, 20, 20, 30),
                      Op(2, "write", "l", 20, kOk, "accepted", 40, 50),
                      Op(1, "write", "l", 10, kOk, "accepted", 60, 70)});
  EXPECT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  // Another holder's token while the first one's renewal shows it still held it.
  EXPECT_FALSE(Check(*m, {Op(1, "acquire", "l", nullptr, kOk, 10, 0, 10),
                          Op(2, "acquire", "l", nullptr, kOk, 20, 20, 30),
                          Op(1, "acquire", "l", nullptr, kOk, 10, 40, 50)})
                   .ok());
  // An unknown grant: a token we never saw may have been taken.
  EXPECT_TRUE(Check(*m, {Op(1, "acquire", "l", nullptr, kInfo, nullptr, 0, 0),
                         Op(2, "acquire", "l", nullptr, kOk, 5, 20, 30)})
                  .ok());
}

TEST(Queue, FifoOrder) {
  auto m = QueueModel();
  EXPECT_TRUE(Check(*m, {Op(1, "enqueue", "", 1, kOk, nullptr, 0, 10),
                         Op(1, "enqueue", "", 2, kOk, nullptr, 20, 30),
                         Op(2, "dequeue", "", nullptr, kOk, 1, 40, 50),
                         Op(2, "dequeue", "", nullptr, kOk, 2, 60, 70),
                         Op(2, "dequeue", "", nullptr, kOk, nullptr, 80, 90)})
                  .ok());
  EXPECT_FALSE(Check(*m, {Op(1, "enqueue", "", 1, kOk, nullptr, 0, 10),
                          Op(1, "enqueue", "", 2, kOk, nullptr, 20, 30),
                          Op(2, "dequeue", "", nullptr, kOk, 2, 40, 50)})
                   .ok());
  // Concurrent enqueues may be ordered either way.
  EXPECT_TRUE(Check(*m, {Op(1, "enqueue", "", 1, kOk, nullptr, 0, 30),
                         Op(3, "enqueue", "", 2, kOk, nullptr, 10, 20),
                         Op(2, "dequeue", "", nullptr, kOk, 2, 40, 50)})
                  .ok());
  // An unknown dequeue may have taken the head.
  EXPECT_TRUE(Check(*m, {Op(1, "enqueue", "", 1, kOk, nullptr, 0, 10),
                         Op(1, "enqueue", "", 2, kOk, nullptr, 20, 30),
                         Op(3, "dequeue", "", nullptr, kInfo, nullptr, 35, 0),
                         Op(2, "dequeue", "", nullptr, kOk, 2, 40, 50)})
                  .ok());
}

TEST(UserModel, CounterWithItsOwnStepFunction) {
  ModelFunctions f;
  f.name = "counter";
  f.init = "0";
  f.step = [](const State& s, const Operation& op) -> std::optional<State> {
    const int n = std::stoi(s);
    if (op.f == "inc") return std::to_string(n + 1);
    if (op.f == "read" && op.result == n) return s;
    return std::nullopt;
  };
  auto m = MakeModel(f);
  EXPECT_TRUE(Check(*m, {Op(1, "inc", "", nullptr, kOk, nullptr, 0, 100),
                         Op(2, "inc", "", nullptr, kOk, nullptr, 10, 20),
                         Op(3, "read", "", nullptr, kOk, 1, 30, 40),
                         Op(3, "read", "", nullptr, kOk, 2, 110, 120)})
                  .ok());
  auto r = Check(*m, {Op(1, "inc", "", nullptr, kOk, nullptr, 0, 10),
                      Op(3, "read", "", nullptr, kOk, 0, 30, 40)});
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.model, "counter");
}

TEST(Search, ManyConcurrentOperationsWithABudget) {
  auto m = RegisterModel();
  std::vector<Operation> ops;
  // 30 writes all concurrent, then a read of the last-invoked value: linearizable; the cache
  // keeps the search small.
  for (int i = 0; i < 30; ++i) ops.push_back(Op(i, "write", "", i, kOk, nullptr, i, 1000));
  ops.push_back(Op(99, "read", "", nullptr, kOk, 17, 2000, 2010));
  EXPECT_TRUE(Check(*m, ops).ok());
  CheckOptions tiny;
  tiny.max_steps = 5;
  EXPECT_EQ(CheckLinearizable(*m, Indexed(ops), tiny).verdict, Verdict::kUnknown);
  EXPECT_TRUE(BuiltinModel("kv").ok());
  EXPECT_FALSE(BuiltinModel("nope").ok());
}

}  // namespace
}  // namespace netlayer::history
