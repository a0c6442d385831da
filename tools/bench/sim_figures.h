// The simulator's speed figures (built when netlayer::sim and netlayer::smac exist).
#pragma once

#include <memory>

#include "harness.h"

namespace netlayer::bench {

enum class SimFigure {
  kEventsPerSecond,  // simulator events run per wall-clock second, busy calm network
  kVirtualOverWall,  // simulated seconds per wall-clock second, same workload
  kSeedsPerSecond,   // a sweep: fresh worlds, each seed's fault mix, 1 simulated s each
};

std::unique_ptr<Runner> MakeSimRunner(SimFigure figure);

}  // namespace netlayer::bench
