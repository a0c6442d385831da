#include "faults.h"

#include <algorithm>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connector.h"
#include "listener.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/probe.h"
#include "network.h"
#include "sim_connection.h"
#include "world_parts.h"

namespace netlayer::sim {

std::string Faults::Group(const std::vector<HostId>& g) const {
  std::vector<std::string> names;
  for (HostId h : g) names.push_back(w_.Label(h));
  return absl::StrCat("[", absl::StrJoin(names, ","), "]");
}

absl::Status Faults::CheckGroups(const std::vector<HostId>& a, const std::vector<HostId>& b) const {
  if (a.empty() || b.empty()) return absl::InvalidArgumentError("sim: a host group is empty");
  for (const auto* g : {&a, &b}) {
    for (HostId h : *g) {
      if (!w_.ValidHost(h)) {
        return absl::InvalidArgumentError(absl::StrCat("sim: unknown host id ", h.value));
      }
    }
  }
  for (HostId x : a) {
    if (std::find(b.begin(), b.end(), x) != b.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sim: host '", w_.Label(x), "' is on both sides of a partition"));
    }
  }
  return absl::OkStatus();
}

void Faults::Clog(HostId from, HostId to, absl::Duration d, const char* how) {
  absl::Time& until = w_.net.clogs[Network::Dir(from, to)];
  until = std::max(until, w_.loop.now + d);
  w_.Record(kNoHost, TraceKind::kFault,
            absl::StrCat(how, " clog ", w_.Label(from), "->", w_.Label(to), " for ",
                         absl::FormatDuration(d)));
  w_.net.ScheduleKick(until);
}

void Faults::Kill(HostId h, HostDeath death, const char* how) {
  Host& hh = w_.host(h);
  NETLAYER_ASSERT(hh.up(), "Kill: the host is up");
  hh.life = death == HostDeath::kPowerOff ? Host::Life::kPoweredOff : Host::Life::kCrashed;
  ++hh.incarnation;
  w_.Record(h, TraceKind::kHost,
            absl::StrCat(how, death == HostDeath::kPowerOff ? " power off" : " crash"));
  // Its streams are left to its kernel: FIN or RST (a crash), or silence (a power loss). First,
  // so that what the destructors below write (of held events, timers, handlers) fails like a
  // write after close instead of leaving the dead process.
  w_.net.BreakHost(h, death);
  if (hh.disk != nullptr) {
    // A crash keeps the page cache (the kernel survives); a power loss keeps what was synced.
    if (death == HostDeath::kPowerOff) {
      hh.disk->OnPowerLoss(hh.disk->generator());
    } else {
      hh.disk->OnProcessCrash();
    }
  }
  // A stopped process can be killed too: what it held dies with it; the next one runs and reads.
  if (hh.frozen && !hh.thaw_scheduled) hh.frozen_total += w_.loop.now - hh.frozen_since;
  hh.frozen = false;
  hh.thaw_scheduled = false;
  ++hh.freeze_generation;
  hh.not_reading = false;
  ++hh.stall_generation;
  {
    std::deque<Host::Held> doomed = std::move(hh.held);
    hh.held.clear();
  }
  // Timers of the dead process.
  w_.loop.events.CancelIf(
      [h](const EventLoop::Event& event) { return event.timer && event.host == h; });
  // Pending connects of the dead process. A stream made at the listener (the SYN-ACK on its way)
  // is the network's now: its end dies with the others below.
  std::vector<std::shared_ptr<PendingConnect>> pcs;
  for (const auto& [id, pc] : w_.connector.connects) {
    if (pc->host == h) pcs.push_back(pc);
  }
  for (const auto& pc : pcs) {
    pc->link = nullptr;
    w_.Record(h, TraceKind::kConnect,
              absl::StrCat("connect#", pc->id, " ended: ",
                           death == HostDeath::kPowerOff ? "host lost power" : "process crashed"));
    w_.connector.Finish(pc);
    if (pc->blocking) {
      pc->handler->FailedConnection(
          absl::UnavailableError(absl::StrCat("sim: host '", hh.name, "' crashed")));
    }
  }
  // Listeners vanish (the streams still in their queues died with the others).
  w_.listeners.DropHost(
      h, death == HostDeath::kPowerOff ? "gone: host lost power" : "gone: process crashed");
  // Every end the dead process still holds, including streams that ended just before (a reset
  // at the same instant, its notification still queued): its handlers are never called again.
  std::vector<std::shared_ptr<SimConnection>> own;
  for (const auto& weak : w_.net.all_connections) {
    std::shared_ptr<SimConnection> c = weak.lock();
    if (c != nullptr && c->host() == h) own.push_back(std::move(c));
  }
  for (const auto& c : own) c->state().SetHandler(nullptr);  // may run handler destructors
}

void Faults::Restart(HostId h, const char* how) {
  Host& hh = w_.host(h);
  NETLAYER_ASSERT(!hh.up(), "Restart: the host is down");
  hh.life = Host::Life::kUp;
  w_.Record(h, TraceKind::kHost, absl::StrCat(how, " restart"));
  w_.net.RestartHost(h);
  w_.loop.Schedule(w_.loop.now, h, false, [this, h]() {
    if (!w_.host(h).up()) return;
    if (std::function<void()> hook = w_.host(h).restart_hook) hook();
  });
}

void Faults::HealAll(const char* how) {
  w_.net.blocked.clear();
  w_.net.clogs.clear();
  ++heal_generation;
  w_.Record(kNoHost, TraceKind::kFault, absl::StrCat(how, " heal all partitions and clogs"));
  w_.net.Kick();
}

void Faults::Stop() {
  w_.decider.set_stopped(true);
  w_.Record(kNoHost, TraceKind::kWorld, "liveness phase: random faults stopped");
  HealAll("liveness");
  for (uint32_t i = 0; i < w_.hosts.size(); ++i) {
    Host& h = w_.hosts[i];
    if (!h.up()) Restart(HostId{i}, "liveness");
    if (h.disk != nullptr) h.disk->StopFaults();
    if (h.frozen && !h.thaw_scheduled) Resume(HostId{i}, "liveness");
    if (h.not_reading) ResumeReading(HostId{i}, "liveness");
    if (h.flap.kind != Flap::Kind::kOff) {
      h.flap = Flap{};
      w_.Record(HostId{i}, TraceKind::kFault, "liveness: flapping stopped");
    }
  }
  for (const auto& weak : w_.net.all_connections) {
    if (std::shared_ptr<SimConnection> c = weak.lock(); c != nullptr && c->not_reading) {
      ResumeReading(*c, "liveness");
    }
  }
}

void Faults::Freeze(HostId h, absl::Duration d, const char* how) {
  Host& hh = w_.host(h);
  NETLAYER_ASSERT(hh.up() && !hh.frozen, "Freeze: the host is up and running");
  hh.frozen = true;
  hh.thaw_scheduled = false;
  hh.frozen_since = w_.loop.now;
  const uint64_t generation = ++hh.freeze_generation;
  w_.Record(h, TraceKind::kFault,
            d == absl::InfiniteDuration()
                ? absl::StrCat(how, " freeze")
                : absl::StrCat(how, " freeze for ", absl::FormatDuration(d)));
  if (d != absl::InfiniteDuration()) {
    w_.loop.Schedule(w_.loop.now + d, kNoHost, false, [this, h, generation, how]() {
      Host& hh = w_.host(h);
      if (hh.frozen && !hh.thaw_scheduled && hh.freeze_generation == generation) Resume(h, how);
    });
  }
}

void Faults::Resume(HostId h, const char* how) {
  Host& hh = w_.host(h);
  NETLAYER_ASSERT(hh.frozen && !hh.thaw_scheduled, "Resume: the host is frozen");
  hh.thaw_scheduled = true;
  hh.frozen_total += w_.loop.now - hh.frozen_since;
  const uint64_t generation = ++hh.freeze_generation;
  w_.Record(h, TraceKind::kFault, absl::StrCat(how, " resume (", hh.held.size(), " events held)"));
  // The host stays frozen until the thaw event runs, so what it held runs before anything of
  // it scheduled later.
  w_.loop.Schedule(w_.loop.now, kNoHost, false, [this, h, generation]() { Thaw(h, generation); });
}

void Faults::Thaw(HostId h, uint64_t generation) {
  Host& hh = w_.host(h);
  if (!hh.frozen || hh.freeze_generation != generation) return;
  hh.frozen = false;
  hh.thaw_scheduled = false;
  std::deque<Host::Held> held = std::move(hh.held);
  hh.held.clear();
  while (!held.empty()) {
    Host::Held next = std::move(held.front());
    held.pop_front();
    if (hh.frozen) {
      // An event it ran froze it again: the rest waits once more, in order.
      hh.held.push_back(std::move(next));
      continue;
    }
    w_.loop.Run(next.id, std::move(next.event));
  }
  w_.net.Release();
}

void Faults::StopReading(HostId h, absl::Duration d, const char* how) {
  Host& hh = w_.host(h);
  hh.not_reading = true;
  const uint64_t generation = ++hh.stall_generation;
  w_.Record(h, TraceKind::kFault,
            d == absl::InfiniteDuration()
                ? absl::StrCat(how, " stop reading (host)")
                : absl::StrCat(how, " stop reading (host) for ", absl::FormatDuration(d)));
  if (d != absl::InfiniteDuration()) {
    w_.loop.Schedule(w_.loop.now + d, kNoHost, false, [this, h, generation, how]() {
      if (w_.host(h).stall_generation == generation) ResumeReading(h, how);
    });
  }
}

void Faults::ResumeReading(HostId h, const char* how) {
  Host& hh = w_.host(h);
  hh.not_reading = false;
  ++hh.stall_generation;
  w_.Record(h, TraceKind::kFault, absl::StrCat(how, " read again (host)"));
  w_.net.Release();
}

void Faults::StopReading(SimConnection& c, absl::Duration d, const char* how) {
  c.not_reading = true;
  const uint64_t generation = ++c.stall_generation;
  w_.Record(c.host(), TraceKind::kFault,
            d == absl::InfiniteDuration() ? absl::StrCat(how, " stop reading conn#", c.stream_id())
                                          : absl::StrCat(how, " stop reading conn#", c.stream_id(),
                                                         " for ", absl::FormatDuration(d)));
  if (d != absl::InfiniteDuration()) {
    std::weak_ptr<SimConnection> weak = c.weak_from_this();
    w_.loop.Schedule(w_.loop.now + d, kNoHost, false, [this, weak, generation, how]() {
      std::shared_ptr<SimConnection> c = weak.lock();
      if (c != nullptr && c->stall_generation == generation) ResumeReading(*c, how);
    });
  }
}

void Faults::ResumeReading(SimConnection& c, const char* how) {
  c.not_reading = false;
  ++c.stall_generation;
  w_.Record(c.host(), TraceKind::kFault, absl::StrCat(how, " read again conn#", c.stream_id()));
  w_.net.Release();
}

absl::Status Faults::SetClock(HostId h, absl::Duration offset, int64_t drift_ppb, const char* how) {
  HostClock& clock = w_.host(h).clock;
  const absl::Time now = w_.loop.now;
  const absl::Time local_now = clock.Local(now);
  if (now + offset < local_now) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sim: the clock of '", w_.Label(h), "' would go back by ",
        absl::FormatDuration(local_now - (now + offset)), " (host clocks never go backwards)"));
  }
  clock.anchor_world = now;
  clock.anchor_local = now + offset;
  clock.drift_ppb = drift_ppb;
  clock.skewed = true;
  w_.Record(h, TraceKind::kFault,
            absl::StrCat(how, " clock offset ", absl::FormatDuration(offset), " drift ", drift_ppb,
                         "ppb"));
  RemapTimers(h);
  return absl::OkStatus();
}

