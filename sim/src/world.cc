// World: the public face of the simulator. The parts live in their own files (sim_types.h
// lists them; docs/SIMULATOR.md describes them); WorldParts (world_parts.h) composes them;
// World::Impl, below, is it.
#include "netlayer/sim/world.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "world_parts.h"

namespace netlayer::sim {

// The public World's state: its parts, composed (world_parts.h). Only this file names it.
struct World::Impl final : WorldParts {
  using WorldParts::WorldParts;
};

void WorldParts::RecordStream(HostId h, TraceKind kind, std::string detail, const Link& link,
                              uint64_t bytes) {
  TraceEvent e;
  e.time = loop.now - loop.start;
  e.host = Label(h);
  e.kind = kind;
  e.detail = std::move(detail);
  e.conn = link.id;
  e.peer = Label(link.host[0] == h ? link.host[1] : link.host[0]);
  e.bytes = bytes;
  trace.Add(std::move(e));
}

void WorldParts::PromiseBroken(HostId h, absl::Status why) {
  Record(h, TraceKind::kWorld, std::string(why.message()));
  loop.Halt(std::move(why));
}

WorldParts::~WorldParts() {
  *ref = nullptr;
  // From here on, code run by the destructors below (an application object owned by a
  // closure or a handler, answering or cleaning up as it dies) cannot schedule, cancel, connect
  // or listen: the containers it would change are being torn down.
  loop.destroying = true;
  // Break handler <-> connection cycles and free what the network holds.
  for (auto& weak : net.all_connections) {
    if (std::shared_ptr<SimConnection> c = weak.lock()) {
      c->set_link(nullptr);
      c->state().OnRemoteClosed(CloseReason(CloseReason::Kind::kError, "simulation ended"));
      c->state().SetHandler(nullptr);
    }
  }
  for (Host& h : hosts) {
    for (auto& [port, l] : h.listeners) {
      l->MarkClosed();
      l->queue().clear();
    }
    h.listeners.clear();
  }
  // Move each container out before its elements die, so a destructor that reaches back in
  // finds it empty instead of half-destroyed.
  loop.events.Clear();
  {
    std::map<uint64_t, std::shared_ptr<Link>> doomed_links = std::move(net.links);
    net.links.clear();
    for (auto& [id, link] : doomed_links) link->end = {};
  }
  {
    std::map<uint64_t, std::shared_ptr<PendingConnect>> doomed_connects =
        std::move(connector.connects);
    connector.connects.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// World: the public face.

absl::StatusOr<std::unique_ptr<World>> World::Create(WorldOptions options) {
  if (absl::Status s = options.profile.Validate(); !s.ok()) return s;
  if (options.trace_capacity == 0) {
    return absl::InvalidArgumentError("sim: trace_capacity must be at least 1");
  }
  if (options.max_events == 0) return absl::InvalidArgumentError("sim: max_events is 0");
  return std::make_unique<World>(std::move(options));
}

World::World(WorldOptions options) {
  absl::Status valid = options.profile.Validate();
  NETLAYER_ASSERT(valid.ok(), "World: invalid fault profile (use World::Create for the error)");
  NETLAYER_ASSERT(options.trace_capacity > 0 && options.max_events > 0, "World: bad options");
  NETLAYER_ASSERT(options.choices == nullptr || ChoiceSeed(*options.choices) == options.seed,
                  "World: the seed of a choice string is its first 8 bytes");
  probes_ = std::make_unique<ProbeSink>(options.seed);
  probes_->set_buggify(options.buggify);
  probes_->set_unreachable_handler([this](std::string_view name) {
    Stop(absl::InternalError(absl::StrCat("unreachable probe '", std::string(name), "' reached")));
  });
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->loop.probes = probes_.get();
  impl_->Record(kNoHost, TraceKind::kWorld,
                absl::StrCat("start seed ", impl_->options.seed, " profile ",
                             impl_->options.profile.ToString()));
  impl_->faults.ScheduleNext();
}

World::~World() {
  // Destructors run below may still reach probes: they count, they stop nothing.
  probes_->set_unreachable_handler(nullptr);
}

uint64_t World::seed() const { return impl_->options.seed; }
const FaultProfile& World::profile() const { return impl_->options.profile; }
Generator& World::generator() { return impl_->generator; }
absl::Time World::Now() const { return impl_->loop.now; }
absl::Time World::start() const { return impl_->loop.start; }

absl::StatusOr<HostId> World::AddHost(std::string name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("sim: a host name must have 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("sim: host name '", name, "' may only use [A-Za-z0-9._-]"));
    }
  }
  if (FindHost(name).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("sim: host '", name, "' already exists"));
  }
  const HostId id{static_cast<uint32_t>(impl_->hosts.size())};
  Host& h = impl_->hosts.emplace_back();
  h.name = std::move(name);
  h.env = std::make_unique<HostEnv>(impl_.get(), id);
  h.client = std::make_unique<SimClientFactory>(impl_.get(), id);
  h.server = std::make_unique<SimServerFactory>(impl_.get(), id);
  impl_->Record(id, TraceKind::kHost, "add");
  return id;
}

absl::StatusOr<HostId> World::FindHost(std::string_view name) const {
  for (uint32_t i = 0; i < impl_->hosts.size(); ++i) {
    if (impl_->hosts[i].name == name) return HostId{i};
  }
  return absl::NotFoundError(absl::StrCat("sim: unknown host '", std::string(name), "'"));
}

const std::string& World::HostName(HostId host) const {
  NETLAYER_ASSERT(impl_->ValidHost(host), "HostId does not belong to this world");
  return impl_->hosts[host.value].name;
}
bool World::IsUp(HostId host) const {
  NETLAYER_ASSERT(impl_->ValidHost(host), "HostId does not belong to this world");
  return impl_->hosts[host.value].up();
}
std::vector<HostId> World::Hosts() const {
  std::vector<HostId> out;
  for (uint32_t i = 0; i < impl_->hosts.size(); ++i) out.push_back(HostId{i});
  return out;
}
Env& World::env(HostId host) { return *impl_->host(host).env; }
ClientConnectionFactory& World::client_factory(HostId host) { return *impl_->host(host).client; }
ServerConnectionFactory& World::server_factory(HostId host) { return *impl_->host(host).server; }

bool World::RunUntil(const std::function<bool()>& pred, absl::Time deadline) {
  return impl_->loop.RunUntil(pred, deadline);
}

absl::Status World::RunFor(absl::Duration d) {
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: RunFor needs a duration >= 0, got ", absl::FormatDuration(d)));
  }
  impl_->loop.RunUntil([] { return false; }, impl_->loop.now + d);
  return impl_->loop.halted;
}

