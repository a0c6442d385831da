// A busy client/server workload on the simulator, used by the determinism tests, the
// fresh-process fingerprint check (sim_fingerprint) and as a quick speed figure: an echo server
// and several clients that write random-sized messages on timers, check that the echo is exactly
// the bytes they wrote (in order, no loss or duplicate inside a live stream), and reconnect when
// a fault breaks their connection. With faults: the seed's fault mix (server crashable), then the
// liveness phase, after which every client must be connected and echoing again.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"

namespace netlayer::sim {

struct BusyOptions {
  uint64_t seed = 1;
  bool faults = true;
  int clients = 3;
  absl::Duration fault_phase = absl::Seconds(20);
  absl::Duration heal_phase = absl::Seconds(15);
};

struct BusyResult {
  bool ok = false;
  std::string error;  // the first violated check
  std::string hash;   // the trace hash (16 hex digits)
  uint64_t trace_events = 0;
  uint64_t world_events = 0;
  absl::Duration virtual_time;
  uint64_t bytes_echoed = 0;
  int connections = 0;  // successful connects over the run
  std::string profile;
  // Random faults injected, by kind: "partition", "clog", "reset", "crash", "connect-fail".
  std::map<std::string, int> faults;
};

BusyResult RunBusyScenario(const BusyOptions& options);

}  // namespace netlayer::sim
