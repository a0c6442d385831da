// GoogleTest integration for scenarios: run one over the seeds the environment asks for
// (NETLAYER_SEED=n, NETLAYER_SEEDS=a..b) or a default range, and on failure print the exact
// command that replays it.
//
//   NETLAYER_SCENARIO_TEST(MyScenarios, Echo, "echo", [] { return std::make_unique<Echo>(); },
//                          (netlayer::sim::SeedRange{1, 200}));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "netlayer/sim/scenario.h"

namespace netlayer::sim {

// Runs `make()` once per seed; adds one gtest failure per failing seed (its full report, with
// the replay command), stopping after `max_failures` failures.
inline void RunScenarioOverSeeds(const std::string& name,
                                 const std::function<std::unique_ptr<Scenario>()>& make,
                                 SeedRange fallback, size_t max_failures = 3) {
  absl::StatusOr<SeedRange> seeds = SeedsFromEnvironment(fallback);
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  size_t failures = 0;
  for (uint64_t seed = seeds->first; seed <= seeds->last; ++seed) {
    ScenarioOptions options;
    options.seed = seed;
    ScenarioResult result = RunScenario(name, make(), options);
    if (!result.passed) {
      ADD_FAILURE() << result.Report() << "\n  or: NETLAYER_SEED=" << seed << " "
                    << testing::internal::GetArgvs()[0] << " --gtest_filter="
                    << testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()
                    << "." << testing::UnitTest::GetInstance()->current_test_info()->name();
      if (++failures >= max_failures) return;
    }
    if (seed == UINT64_MAX) break;
  }
}

}  // namespace netlayer::sim

#define NETLAYER_SCENARIO_TEST(suite, test, name, make, fallback_seeds) \
  TEST(suite, test) { ::netlayer::sim::RunScenarioOverSeeds(name, make, fallback_seeds); }
