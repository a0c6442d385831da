// GoogleTest integration for scenarios (include it only from test code; it needs
// find_package(GTest) and GTest::gtest). Runs a scenario over the seeds the environment asks for,
// or a default range; prints one summary line; on failure reports each failing seed with a
// one-line replay of that seed in this test binary.
//
//   NETLAYER_SCENARIO_TEST(KvScenario, Sweep, "kv", [] { return std::make_unique<Kv>(); },
//                          (netlayer::sim::SeedRange{1, 200}));
//   // or, with options (a planted bug, how many failures to report in full):
//   TEST(KvScenario, CatchesLostUpdates) {
//     netlayer::sim::ScenarioTestOptions o;
//     o.seeds = {1, 50};
//     o.plant = "lose-update";
//     netlayer::sim::SeedsOutcome out = netlayer::sim::RunScenarioSeeds("kv", MakeKv, o);
//     EXPECT_GT(out.failed, 0u);
//   }
//
// Environment (docs/SCENARIOS.md):
//   NETLAYER_SEED=n      run only seed n. Wins over NETLAYER_SEEDS.
//   NETLAYER_SEEDS=a..b  run seeds a..b instead of the test's default range.
//   NETLAYER_PLANT=bug   plant `bug` (overrides ScenarioTestOptions::plant).
//   NETLAYER_JOBS=j      run the seeds in j worker processes (fresh copies of this test binary,
//                        started with posix_spawn, each running one slice of the seeds); the
//                        result (failures, combined hash) is the same as with one process.
//                        A worker reruns the whole test: with NETLAYER_JOBS, make one
//                        RunScenarioSeeds call per TEST (later ones do nothing in a worker).
//
// Success prints one line: "[ scenario ] kv: seeds 1..200 (200 runs, 2 jobs), 0 failed,
// combined hash 0123456789abcdef". A failure adds one gtest failure per failing seed (up to
// max_failures in full), ending with
//   replay: NETLAYER_SEED=17 ./kv_test --gtest_filter=KvScenario.Sweep
// (with NETLAYER_PLANT=bug in front when a bug was planted).
//
// Works under netlayer::guard: posix_spawn is not fork, and nothing here polls or starts a
// thread. Thread rules: call from the test's thread.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "netlayer/sim/scenario.h"

extern char** environ;

namespace netlayer::sim {

struct ScenarioTestOptions {
  // The seeds run when neither NETLAYER_SEED nor NETLAYER_SEEDS is set.
  SeedRange seeds{1, 100};
  // A bug to plant (the scenario's own names); NETLAYER_PLANT overrides it.
  std::string plant;
  // Failing seeds reported in full (each as one gtest failure); the rest are counted.
  size_t max_failures = 3;
  // Add gtest failures for failing seeds. A test that expects its planted bug to be caught sets
  // this false and checks SeedsOutcome itself.
  bool fail_test = true;
};

struct SeedsOutcome {
  SeedRange seeds;
  std::string plant;
  int jobs = 1;
  uint64_t runs = 0;
  uint64_t failed = 0;
  // Over every run's (seed, trace hash); the same for any NETLAYER_JOBS.
  CombinedHash hash;
  // The first failing seeds (up to max_failures), with full details; a run that crashed its
  // worker has passed == false and invariant "the run crashed ...".
  std::vector<ScenarioResult> failures;
  // "NETLAYER_SEED=17 ./kv_test --gtest_filter=Suite.Name" for `seed`.
  std::string ReplayCommand(uint64_t seed) const;
  // The one summary line.
  std::string Summary(const std::string& name) const;

