// EventLoop: virtual time and the event queue of one world.
//
// Events run in (virtual time, sequence number) order; time jumps to the next event and never
// goes backwards (asserted). An event has an owner: the world (kNoHost) or a host. A host's
// event is dropped if the host crashed after it was scheduled (its incarnation changed), and
// held back while the host is frozen (Host::held), to run in order when it resumes.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netlayer/core/probe.h"
#include "netlayer/core/timer_queue.h"
#include "sim_types.h"

namespace netlayer::sim {

class EventLoop {
 public:
  struct Event {
    HostId host;         // the owner, or kNoHost for the world
    bool timer = false;  // an Env timer: traced when it fires, cancelled when its host crashes
    uint64_t incarnation = 0;  // the owner's incarnation when scheduled
    absl::AnyInvocable<void() &&> fn;
    // An Env timer of a host with a skewed clock: the host-clock time it is for (a clock step
    // moves the event to the new world time of it).
    std::optional<absl::Time> local_when;
  };

  explicit EventLoop(WorldParts& w) : w_(w) {}
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Schedules `fn` at `when` (clamped to now) owned by `host`. Returns the event's id, or 0
  // (no event's id) if the world is being destroyed or has halted on a full queue.
  uint64_t Schedule(absl::Time when, HostId host, bool timer, absl::AnyInvocable<void() &&> fn,
                    std::optional<absl::Time> local_when = std::nullopt);
  bool Cancel(uint64_t id);
  // Runs the next event. REQUIRES: an event is pending (asserted).
  void RunOne();
  // Runs `event` (popped as `id`) now: dropped if its owner crashed since, held if its owner is
  // frozen, else traced (a timer) and run in a CallbackScope.
  void Run(uint64_t id, Event event);
  bool RunUntil(const std::function<bool()>& pred, absl::Time deadline);
  // The world halts with `why` (the first reason stays); traced and logged.
  void Halt(absl::Status why);
  // Moves virtual time forward to `t` (never back).
  void AdvanceTo(absl::Time t);

  absl::Time start = absl::UnixEpoch();
  absl::Time now = absl::UnixEpoch();
  BasicTimerQueue<Event> events;  // (time, sequence number) order; an event's id is its number
  uint64_t events_run = 0;
  bool destroying = false;  // in ~Impl: nothing may be scheduled any more
  int depth = 0;            // callbacks being run by the world (nested: SetHandler deliveries)
  absl::Status halted;
  ProbeSink* probes = nullptr;  // the world's: installed for the thread while events run

 private:
  WorldParts& w_;
};

// Counts a callback being run by the world, so blocking calls inside it are caught.
class CallbackScope {
 public:
  explicit CallbackScope(EventLoop& loop) : loop_(loop) { ++loop_.depth; }
  ~CallbackScope() { --loop_.depth; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  EventLoop& loop_;
};

}  // namespace netlayer::sim