absl::Status World::RunUntilIdle(absl::Duration limit) {
  if (limit < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sim: RunUntilIdle needs a limit >= 0");
  }
  const absl::Time deadline = impl_->loop.now + limit;
  const bool idle = impl_->loop.RunUntil([this] { return impl_->loop.events.empty(); }, deadline);
  if (!impl_->loop.halted.ok()) return impl_->loop.halted;
  if (!idle) {
    return absl::DeadlineExceededError(
        absl::StrCat("sim: still ", impl_->loop.events.size(), " events pending after running ",
                     absl::FormatDuration(limit), " of virtual time"));
  }
  return absl::OkStatus();
}

absl::Status World::At(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  if (when < impl_->loop.now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sim: At(", absl::FormatDuration(when - impl_->loop.start), ") is in the past (now ",
        absl::FormatDuration(impl_->loop.now - impl_->loop.start), ")"));
  }
  if (!fn) return absl::InvalidArgumentError("sim: At needs a function");
  impl_->loop.Schedule(when, kNoHost, false, std::move(fn));
  return absl::OkStatus();
}

void World::Stop(absl::Status why) {
  if (why.ok()) why = absl::InternalError("World::Stop called with an OK status");
  if (!impl_->loop.halted.ok()) return;
  impl_->loop.halted = std::move(why);
  impl_->Record(kNoHost, TraceKind::kWorld,
                absl::StrCat("stopped: ", impl_->loop.halted.ToString()));
}

bool World::InCallback() const { return impl_->loop.depth > 0; }
absl::Status World::status() const { return impl_->loop.halted; }
uint64_t World::events_run() const { return impl_->loop.events_run; }
size_t World::pending_events() const { return impl_->loop.events.size(); }

absl::Status World::Partition(const std::vector<HostId>& from, const std::vector<HostId>& to,
                              bool one_way) {
  if (absl::Status s = impl_->faults.CheckGroups(from, to); !s.ok()) return s;
  impl_->net.AddBlocks(from, to, one_way, +1);
  impl_->Record(kNoHost, TraceKind::kFault,
                absl::StrCat("scripted partition ", impl_->faults.Group(from),
                             one_way ? " -> " : " <-> ", impl_->faults.Group(to)));
  return absl::OkStatus();
}