void Faults::StepClock(HostId h, absl::Duration d, const char* how) {
  HostClock& clock = w_.host(h).clock;
  const absl::Time now = w_.loop.now;
  clock.anchor_local = clock.Local(now) + d;
  clock.anchor_world = now;
  clock.skewed = true;
  w_.host(h).stepped_total += d;
  w_.Record(h, TraceKind::kFault, absl::StrCat(how, " clock step +", absl::FormatDuration(d)));
  RemapTimers(h);
}

void Faults::SkewFromProfile(HostId h) {
  const std::string& name = w_.host(h).name;
  int64_t ppb = 0;
  absl::Duration offset;
  if (w_.options.replay_tape != nullptr) {
    const TapeEntry* e = w_.TapeFind("clock", name, 0);
    if (e == nullptr) return;
    offset = e->offset;
    ppb = e->drift_ppb;
  } else {
    const std::optional<FaultDecider::ClockPlan> plan = w_.decider.HostClock();
    if (!plan.has_value()) return;
    ppb = static_cast<int64_t>(plan->drift_ppm * 1000);
    offset = plan->offset;
    TapeEntry e;
    e.process = "clock";
    e.kind = "skew";
    e.host = name;
    e.offset = offset;
    e.drift_ppb = ppb;
    w_.TapeRecord(std::move(e));
  }
  // An offset >= 0 never moves a clock that has not been skewed back: this cannot fail.
  absl::Status s = SetClock(h, std::max(offset, absl::ZeroDuration()), ppb, "random");
  (void)s;
}

