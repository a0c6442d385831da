// The recorder from many threads at once, on the real clock (posix clients).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "netlayer/history/history.h"

namespace netlayer::history {
namespace {

TEST(RecorderThreads, EveryOperationOnceWithOrderedTimes) {
  Recorder r([] { return absl::Now(); });
  constexpr int kThreads = 8;
  constexpr int kOps = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < kOps; ++i) {
        const uint64_t id = r.Invoke(t, "write", "x", i);
        if (i % 3 == 0) {
          r.Info(id);
        } else {
          r.Ok(id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::vector<Operation> ops = r.Snapshot();
  ASSERT_EQ(ops.size(), static_cast<size_t>(kThreads * kOps));
  std::vector<int> next(kThreads, 0);
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(ops[i].index, i);
    if (i > 0) {
      EXPECT_GT(ops[i].invoke, ops[i - 1].invoke);
    }
    // Each thread's operations in its own order.
    EXPECT_EQ(ops[i].value, next[ops[i].process]++);
    if (ops[i].outcome == Outcome::kOk) {
      EXPECT_GT(ops[i].complete, ops[i].invoke);
    }
  }
}

}  // namespace
}  // namespace netlayer::history