  std::string test_replay_prefix;  // set by RunScenarioSeeds
};

namespace gtest_internal {

inline std::string CurrentTestFilter() {
  const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "*";
  return std::string(info->test_suite_name()) + "." + info->name();
}

inline std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : testing::internal::GetArgvs()[0];
}

// Worker mode: this process was started by a parent's RunScenarioSeeds to run one slice.
inline const char* WorkerOut() {
  const char* out = std::getenv("NETLAYER_WORKER_OUT");
  return out != nullptr && *out != '\0' ? out : nullptr;
}

inline bool SpawnWorker(const std::string& self, const std::string& filter, SeedRange slice,
                        const std::string& plant, const std::string& out_file, pid_t* pid) {
  std::vector<std::string> env_s;
  auto dropped = [](const std::string& kv) {
    for (const char* name : {"NETLAYER_SEED=", "NETLAYER_SEEDS=", "NETLAYER_JOBS=",
                             "NETLAYER_WORKER_OUT=", "NETLAYER_PLANT="}) {
      if (kv.rfind(name, 0) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!dropped(*e)) env_s.push_back(*e);
  }
  env_s.push_back("NETLAYER_SEEDS=" + std::to_string(slice.first) + ".." +
                  std::to_string(slice.last));
  env_s.push_back("NETLAYER_WORKER_OUT=" + out_file);
  if (!plant.empty()) env_s.push_back("NETLAYER_PLANT=" + plant);
  std::vector<std::string> argv_s = {self, "--gtest_filter=" + filter};
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawn(pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0;
}

}  // namespace gtest_internal

inline std::string SeedsOutcome::ReplayCommand(uint64_t seed) const {
  return test_replay_prefix + "NETLAYER_SEED=" + std::to_string(seed) + " " +
         testing::internal::GetArgvs()[0] +
         " --gtest_filter=" + gtest_internal::CurrentTestFilter();
}

inline std::string SeedsOutcome::Summary(const std::string& name) const {
  std::ostringstream out;
  out << "[ scenario ] " << name << ": seeds " << seeds.first << ".." << seeds.last << " (" << runs
      << " runs, " << jobs << (jobs == 1 ? " job" : " jobs") << ")"
      << (plant.empty() ? "" : ", planted " + plant) << ", " << failed << " failed, combined hash "
      << hash.Hex();
  return out.str();
}

// Runs `make()` over the seeds (environment, then options.seeds), in this process or in
// NETLAYER_JOBS workers; prints the summary line; with options.fail_test, adds one gtest
// failure per reported failing seed (its details and its replay line).
inline SeedsOutcome RunScenarioSeeds(const std::string& name,
                                     const std::function<std::unique_ptr<Scenario>()>& make,
                                     const ScenarioTestOptions& options) {
  SeedsOutcome outcome;
  absl::StatusOr<SeedRange> seeds = SeedsFromEnvironment(options.seeds);
  if (!seeds.ok()) {
    ADD_FAILURE() << seeds.status();
    return outcome;
  }
  outcome.seeds = *seeds;
  outcome.plant = options.plant;
  if (const char* p = std::getenv("NETLAYER_PLANT"); p != nullptr && *p != '\0') outcome.plant = p;
  if (!outcome.plant.empty()) outcome.test_replay_prefix = "NETLAYER_PLANT=" + outcome.plant + " ";
  auto run_one = [&](uint64_t seed) {
    ScenarioOptions o;
    o.seed = seed;
    o.planted_bug = outcome.plant;
    return RunScenario(name, make(), o);
  };

  if (const char* out_file = gtest_internal::WorkerOut()) {
    // A worker: every seed of the slice, one line each ("seed passed hash"), flushed as it
    // ends so a crash loses only the run it happened in. Only the test's first
    // RunScenarioSeeds call is the parent's (the worker reruns the whole test).
    static bool worked = false;
    if (std::exchange(worked, true)) return outcome;
    std::ofstream out(out_file, std::ios::app);
    for (uint64_t seed = outcome.seeds.first;; ++seed) {
      const ScenarioResult r = run_one(seed);
      out << seed << ' ' << (r.passed ? 1 : 0) << ' ' << r.trace_hash << std::endl;
      if (seed == outcome.seeds.last) break;
    }
    return outcome;
  }

  int jobs = 1;
  if (const char* j = std::getenv("NETLAYER_JOBS"); j != nullptr && *j != '\0') {
    jobs = std::max(1, std::min(256, std::atoi(j)));
  }
  jobs = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(jobs), outcome.seeds.size()));
  outcome.jobs = jobs;
  std::vector<uint64_t> failing;  // seeds, in order
  std::vector<std::pair<uint64_t, std::string>> crashed;
  if (jobs == 1) {
    for (uint64_t seed = outcome.seeds.first;; ++seed) {
      ScenarioResult r = run_one(seed);
      ++outcome.runs;
      outcome.hash.Add(seed, r.trace_hash);
      if (!r.passed) {
        ++outcome.failed;
        if (outcome.failures.size() < options.max_failures)
          outcome.failures.push_back(std::move(r));
      }
      if (seed == outcome.seeds.last) break;
    }
  } else {
    const std::string self = gtest_internal::SelfPath();
    const std::string filter = gtest_internal::CurrentTestFilter();
    char dir_template[] = "/tmp/netlayer-seeds.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return outcome;
    }
    const std::string dir = dir_template;
    std::vector<SeedRange> queue;
    for (int k = 1; k <= jobs; ++k) {
      if (auto slice = ShardOf(outcome.seeds, k, jobs)) queue.push_back(*slice);
    }
    int file_no = 0;
    while (!queue.empty()) {
      struct Running {
        SeedRange slice;
        std::string file;
        pid_t pid;
      };
      std::vector<Running> running;
      for (const SeedRange& slice : queue) {
        Running r{slice, dir + "/" + std::to_string(file_no++), -1};
        if (!gtest_internal::SpawnWorker(self, filter, slice, outcome.plant, r.file, &r.pid)) {
          ADD_FAILURE() << "posix_spawn of a seed worker failed";
          return outcome;
        }
        running.push_back(r);
      }
      queue.clear();
      for (const Running& r : running) {
        int status = 0;
        waitpid(r.pid, &status, 0);
        std::ifstream in(r.file);
        uint64_t seed = 0, hash = 0, next = r.slice.first;
        int passed = 0;
        bool done = false;
        while (in >> seed >> passed >> hash) {
          ++outcome.runs;
          outcome.hash.Add(seed, hash);
          if (passed != 1) {
            ++outcome.failed;
            failing.push_back(seed);
          }
          if (seed == r.slice.last) done = true;
          next = seed + 1;
        }
        unlink(r.file.c_str());
        if (!done) {
          // The worker died in the run of `next`: report it, let a new worker take the rest.
          ++outcome.runs;
          ++outcome.failed;
          crashed.emplace_back(
              next, WIFSIGNALED(status)
                        ? "the run crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                        : "the run crashed (exit " + std::to_string(WEXITSTATUS(status)) + ")");
          if (next < r.slice.last) queue.push_back({next + 1, r.slice.last});
        }
      }
    }
    rmdir(dir.c_str());
    // Details of the first failing seeds: rerun here (same seed, same run).
    std::sort(failing.begin(), failing.end());
    for (const auto& [seed, why] : crashed) {
      if (outcome.failures.size() >= options.max_failures) break;
      ScenarioResult r;
      r.scenario = name;
      r.seed = seed;
      r.planted_bug = outcome.plant;
      r.invariant = why;
      outcome.failures.push_back(r);
    }
    for (uint64_t seed : failing) {
      if (outcome.failures.size() >= options.max_failures) break;
      outcome.failures.push_back(run_one(seed));
    }
  }
  std::cout << outcome.Summary(name) << std::endl;
  if (options.fail_test) {
    for (const ScenarioResult& r : outcome.failures) {
      ADD_FAILURE() << r.Details() << "\n  replay:    " << outcome.ReplayCommand(r.seed);
    }
    if (outcome.failed > outcome.failures.size()) {
      ADD_FAILURE() << (outcome.failed - outcome.failures.size())
                    << " more failing seed(s) not shown";
    }
  }
  return outcome;
}

// The earlier form: the default range and the number of failures reported in full.
inline void RunScenarioOverSeeds(const std::string& name,
                                 const std::function<std::unique_ptr<Scenario>()>& make,
                                 SeedRange fallback, size_t max_failures = 3) {
  ScenarioTestOptions options;
  options.seeds = fallback;
  options.max_failures = max_failures;
  RunScenarioSeeds(name, make, options);
}

}  // namespace netlayer::sim

#define NETLAYER_SCENARIO_TEST(suite, test, name, make, fallback_seeds) \
  TEST(suite, test) { ::netlayer::sim::RunScenarioOverSeeds(name, make, fallback_seeds); }