void Faults::RemapTimers(HostId h) {
  EventLoop& loop = w_.loop;
  const HostClock& clock = w_.host(h).clock;
  const std::vector<TimerId> ids =
      loop.events.IdsIf([h](const EventLoop::Event& e) { return e.host == h && e.timer; });
  for (TimerId id : ids) {
    const EventLoop::Event* e = loop.events.Find(id);
    if (e == nullptr || !e->local_when.has_value()) continue;
    loop.events.Reschedule(id, std::max(loop.now, clock.WorldTime(*e->local_when)));
  }
}

void Faults::ScheduleNext() {
  if (const FaultTape* tape = w_.options.replay_tape; tape != nullptr) {
    // The tape's wake-ups in time order (a stable sort keeps recorded order for equal times).
    if (replay_order_.empty() && next_replay_ == 0) {
      for (const TapeEntry& e : tape->entries) {
        if (e.process == "fault") replay_order_.push_back(&e);
      }
      std::stable_sort(replay_order_.begin(), replay_order_.end(),
                       [](const TapeEntry* a, const TapeEntry* b) { return a->at < b->at; });
    }
    if (next_replay_ >= replay_order_.size()) return;
    const TapeEntry* e = replay_order_[next_replay_++];
    w_.loop.Schedule(std::max(w_.loop.now, w_.loop.start + e->at), kNoHost, false, [this, e]() {
      if (w_.decider.stopped()) return;
      Apply(*e);
      ScheduleNext();
    });
    return;
  }
  const std::optional<absl::Duration> delay = w_.decider.NextFaultDelay();
  if (!delay.has_value()) return;
  const absl::Time when = w_.loop.now + *delay;
  // Recorded as it is scheduled ("none" until it runs), so a replay schedules the same events.
  const size_t slot =
      w_.options.record_tape != nullptr ? w_.options.record_tape->entries.size() : 0;
  TapeEntry wake;
  wake.process = "fault";
  wake.kind = "none";
  wake.ordinal = wakeups_++;
  wake.at = when - w_.loop.start;
  w_.TapeRecord(std::move(wake));
  w_.loop.Schedule(when, kNoHost, false, [this, slot]() {
    if (w_.decider.stopped()) return;
    TapeEntry e = RandomFault();
    if (w_.options.record_tape != nullptr) {
      e.ordinal = w_.options.record_tape->entries[slot].ordinal;
      e.at = w_.options.record_tape->entries[slot].at;
      w_.options.record_tape->entries[slot] = e;
    }
    Apply(e);
    ScheduleNext();
  });
}

