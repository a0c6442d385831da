#include "netlayer/history/transactions.h"

#include <gtest/gtest.h>

namespace netlayer::history {
namespace {

class Builder {
 public:
  Builder& Load(int64_t p, std::string key, int64_t version, Json data, int64_t at) {
    Operation op = Base(p, "load", std::move(key), at);
    op.result = Json{{"version", version}, {"data", std::move(data)}};
    ops_.push_back(std::move(op));
    return *this;
  }
  Builder& Commit(int64_t p, Json reads, Json writes, Outcome outcome, int64_t tid, int64_t at) {
    Operation op = Base(p, "commit", "", at);
    op.value = Json{{"reads", std::move(reads)}, {"writes", std::move(writes)}};
    op.outcome = outcome;
    if (outcome == Outcome::kOk) op.result = Json{{"version", tid}};
    if (outcome == Outcome::kInfo) op.complete = kNever;
    ops_.push_back(std::move(op));
    return *this;
  }
  Builder& Sync(int64_t p, std::string scope, int64_t version, int64_t at) {
    Operation op = Base(p, "sync", "", at);
    op.value = Json{{"scope", std::move(scope)}};
    op.result = Json{{"version", version}};
    op.complete = at;
    ops_.push_back(std::move(op));
    return *this;
  }
  std::vector<Operation> ops() const { return ops_; }

 private:
  Operation Base(int64_t p, std::string f, std::string key, int64_t at) {
    Operation op;
    op.index = ops_.size();
    op.process = p;
    op.f = std::move(f);
    op.key = std::move(key);
    op.outcome = Outcome::kOk;
    op.invoke = at;
    op.complete = at + 5;
    return op;
  }
  std::vector<Operation> ops_;
};

TEST(Transactions, SerialHistoryPasses) {
  Builder b;
  b.Load(1, "e1/x", 0, nullptr, 0)
      .Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 10)
      .Load(2, "e1/x", 1, "a", 20)
      .Commit(2, {{"e1/x", 1}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 30)
      .Load(1, "e1/x", 2, "b", 40);
  auto r = CheckTransactions(b.ops());
  EXPECT_TRUE(r.ok()) << r.Report();
  EXPECT_EQ(r.committed, 2u);
}

TEST(Transactions, LostUpdateIsACycle) {
  Builder b;
  // Both read x at 0 and wrote it: the second overwrote the first without seeing it.
  b.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Commit(2, {{"e1/x", 0}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 10);
  auto r = CheckTransactions(b.ops());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.Report().find("not serializable"), std::string::npos) << r.Report();
  EXPECT_NE(r.Report().find("-rw e1/x->"), std::string::npos) << r.Report();
  EXPECT_NE(r.Report().find("-ww e1/x->"), std::string::npos) << r.Report();
}

TEST(Transactions, WriteSkewOverTwoKeysIsACycle) {
  Builder b;
  b.Commit(1, {{"e1/x", 0}, {"e1/y", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Commit(2, {{"e1/x", 0}, {"e1/y", 0}}, {{"e1/y", "b"}}, Outcome::kOk, 2, 10);
  EXPECT_FALSE(CheckTransactions(b.ops()).ok());
}

TEST(Transactions, StaleReadAfterObservingANewerVersion) {
  Builder b;
  // p2 keeps x at 1 in its cache across a reconnect that missed x's version 2; its sync says
  // it has seen e1 as of version 2, then it serves 1.
  b.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Load(2, "e1/x", 1, "a", 10)
      .Commit(1, {{"e1/x", 1}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 20)
      .Sync(2, "e1", 2, 30)
      .Load(2, "e1/x", 1, "a", 40);
  auto r = CheckTransactions(b.ops());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.Report().find("stale read"), std::string::npos) << r.Report();
  // Without the sync (it had seen nothing newer) the same load is allowed: a cache may lag.
  Builder c;
  c.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Load(2, "e1/x", 1, "a", 10)
      .Commit(1, {{"e1/x", 1}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 20)
      .Load(2, "e1/x", 1, "a", 40);
  EXPECT_TRUE(CheckTransactions(c.ops()).ok());
  // Monotonic reads: after loading 2, loading 1 again is stale.
  Builder d;
  d.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Commit(1, {{"e1/x", 1}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 20)
      .Load(2, "e1/x", 2, "b", 30)
      .Load(2, "e1/x", 1, "a", 40);
  EXPECT_FALSE(CheckTransactions(d.ops()).ok());
  // Scopes are separate tid sequences: e2's version 5 says nothing about e1.
  Builder e;
  e.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kOk, 1, 0)
      .Commit(1, {{"e1/x", 1}}, {{"e1/x", "b"}}, Outcome::kOk, 2, 20)
      .Load(2, "e1/x", 1, "a", 25)
      .Sync(2, "e2", 5, 30)
      .Load(2, "e1/x", 1, "a", 40);
  EXPECT_TRUE(CheckTransactions(e.ops()).ok());
}

TEST(Transactions, GarbageReadAndUnknownCommits) {
  Builder b;
  b.Load(2, "e1/x", 7, "z", 10);
  auto r = CheckTransactions(b.ops());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.Report().find("no commit wrote"), std::string::npos) << r.Report();
  // An unknown commit seen by a load: it committed, at the version the load names.
  Builder c;
  c.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kInfo, 0, 0)
      .Load(2, "e1/x", 3, "a", 50)
      .Commit(2, {{"e1/x", 3}}, {{"e1/x", "b"}}, Outcome::kOk, 4, 60);
  auto rc = CheckTransactions(c.ops());
  EXPECT_TRUE(rc.ok()) << rc.Report();
  EXPECT_EQ(rc.committed, 2u);
  // A failed commit did not happen: its data cannot be read.
  Builder d;
  d.Commit(1, {{"e1/x", 0}}, {{"e1/x", "a"}}, Outcome::kFail, 0, 0).Load(2, "e1/x", 1, "a", 50);
  EXPECT_FALSE(CheckTransactions(d.ops()).ok());
}

}  // namespace
}  // namespace netlayer::history
