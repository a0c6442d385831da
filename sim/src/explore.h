// `explore` (docs/SCENARIOS.md "Sweep or explore"): libFuzzer mutates choice strings
// (netlayer/sim/choices.h) of one scenario, guided by the code coverage of everything linked
// (built with -fsanitize=fuzzer-no-link: preset `explore`) and by the probes (core/probe.h), each
// probe's evaluations and holds counted as features through libFuzzer's extra counters.
//
// The command runs as two processes: the one the user started (the driver: progress line,
// findings, replay check, shrink, summary) and a worker (this binary again, started with
// NETLAYER_EXPLORE_WORKER set), which runs libFuzzer's loop (LLVMFuzzerRunDriver) over the runs.
// A run that fails an invariant aborts the worker, so an invariant failure, an assertion, a
// sanitizer report and a run past libFuzzer's -timeout all end the same way: libFuzzer writes
// the input, and the driver turns it into a choice file and replays it in a fresh process.
//
// Part of netlayer::sim_main (it spawns processes and reads the wall clock, like sweep).
// Thread rules: call from main(), once.
#pragma once

#include <cstdint>
#include <string>

#include "netlayer/sim/scenario.h"

namespace netlayer::sim::explore_internal {

struct ExploreArgs {
  std::string scenario, plant, corpus;
  double seconds = 60;
  uint64_t runs = 0;  // 0: no bound (then --seconds bounds it)
  int jobs = 1;
  uint64_t seed = 0;  // 0: libFuzzer picks one (not repeatable)
  bool shrink = false;
  bool no_buggify = false;
  int max_len = 16384;  // bytes of a choice string libFuzzer may grow to
};

// True if this build has libFuzzer (preset `explore`, clang).
bool Available();
// The `explore` command. `info` declares args.plant (checked by the caller).
int Explore(const ScenarioInfo& info, const std::string& program, const ExploreArgs& args);
// If this process is an explore worker (NETLAYER_EXPLORE_WORKER is set), runs libFuzzer over
// the scenario it names and returns its exit status; else returns -1.
int MaybeRunWorker(const ScenarioRegistry& registry, int argc, char** argv);

}  // namespace netlayer::sim::explore_internal