Link* Faults::FindLink(const TapeEntry& e) const {
  const std::optional<HostId> a = w_.HostByName(e.from), b = w_.HostByName(e.to);
  if (!a || !b) return nullptr;
  auto it = w_.net.links.find(e.stream);
  if (it != w_.net.links.end() && it->second->host[0] == *a && it->second->host[1] == *b) {
    return it->second.get();
  }
  // The stream is gone (or never was, in an edited tape): the newest one between the same hosts.
  for (auto r = w_.net.links.rbegin(); r != w_.net.links.rend(); ++r) {
    if (r->second->host[0] == *a && r->second->host[1] == *b) return r->second.get();
  }
  return nullptr;
}

TapeEntry Faults::RandomFault() {
  std::vector<HostId> crashable, freezable, skewable;
  for (uint32_t i = 0; i < w_.hosts.size(); ++i) {
    const Host& h = w_.hosts[i];
    if (h.up() && h.crashable) crashable.push_back(HostId{i});
    if (h.up() && h.freezable && !h.frozen) freezable.push_back(HostId{i});
    if (h.skewable) skewable.push_back(HostId{i});
  }
  const FaultPick pick =
      w_.decider.PickFault(w_.hosts.size(), w_.net.links.size(), crashable, freezable, skewable);
  TapeEntry e;
  e.process = "fault";
  e.kind = "none";
  e.duration = pick.duration;
  auto name = [this](HostId h) { return w_.host(h).name; };
  auto link_at = [this](size_t index) {
    auto it = w_.net.links.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(index));
    return it->second;
  };
  switch (pick.kind) {
    case FaultPick::Kind::kNone:
      e.duration = absl::ZeroDuration();
      break;
    case FaultPick::Kind::kStallConnection:
    case FaultPick::Kind::kReset: {
      const std::shared_ptr<Link> link = link_at(pick.link_index);
      e.kind = pick.kind == FaultPick::Kind::kReset ? "reset" : "stall-conn";
      e.stream = link->id;
      e.from = name(link->host[0]);
      e.to = name(link->host[1]);
      e.side = pick.side;
      break;
    }
    case FaultPick::Kind::kStallHost:
      e.kind = "stall-host";
      e.host = name(pick.host);
      break;
    case FaultPick::Kind::kFreeze:
      e.kind = "freeze";
      e.host = name(pick.host);
      break;
    case FaultPick::Kind::kClockStep:
      e.kind = "clock-step";
      e.host = name(pick.host);
      break;
    case FaultPick::Kind::kClog:
      e.kind = "clog";
      e.from = name(pick.from);
      e.to = name(pick.to);
      break;
    case FaultPick::Kind::kPartition:
      e.kind = "partition";
      for (HostId h : pick.side_a) e.side_a.push_back(name(h));
      for (HostId h : pick.side_b) e.side_b.push_back(name(h));
      e.one_way = pick.one_way;
      break;
    case FaultPick::Kind::kCrash:
      e.kind = "crash";
      e.host = name(pick.host);
      e.duration = w_.decider.DownTime();
      break;
    case FaultPick::Kind::kPowerOff:
      e.kind = "power-off";
      e.host = name(pick.host);
      e.duration = w_.decider.DownTime();
      break;
  }
  return e;
}

