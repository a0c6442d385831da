// A host of the world: its name, whether it is up, its incarnation, its listeners, and the
// objects it hands to the application (HostEnv, the client and server factories).
//
// HostEnv is the host's Env: Now() is the host's clock (HostClock: world time, or an offset
// and drift from it), RunAt schedules a timer owned by the host for when its clock reaches the
// time (dropped if the host crashes first), NewNotification blocks by running the world.
//
// A frozen host (World::Freeze) holds the events it owns that come due (EventLoop::RunOne moves
// them to `held`); they run in order when it resumes.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "event_loop.h"
#include "netlayer/core/env.h"
#include "sim_types.h"

namespace netlayer::sim {

class SimClientFactory;
class SimServerFactory;

class SimNotification final : public Notification {
 public:
  explicit SimNotification(WorldRef world) : world_(std::move(world)) {}
  void Notify() override { notified_ = true; }
  bool HasBeenNotified() const override { return notified_; }
  bool WaitUntil(absl::Time deadline) override;

 private:
  WorldRef world_;
  bool notified_ = false;
};

// A host's clock: local = anchor_local + e + e * drift_ppb / 1e9, where e is the world time
// since anchor_world (integer nanoseconds, so every build computes the same). Non-decreasing in
// world time; re-anchored at each change (SetClock, a step), never going backwards.
struct HostClock {
  absl::Time anchor_world = absl::UnixEpoch();
  absl::Time anchor_local = absl::UnixEpoch();
  int64_t drift_ppb = 0;
  bool skewed = false;  // false: local == world time, nothing computed

  // REQUIRES: world >= anchor_world.
  absl::Time Local(absl::Time world) const;
  // The earliest world time >= anchor_world at which Local() reaches `local`.
  absl::Time WorldTime(absl::Time local) const;
};

class HostEnv final : public Env {
 public:
  HostEnv(World::Impl* world, HostId host) : world_(world), host_(host) {}
  absl::Time Now() const override;
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;

 private:
  World::Impl* world_;
  HostId host_;
};

struct Host {
  Host();
  ~Host();
  Host(Host&&) noexcept;
  Host& operator=(Host&&) noexcept;

  std::string name;
  bool up = true;
  bool crashable = false;
  // Bumped by each crash: an event owned by the host (a timer, a connect step, the restart
  // hook, a delivery to one of its connections) is dropped if the host crashed after it was
  // scheduled, even if the host is up again.
  uint64_t incarnation = 0;
  std::function<void()> restart_hook;
  uint16_t next_port = 49152;
  std::map<uint16_t, std::shared_ptr<SimListener>> listeners;  // open listeners by port
  std::unique_ptr<HostEnv> env;
  std::unique_ptr<SimClientFactory> client;
  std::unique_ptr<SimServerFactory> server;

  // ---- Faults on the host ----
  bool freezable = false;
  bool frozen = false;
  bool thaw_scheduled = false;     // Resume ran; the thaw event is queued
  uint64_t freeze_generation = 0;  // a later freeze or resume invalidates a pending timed resume
  struct Held {
    uint64_t id;
    EventLoop::Event event;
  };
  std::deque<Held> held;  // events that came due while frozen, in order
  bool not_reading = false;
  uint64_t stall_generation = 0;
  Flap flap;  // scripted flapping of its listeners
  bool skewable = false;
  HostClock clock;
  // What made the host's own clock run ahead of its work (World::FrozenTime, ClockStepped):
  // world time spent frozen (freezes that ended; the current one counts from frozen_since),
  // and forward clock steps.
  absl::Duration frozen_total;
  absl::Time frozen_since;
  absl::Duration stepped_total;
};

}  // namespace netlayer::sim
