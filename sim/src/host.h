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
#include "netlayer/sim/disk.h"
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
  HostEnv(WorldParts* world, HostId host) : world_(world), host_(host) {}
  absl::Time Now() const override;
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;
  FileSystem& fs() override;  // the host's SimDisk (disk.cc)

 private:
  WorldParts* world_;
  HostId host_;
};

// Work a host is asked to do, for Host::Admits: the one place that decides what a frozen host
// and a dead host (crashed process, machine powered off) do.
enum class HostWork {
  kSend,       // its process moves bytes from a stream's output queue into the network
  kRead,       // its process reads a stream's input (an end with a live process: Fate::kLive)
  kAccept,     // its process hears of a stream its listener accepted (the accept callback)
  kAnswerSyn,  // its kernel answers a SYN (accepts into a listener's queue, or refuses)
  kStart,      // its process starts something new: a connect, a listen
};
// Host::Admits's answer.
enum class Admission {
  kNow,    // done now
  kLater,  // held: done when the host's process resumes (it is frozen)
  kNever,  // never: nobody is there to do it (the caller drops it, or reports the host down)
};

struct Host {
  Host();
  ~Host();
  Host(Host&&) noexcept;
  Host& operator=(Host&&) noexcept;

  // How the host lives (DESIGN.md §12): its process runs (kUp), its process died on a live
  // machine whose kernel still answers for its sockets (kCrashed), or the machine lost power and
  // nothing of it answers (kPoweredOff). Transitions: kUp -> kCrashed | kPoweredOff (Faults::Kill,
  // a new incarnation), kCrashed | kPoweredOff -> kUp (Faults::Restart).
  enum class Life { kUp, kCrashed, kPoweredOff };

  bool up() const { return life == Life::kUp; }

  // ---- What a frozen or dead host does: decided here only ----
  // An event the host owns (a timer, a connect step, a delivery to its process, the restart
  // hook) comes due; it was scheduled in `event_incarnation`. kNever: the process that wanted it
  // died since (even if the host is up again); kLater: the process is frozen, the event waits
  // in `held`, in order.
  Admission AdmitsEvent(uint64_t event_incarnation) const {
    if (event_incarnation != incarnation) return Admission::kNever;
    return frozen ? Admission::kLater : Admission::kNow;
  }
  // Work of the host's process or kernel (HostWork). A dead host's streams are answered for by
  // each end's fate (SimConnection::Fate: its kernel, or nobody), set when it dies; kSend and
  // kRead are asked only for an end with a live process.
  Admission Admits(HostWork what) const {
    switch (what) {
      case HostWork::kSend:
      case HostWork::kRead:
      case HostWork::kAccept:
        // A stopped process moves nothing, reads nothing, hears of nothing until it resumes.
        return frozen ? Admission::kLater : Admission::kNow;
      case HostWork::kAnswerSyn:
        // A powered-off machine answers nothing (the SYN is lost); a crashed process's kernel
        // refuses (no listener); a frozen process's kernel still accepts into the queue.
        return life == Life::kPoweredOff ? Admission::kNever : Admission::kNow;
      case HostWork::kStart:
        return up() ? Admission::kNow : Admission::kNever;
    }
    return Admission::kNever;
  }

  std::string name;
  Life life = Life::kUp;
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
  std::unique_ptr<SimDisk> disk;  // made on first use (World::disk, HostEnv::fs; disk.cc)

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
