// Faults: the random fault process and the faults a scenario scripts (partitions, clogs,
// resets, process crashes, power losses and restarts, heal-all, the liveness phase).
//
// The random process wakes at exponential intervals (the sum of the profile's rates), asks the
// FaultDecider what to do, and carries it out. Every fault is traced as kind "fault" (or "host"
// for crashes and restarts), random ones marked "random", scripted ones "scripted".
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netlayer/sim/fault_tape.h"
#include "sim_types.h"

namespace netlayer::sim {

class Faults {
 public:
  explicit Faults(WorldParts& w) : w_(w) {}
  Faults(const Faults&) = delete;
  Faults& operator=(const Faults&) = delete;

  absl::Status CheckGroups(const std::vector<HostId>& a, const std::vector<HostId>& b) const;
  std::string Group(const std::vector<HostId>& g) const;
  void Clog(HostId from, HostId to, absl::Duration d, const char* how);
  // The host dies as `death` says (DESIGN.md §12): its process's timers, work, connects and
  // listeners vanish; its streams are left to its kernel (Network::BreakHost). REQUIRES: up.
  void Kill(HostId h, HostDeath death, const char* how);
  // The host runs again as a new incarnation; its restart hook runs. REQUIRES: down.
  void Restart(HostId h, const char* how);
  void HealAll(const char* how);
  // Starts the random fault process (a no-op when the profile has none).
  void ScheduleNext();
  // The liveness phase: random faults stop, partitions and clogs heal, down hosts restart,
  // frozen hosts resume, stalled readers read again, flapping servers stop flapping.
  void Stop();

  // ---- Freeze (a stopped process) ----
  // REQUIRES: the host is up and not frozen. `d` infinite: until Resume.
  void Freeze(HostId h, absl::Duration d, const char* how);
  // REQUIRES: the host is frozen. What it held runs in a world event at now, in order.
  void Resume(HostId h, const char* how);

  // ---- Read stalls ----
  void StopReading(HostId h, absl::Duration d, const char* how);
  void ResumeReading(HostId h, const char* how);
  void StopReading(SimConnection& c, absl::Duration d, const char* how);
  void ResumeReading(SimConnection& c, const char* how);

  // ---- Clocks ----
  // FailedPrecondition if the new clock would read earlier than the host's clock now.
  absl::Status SetClock(HostId h, absl::Duration offset, int64_t drift_ppb, const char* how);
  void StepClock(HostId h, absl::Duration d, const char* how);
  // Draws a skewable host's offset and drift from the profile (if it has clock faults).
  void SkewFromProfile(HostId h);

  uint64_t heal_generation = 0;  // HealAll invalidates pending random heals

 private:
  // Draws the next random fault (as a tape entry, its targets by name; not yet done).
  TapeEntry RandomFault();
  // Does what a tape entry of the fault process says; skipped if its target is gone.
  void Apply(const TapeEntry& e);
  Link* FindLink(const TapeEntry& e) const;
  // The thaw event: the host runs again and what it held runs, in order.
  void Thaw(HostId h, uint64_t generation);
  // After a host clock changed: its pending timers move to when the clock reaches their time.
  void RemapTimers(HostId h);

  WorldParts& w_;
  uint64_t wakeups_ = 0;                        // recording: the next wake-up's ordinal
  std::vector<const TapeEntry*> replay_order_;  // replaying: the tape's wake-ups by time
  size_t next_replay_ = 0;
};

}  // namespace netlayer::sim
