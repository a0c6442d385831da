// The example's scenarios (a registry, for its scenario tool and its tests).
//   kv  two clients write and read their own keys on one kv server under the seed's faults.
// Planted bug "lose-on-resize": the store loses a bucket's entries when it grows.
#pragma once

#include <memory>

#include "netlayer/sim/scenario.h"

namespace kv {

inline constexpr char kLoseOnResize[] = "lose-on-resize";

std::unique_ptr<netlayer::sim::Scenario> MakeKvScenario();
const netlayer::sim::ScenarioRegistry& Scenarios();

}  // namespace kv