void Faults::Apply(const TapeEntry& e) {
  const std::optional<HostId> host = w_.HostByName(e.host);
  if (e.kind == "stall-conn" || e.kind == "reset") {
    Link* link = FindLink(e);
    if (link == nullptr) return;
    if (e.kind == "reset") {
      std::shared_ptr<Link> keep = w_.net.links.at(link->id);
      // The drawn end resets the stream (its RST crosses the network); if its process is gone,
      // the other end does; a stream only kernels hold is left to them.
      int side = e.side == 0 ? 0 : 1;
      if (keep->end[side]->fate() != SimConnection::Fate::kLive) side = 1 - side;
      if (keep->end[side]->fate() != SimConnection::Fate::kLive) return;
      NETLAYER_REACHABLE("sim.fault.reset-live-stream");
      w_.Record(
          kNoHost, TraceKind::kFault,
          absl::StrCat("random reset of conn#", keep->id, " by ", w_.Label(keep->host[side])));
      w_.net.ResetFrom(*keep, side, "injected");
    } else {
      StopReading(*link->end[e.side == 0 ? 0 : 1], e.duration, "random");
    }
  } else if (e.kind == "stall-host") {
    if (host) StopReading(*host, e.duration, "random");
  } else if (e.kind == "freeze") {
    if (host && w_.host(*host).up() && !w_.host(*host).frozen) Freeze(*host, e.duration, "random");
  } else if (e.kind == "clock-step") {
    if (host) StepClock(*host, e.duration, "random");
  } else if (e.kind == "clog") {
    const std::optional<HostId> from = w_.HostByName(e.from), to = w_.HostByName(e.to);
    if (from && to && *from != *to) Clog(*from, *to, e.duration, "random");
  } else if (e.kind == "partition") {
    std::vector<HostId> side_a, side_b;
    for (const std::string& n : e.side_a) {
      if (auto h = w_.HostByName(n)) side_a.push_back(*h);
    }
    for (const std::string& n : e.side_b) {
      if (auto h = w_.HostByName(n)) side_b.push_back(*h);
    }
    if (!CheckGroups(side_a, side_b).ok()) return;
    const bool one_way = e.one_way;
    w_.net.AddBlocks(side_a, side_b, one_way, +1);
    w_.Record(kNoHost, TraceKind::kFault,
              absl::StrCat("random partition ", Group(side_a), one_way ? " -> " : " <-> ",
                           Group(side_b), " for ", absl::FormatDuration(e.duration)));
    const uint64_t generation = heal_generation;
    w_.loop.Schedule(
        w_.loop.now + e.duration, kNoHost, false, [this, side_a, side_b, one_way, generation]() {
          if (generation != heal_generation) return;
          w_.net.AddBlocks(side_a, side_b, one_way, -1);
          w_.Record(kNoHost, TraceKind::kFault,
                    absl::StrCat("random partition ", Group(side_a), one_way ? " -> " : " <-> ",
                                 Group(side_b), " healed"));
          w_.net.Kick();
        });
  } else if (e.kind == "crash" || e.kind == "power-off") {
    if (!host || !w_.host(*host).up()) return;
    const HostId h = *host;
    Kill(h, e.kind == "crash" ? HostDeath::kProcessCrash : HostDeath::kPowerOff, "random");
    // Only this crash's restart: a later scripted restart and crash must not be cut short.
    const uint64_t incarnation = w_.host(h).incarnation;
    w_.loop.Schedule(w_.loop.now + e.duration, kNoHost, false, [this, h, incarnation]() {
      if (!w_.decider.stopped() && !w_.host(h).up() && w_.host(h).incarnation == incarnation) {
        Restart(h, "random");
      }
    });
  }
}

}  // namespace netlayer::sim
