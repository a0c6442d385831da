// The timeline: one self-contained HTML file (no network needed to view it) that draws a run's
// hosts as lanes over virtual time, with connections, sends and deliveries with their sizes,
// faults and partitions shaded, and the failing invariant marked.
//
// Usable on any trace: a scenario run (the scenario tool's `run --timeline`), or a test's own
// World (collect its events with Trace::SetSink, or take Trace::Recent()).
//
// Thread rules: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "netlayer/sim/scenario.h"
#include "netlayer/sim/trace.h"

namespace netlayer::sim {

// What the page's header line says about the run.
struct TimelineHeader {
  std::string title;  // e.g. "rpc-faults seed 17"
  bool passed = true;
  // When !passed: which invariant failed, why, and when (marked on the lanes).
  std::string invariant;
  std::string detail;
  absl::Duration failed_at;
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;  // 0: the number of events given
  absl::Duration simulated;   // 0: the last event's time
  std::string replay;         // a command that replays the run; may be empty
};

// `events` in order (all of a run's events, or the first N of a very long run: `truncated` says
// so, and the page notes it).
std::string RenderTimeline(const std::vector<TraceEvent>& events, const TimelineHeader& header,
                           bool truncated = false);
// The header from a scenario result (title "<scenario> seed <n>", its replay command).
std::string RenderTimeline(const ScenarioResult& result, const std::vector<TraceEvent>& events,
                           bool truncated);
// The events `trace` still holds in memory (Trace::Recent; raise WorldOptions::trace_capacity
// to keep a whole run), titled `title`.
std::string RenderTimeline(const Trace& trace, std::string title);

}  // namespace netlayer::sim
