// The store's unit test and its scenario over seeds, in one GoogleTest binary under
// netlayer::guard (no socket, no thread: the simulator is all it needs).
//   NETLAYER_SEEDS=1..500 NETLAYER_JOBS=4 ./kv_test       more seeds, in 4 worker processes
//   NETLAYER_PLANT=lose-on-resize ./kv_test               prove the scenario catches the bug
#include <gtest/gtest.h>

#include "kv_scenario.h"
#include "kv_store.h"
#include "netlayer/sim/scenario_gtest.h"

namespace {

TEST(KvStore, NewerVersionsWin) {
  kv::KvStore store;
  store.Put("a", 2, "two");
  store.Put("a", 1, "one");  // late and older: ignored
  ASSERT_TRUE(store.Get("a").has_value());
  EXPECT_EQ(store.Get("a")->value, "two");
  for (int i = 0; i < 200; ++i) store.Put("k" + std::to_string(i), 1, "x");  // grows
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(store.Get("k" + std::to_string(i))) << i;
}

NETLAYER_SCENARIO_TEST(KvScenario, Seeds, "kv", kv::MakeKvScenario,
                       (netlayer::sim::SeedRange{1, 10}))

}  // namespace
