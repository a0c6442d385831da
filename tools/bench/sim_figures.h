// The simulator's speed figures (built when netlayer::sim and netlayer::smac exist).
#pragma once

#include <memory>
#include <string>

#include "harness.h"

namespace netlayer::bench {

enum class SimFigure {
  kEventsPerSecond,  // simulator events run per wall-clock second, busy calm network
  kVirtualOverWall,  // simulated seconds per wall-clock second, same workload
  kSeedsPerSecond,   // a sweep: fresh worlds, each seed's fault mix, 1 simulated s each
};

std::unique_ptr<Runner> MakeSimRunner(SimFigure figure);

// The same three figures for a built-in scenario of netlayer-sim (issue 6), seeds 1, 2, ... run
// back to back (built when netlayer_scenarios exists).
std::unique_ptr<Runner> MakeScenarioRunner(const std::string& scenario, SimFigure figure);

}  // namespace netlayer::bench
