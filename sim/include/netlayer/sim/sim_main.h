// The scenario tool's entry point (target netlayer::sim_main): every command of netlayer-sim
// over any ScenarioRegistry, so a user's own scenario binary is a three-line main():
//
//   int main(int argc, char** argv) {
//     return netlayer::sim::Main(MyScenarios(), argc, argv);
//   }
//
// (or, in CMake, netlayer_add_scenario_tool(my-sim SOURCES main.cc my_scenarios.cc)).
//
// Commands (docs/SCENARIOS.md has the whole workflow):
//   list
//   run SCENARIO --seed N [--trace FILE] [--trace-json FILE] [--timeline FILE.html]
//       [--verbose] [--plant BUG]
//   sweep SCENARIO|all --seeds A..B [--jobs J] [--plant BUG] [--shard K/N] [--json FILE]
//   merge FILE...                 (the --json files of a sweep's shards)
//   check-determinism SCENARIO|all --seeds A..B [--plant BUG]
//
// Every replay command printed names this binary as it was started (argv[0]) unless
// MainOptions::program says otherwise, and carries --plant when a bug was planted.
//
// Exit status: 0 success; 1 a scenario failed, runs diverged, or merged shards hold a failure;
// 2 bad usage, or shard files that do not belong together (different builds, scenarios, seed
// ranges or plants; overlapping or missing shards).
//
// Thread rules: call from main(), once. `sweep` forks worker processes and `check-determinism`
// starts fresh ones (this binary, via /proc/self/exe), so do not link netlayer::guard into a
// scenario tool: the guard belongs in test binaries.
#pragma once

#include <string>

#include "netlayer/sim/scenario.h"

namespace netlayer::sim {

struct MainOptions {
  // The name replay commands start with. Empty: argv[0].
  std::string program;
  // The first line of --help.
  std::string description = "run, sweep, replay and check seeded netlayer scenarios";
};

// Runs the command in argv over `registry`; returns the exit status for main().
int Main(const ScenarioRegistry& registry, int argc, char** argv,
         const MainOptions& options = MainOptions());

// A fingerprint of this executable (a hash of its file, as 16 hex digits): sweep --json records
// it and merge refuses to combine shards of different builds.
std::string BuildId();

}  // namespace netlayer::sim
