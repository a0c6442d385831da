// FaultTape: the random fault decisions of one run, recorded, edited and replayed
// (docs/SCENARIOS.md, "Shrink a failure").
//
// A world records every decision of its FaultDecider on a tape (WorldOptions::record_tape), or
// takes them from one instead of drawing them (WorldOptions::replay_tape). Fault decisions draw
// from their own generator stream, never the world's, so the network and the workload draw the
// same values with or without a tape: a tape recorded from seed N replays to seed N's trace hash.
//
// Every decision is addressable, so that removing or changing one leaves the others meaningful:
//   - the random fault process: the k-th wake-up (process "fault"), at a world time, with what it
//     did, its targets named by host name (a stream by its id, or else the newest live stream
//     between the same two hosts);
//   - "connect-fail": the n-th connect attempt of a host fails fast;
//   - "flap": the n-th connection accepted at a host is dropped as `flap` says;
//   - "clock": a host's clock offset and drift.
// A decision the tape has no entry for is neutral: no fault, no skew. A fault whose target is
// gone when it comes due (a stream that no longer exists, a host that is down) is skipped.
//
// Thread rules: a value type; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace netlayer::sim {

struct TapeEntry {
  // "fault", "connect-fail", "flap", "clock".
  std::string process;
  // "fault": "none", "clog", "partition", "reset", "crash", "power-off", "stall-conn",
  // "stall-host", "freeze", "clock-step". "flap": "at-once", "after-bytes", "after-round-trips".
  std::string kind;
  uint64_t ordinal = 0;     // "fault": the wake-up's; "connect-fail", "flap": per host
  absl::Duration at;        // "fault": world time since the start
  absl::Duration duration;  // clog, partition, stall, freeze, step; crash, power-off: time down
  std::string host;         // the host it happens on (connect-fail, flap, clock: the key)
  // clog: from -> to. A stream (reset, stall-conn): its two hosts (client end first).
  std::string from, to;
  std::vector<std::string> side_a, side_b;  // partition
  bool one_way = false;
  uint64_t stream = 0;    // reset, stall-conn
  int side = 0;           // stall-conn: which end stops reading
  uint64_t count = 0;     // flap
  absl::Duration offset;  // clock
  int64_t drift_ppb = 0;  // clock

  // A fault-process wake-up that did nothing is not a fault.
  bool IsFault() const { return !(process == "fault" && kind == "none"); }
};

struct FaultTape {
  std::string scenario;
  uint64_t seed = 0;
  std::string plant;
  std::string profile;  // FaultProfile::Describe() of the recorded run
  std::vector<TapeEntry> entries;

  size_t faults() const;
  // JSON lines: a header line, then one line per entry.
  std::string Serialize() const;
  static absl::StatusOr<FaultTape> Parse(const std::string& text);
};

}  // namespace netlayer::sim
