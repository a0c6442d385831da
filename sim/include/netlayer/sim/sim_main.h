// The scenario tool's entry point (target netlayer::sim_main): every command of netlayer-sim
// over any ScenarioRegistry, so a user's own scenario binary is a three-line main():
//
//   int main(int argc, char** argv) {
//     return netlayer::sim::Main(MyScenarios(), argc, argv);
//   }
//
// (or, in CMake, netlayer_add_scenario_tool(my-sim SOURCES main.cc my_scenarios.cc)).
//
// Commands (docs/SCENARIOS.md has the whole workflow; --help on each lists its options):
//   list                          (scenarios, each with the plants it declares)
//   run SCENARIO --seed N|--choices FILE [--write-choices FILE] [--trace FILE]
//       [--trace-json FILE] [--timeline FILE.html] [--verbose] [--plant BUG]
//       [--record-tape FILE] [--tape FILE] [--no-buggify]
//   sweep SCENARIO|all --seeds A..B [--jobs J] [--plant BUG] [--shard K/N] [--json FILE]
//       [--require-probes] [--no-buggify]
//   merge FILE... [--require-probes]   (the --json files of a sweep's shards)
//   shrink SCENARIO --seed N|--choices FILE [--plant BUG] [--out FILE] [--max-runs N] [--max-seconds S]
//       [--no-buggify]
//   check-determinism SCENARIO|all --seeds A..B [--plant BUG] [--no-buggify]
//   explore SCENARIO [--seconds N] [--runs N] [--jobs N] [--plant BUG] [--corpus DIR]
//       [--seed N] [--shrink] [--max-len N] [--no-buggify]
//                                 (libFuzzer over choice strings, sim/choices.h: builds with
//                                 NETLAYER_EXPLORE, preset `explore`; else exit 2 saying so)
//
// A --plant must be one the scenario declares (Scenario::Plants), else exit 2 naming the known
// ones; with `all`, the scenarios that declare it run (and it is an error if none does).
// sweep and merge report every registered probe (core/probe.h): in how many runs it held and the
// first run; --require-probes fails (exit 1) if a SOMETIMES or REACHABLE probe held in no run,
// and a scenario's RequiredProbes fail its sweep without the flag. A sweep of one shard of
// several leaves that check to merge.
//
// Every replay command printed names this binary as it was started (argv[0]) unless
// MainOptions::program says otherwise, and carries --plant when a bug was planted.
//
// Exit status: 0 success; 1 a scenario failed, explore found a failing run, runs diverged, merged shards hold a failure, or
// a required probe was never reached; 2 bad usage (an unknown plant too), or shard files that do not belong together (different builds, scenarios, seed
// ranges or plants; overlapping or missing shards).
//
// Thread rules: call from main(), once. `sweep` forks worker processes, `check-determinism` and
// `explore` start fresh ones (this binary, via /proc/self/exe; an explore worker is this binary
// with NETLAYER_EXPLORE_WORKER set, which Main recognises before parsing argv), so do not link netlayer::guard into a
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