absl::Status World::Heal(const std::vector<HostId>& a, const std::vector<HostId>& b) {
  if (absl::Status s = impl_->faults.CheckGroups(a, b); !s.ok()) return s;
  for (HostId x : a) {
    for (HostId y : b) {
      impl_->net.blocked.erase(Network::Dir(x, y));
      impl_->net.blocked.erase(Network::Dir(y, x));
    }
  }
  impl_->Record(
      kNoHost, TraceKind::kFault,
      absl::StrCat("scripted heal ", impl_->faults.Group(a), " <-> ", impl_->faults.Group(b)));
  impl_->net.Kick();
  return absl::OkStatus();
}

void World::HealAll() { impl_->faults.HealAll("scripted"); }

absl::Status World::Clog(HostId from, HostId to, absl::Duration d) {
  if (!impl_->ValidHost(from) || !impl_->ValidHost(to)) {
    return absl::InvalidArgumentError("sim: Clog: unknown host id");
  }
  if (from == to) return absl::InvalidArgumentError("sim: Clog needs two different hosts");
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: Clog needs a finite duration >= 0, got ", absl::FormatDuration(d)));
  }
  impl_->faults.Clog(from, to, d, "scripted");
  return absl::OkStatus();
}

SimDisk& World::disk(HostId host) { return HostDisk(*impl_, host); }

absl::Status World::LosePower(HostId host) { return PowerOff(host); }

absl::Status World::Reset(Connection& c) {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: Reset: not a simulated connection");
  if (*sc->world_ref() != impl_.get()) {
    return absl::InvalidArgumentError("sim: Reset: a connection of another world");
  }
  Link* link = sc->link();
  if (link == nullptr || sc->fate() != SimConnection::Fate::kLive) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: Reset: conn#", sc->stream_id(), " has already ended"));
  }
  impl_->Record(link->host[sc->side()], TraceKind::kFault,
                absl::StrCat("scripted reset of conn#", link->id));
  impl_->net.ResetFrom(*link, sc->side(), "scripted");
  return absl::OkStatus();
}

absl::Status World::Crash(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Crash: unknown host id");
  if (!impl_->hosts[host.value].up()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", impl_->hosts[host.value].name, "' is already down"));
  }
  impl_->faults.Kill(host, HostDeath::kProcessCrash, "scripted");
  return absl::OkStatus();
}

absl::Status World::PowerOff(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: PowerOff: unknown host id");
  if (!impl_->hosts[host.value].up()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", impl_->hosts[host.value].name, "' is already down"));
  }
  impl_->faults.Kill(host, HostDeath::kPowerOff, "scripted");
  return absl::OkStatus();
}

absl::Status World::Restart(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Restart: unknown host id");
  if (impl_->hosts[host.value].up()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", impl_->hosts[host.value].name, "' is up"));
  }
  impl_->faults.Restart(host, "scripted");
  return absl::OkStatus();
}

void World::SetRestartHook(HostId host, std::function<void()> hook) {
  impl_->host(host).restart_hook = std::move(hook);
}

void World::SetCrashable(HostId host, bool crashable) { impl_->host(host).crashable = crashable; }
bool World::IsCrashable(HostId host) const { return impl_->host(host).crashable; }
bool World::IsFreezable(HostId host) const { return impl_->host(host).freezable; }
bool World::IsClockSkewable(HostId host) const { return impl_->host(host).skewable; }

void World::StopFaults() { impl_->faults.Stop(); }

bool World::faults_stopped() const { return impl_->decider.stopped(); }

namespace {
SimConnection* OwnConnection(WorldParts& w, Connection& c) {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr || *sc->world_ref() != &w) return nullptr;
  return sc;
}

absl::Status CheckStallDuration(absl::Duration d) {
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: a stall needs a duration > 0, got ", absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status World::SetFlapping(HostId host, Flap flap) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: SetFlapping: unknown host");
  if (flap.kind != Flap::Kind::kOff && flap.kind != Flap::Kind::kAtOnce && flap.count == 0) {
    return absl::InvalidArgumentError("sim: SetFlapping: a count of bytes or round trips >= 1");
  }
  impl_->host(host).flap = flap;
  impl_->Record(
      host, TraceKind::kFault,
      flap.kind == Flap::Kind::kOff
          ? std::string("scripted flapping off")
          : absl::StrCat("scripted flapping ",
                         flap.kind == Flap::Kind::kAtOnce       ? "at once"
                         : flap.kind == Flap::Kind::kAfterBytes ? "after bytes "
                                                                : "after round trips ",
                         flap.kind == Flap::Kind::kAtOnce ? "" : absl::StrCat(flap.count)));
  return absl::OkStatus();
}

absl::Status World::StopReading(HostId host, absl::Duration d) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: StopReading: unknown host");
  if (absl::Status s = CheckStallDuration(d); !s.ok()) return s;
  impl_->faults.StopReading(host, d, "scripted");
  return absl::OkStatus();
}

