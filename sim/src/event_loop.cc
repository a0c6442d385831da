#include "event_loop.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "world_parts.h"

namespace netlayer::sim {

uint64_t EventLoop::Schedule(absl::Time when, HostId host, bool timer,
                             absl::AnyInvocable<void() &&> fn,
                             std::optional<absl::Time> local_when) {
  if (destroying) return 0;  // the world is going away: `fn` never runs (0 is no event's id)
  if (when < now) when = now;
  const uint64_t incarnation = w_.ValidHost(host) ? w_.hosts[host.value].incarnation : 0;
  absl::StatusOr<TimerId> id =
      events.Add(when, Event{host, timer, incarnation, std::move(fn), local_when});
  if (!id.ok()) {
    Halt(absl::ResourceExhaustedError(absl::StrCat("sim: ", id.status().message())));
    return 0;  // the world has halted: `fn` never runs
  }
  return *id;
}

bool EventLoop::Cancel(uint64_t id) {
  if (destroying) return false;
  return events.Cancel(id);
}

void EventLoop::Halt(absl::Status why) {
  if (!halted.ok()) return;
  halted = std::move(why);
  w_.Record(kNoHost, TraceKind::kWorld, absl::StrCat("halted: ", halted.message()));
  Log(LogLayer::kSim)
      .error("simulation halted (seed {}): {}", w_.options.seed, std::string(halted.message()));
}

void EventLoop::AdvanceTo(absl::Time t) {
  NETLAYER_ASSERT(t >= now, "virtual time never goes backwards");
  now = t;
}

void EventLoop::RunOne() {
  std::optional<BasicTimerQueue<Event>::Entry> due = events.PopDue(absl::InfiniteFuture());
  NETLAYER_ASSERT(due.has_value(), "RunOne: no event pending");
  // Schedule clamps to now and RunUntil moves time only up to the next event: an event is never
  // due before now.
  NETLAYER_ASSERT(due->when >= now, "an event is never due in the past");
  AdvanceTo(due->when);
  ++events_run;
  Run(due->id, std::move(due->value));
}

void EventLoop::Run(uint64_t id, Event event) {
  if (w_.ValidHost(event.host)) {
    Host& owner = w_.hosts[event.host.value];
    switch (owner.AdmitsEvent(event.incarnation)) {
      case Admission::kNow:
        break;
      case Admission::kLater:
        owner.held.push_back(Host::Held{id, std::move(event)});
        return;
      case Admission::kNever:
        return;
    }
  }
  if (event.timer) {
    if (w_.options.trace_timers) {
      w_.Record(event.host, TraceKind::kTimer, absl::StrCat("timer#", id, " fired"));
    }
  }
  CallbackScope scope(*this);
  std::move(event.fn)();
}

bool EventLoop::RunUntil(const std::function<bool()>& pred, absl::Time deadline) {
  NETLAYER_ASSERT(depth == 0,
                  "a blocking simulator call (ConnectBlocking, Accept, WaitUntil, RunUntil, "
                  "RunFor) was made from inside a callback run by the world: it could never "
                  "return");
  const ScopedProbeSink probe_scope(probes);
  while (!pred()) {
    if (!halted.ok()) return false;
    // An event at the infinite future (a timer set for "never") never runs.
    const std::optional<absl::Time> next = events.NextDeadline();
    if (!next.has_value() || *next > deadline || *next == absl::InfiniteFuture()) {
      if (deadline != absl::InfiniteFuture() && deadline > now) AdvanceTo(deadline);
      return pred();
    }
    if (events_run >= w_.options.max_events) {
      Halt(absl::ResourceExhaustedError(absl::StrCat(
          "the simulation ran ", events_run, " events (WorldOptions::max_events) at t=",
          absl::FormatDuration(now - start), ": a livelock, or raise max_events")));
      return false;
    }
    RunOne();
  }
  return true;
}

}  // namespace netlayer::sim
