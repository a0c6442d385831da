// The timeline: one self-contained HTML file (no network needed to view it) that draws a run's
// hosts as lanes over virtual time, with connections, sends and deliveries with their sizes,
// faults and partitions shaded, and the failing invariant marked.
#pragma once

#include <string>
#include <vector>

#include "netlayer/sim/scenario.h"
#include "netlayer/sim/trace.h"

namespace netlayer::tools {

// `events` are the run's trace events in order (all of them, or the first N if the run was
// very long: `truncated` says so).
std::string RenderTimeline(const sim::ScenarioResult& result,
                           const std::vector<sim::TraceEvent>& events, bool truncated);

}  // namespace netlayer::tools