absl::Status World::ResumeReading(HostId host) {
  if (!impl_->ValidHost(host)) {
    return absl::InvalidArgumentError("sim: ResumeReading: unknown host");
  }
  impl_->faults.ResumeReading(host, "scripted");
  return absl::OkStatus();
}

absl::Status World::StopReading(Connection& c, absl::Duration d) {
  SimConnection* sc = OwnConnection(*impl_, c);
  if (sc == nullptr)
    return absl::InvalidArgumentError("sim: StopReading: not a connection of this world");
  if (absl::Status s = CheckStallDuration(d); !s.ok()) return s;
  impl_->faults.StopReading(*sc, d, "scripted");
  return absl::OkStatus();
}

absl::Status World::ResumeReading(Connection& c) {
  SimConnection* sc = OwnConnection(*impl_, c);
  if (sc == nullptr) {
    return absl::InvalidArgumentError("sim: ResumeReading: not a connection of this world");
  }
  impl_->faults.ResumeReading(*sc, "scripted");
  return absl::OkStatus();
}

absl::Status World::Freeze(HostId host, absl::Duration d) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Freeze: unknown host");
  const Host& h = impl_->host(host);
  if (!h.up())
    return absl::FailedPreconditionError(absl::StrCat("sim: host '", h.name, "' is down"));
  if (h.frozen) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", h.name, "' is already frozen"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sim: Freeze needs a duration > 0");
  }
  impl_->faults.Freeze(host, d, "scripted");
  return absl::OkStatus();
}

absl::Status World::Resume(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Resume: unknown host");
  const Host& h = impl_->host(host);
  if (!h.frozen || h.thaw_scheduled) {
    return absl::FailedPreconditionError(absl::StrCat("sim: host '", h.name, "' is not frozen"));
  }
  impl_->faults.Resume(host, "scripted");
  return absl::OkStatus();
}

bool World::IsFrozen(HostId host) const {
  NETLAYER_ASSERT(impl_->ValidHost(host), "HostId does not belong to this world");
  const Host& h = impl_->hosts[host.value];
  return h.frozen && !h.thaw_scheduled;
}

void World::SetFreezable(HostId host, bool freezable) { impl_->host(host).freezable = freezable; }

absl::Status World::SetClock(HostId host, absl::Duration offset, double drift_ppm) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: SetClock: unknown host");
  if (!(drift_ppm >= -1000 && drift_ppm <= 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: SetClock: drift must be within +-1000 ppm, got ", drift_ppm));
  }
  if (offset == absl::InfiniteDuration() || offset == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("sim: SetClock: the offset must be finite");
  }
  return impl_->faults.SetClock(host, offset, static_cast<int64_t>(drift_ppm * 1000), "scripted");
}

absl::Status World::StepClock(HostId host, absl::Duration d) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: StepClock: unknown host");
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "sim: StepClock: a finite step >= 0 (clocks only go forward)");
  }
  impl_->faults.StepClock(host, d, "scripted");
  return absl::OkStatus();
}

absl::Time World::HostNow(HostId host) const { return impl_->host(host).env->Now(); }

absl::Duration World::FrozenTime(HostId host) const {
  const Host& h = impl_->host(host);
  return h.frozen_total +
         (h.frozen && !h.thaw_scheduled ? impl_->loop.now - h.frozen_since : absl::ZeroDuration());
}

absl::Duration World::ClockStepped(HostId host) const { return impl_->host(host).stepped_total; }

void World::SetClockSkewable(HostId host, bool skewable) {
  Host& h = impl_->host(host);
  const bool was = h.skewable;
  h.skewable = skewable;
  if (skewable && !was) impl_->faults.SkewFromProfile(host);
}

absl::StatusOr<uint64_t> World::ConnectionId(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  return sc->stream_id();
}

absl::StatusOr<std::shared_ptr<ConnectionHandler>> World::InstalledHandler(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  // Read the slot by swapping it out and back: nothing is delivered by ConnectionState here.
  std::shared_ptr<ConnectionHandler> installed = sc->state().SetHandler(nullptr);
  sc->state().SetHandler(installed);
  return installed;
}

absl::StatusOr<size_t> World::InFlightBytes(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  if (sc->link() == nullptr) return size_t{0};
  return sc->link()->pipe[sc->side()].bytes;
}

size_t World::LiveConnections() const { return impl_->net.links.size(); }

void World::Note(HostId host, std::string_view text) {
  impl_->Record(host, TraceKind::kApp, std::string(text));
}

ProbeSink& World::probes() { return *probes_; }

const Trace& World::trace() const { return impl_->trace; }
Trace& World::trace() { return impl_->trace; }

}  // namespace netlayer::sim
