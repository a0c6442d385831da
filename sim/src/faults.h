// Faults: the random fault process and the faults a scenario scripts (partitions, clogs,
// resets, crashes and restarts, heal-all, the liveness phase).
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
#include "sim_types.h"

namespace netlayer::sim {

class Faults {
 public:
  explicit Faults(World::Impl& w) : w_(w) {}
  Faults(const Faults&) = delete;
  Faults& operator=(const Faults&) = delete;

  absl::Status CheckGroups(const std::vector<HostId>& a, const std::vector<HostId>& b) const;
  std::string Group(const std::vector<HostId>& g) const;
  void Clog(HostId from, HostId to, absl::Duration d, const char* how);
  void Crash(HostId h, const char* how);
  void Restart(HostId h, const char* how);
  void HealAll(const char* how);
  // Starts the random fault process (a no-op when the profile has none).
  void ScheduleNext();
  // The liveness phase: random faults stop, partitions and clogs heal, down hosts restart.
  void Stop();

  uint64_t heal_generation = 0;  // HealAll invalidates pending random heals

 private:
  void RandomFault();

  World::Impl& w_;
};

}  // namespace netlayer::sim
