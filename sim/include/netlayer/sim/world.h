// World: the deterministic network simulator (DESIGN.md §4, docs/SIMULATOR.md).
//
// One thread, virtual time, one generator. Events run in (virtual time, sequence number) order;
// time jumps to the next event. Hosts have names; each has an Env (clock, timers, blocking
// waits), a ClientConnectionFactory and a ServerConnectionFactory that drive the core state
// machines (ConnectionState, ConnectSchedule) on virtual time. Between hosts runs a TCP-like
// byte stream model whose faults delay, stall or break a stream and never drop, duplicate or
// reorder bytes inside a live stream. Everything meaningful goes into the trace, whose hash is
// the run's fingerprint: the same seed and the same scenario give the same hash.
//
// Running: nothing happens until the owner runs the world, with RunFor / RunUntil /
// RunUntilIdle, or through a blocking call (ClientConnectionFactory::ConnectBlocking,
// Listener::Accept, Notification::WaitUntil), which runs the world until its answer is ready
// or its virtual deadline passes. Blocking calls must not be made from inside a callback run by
// the world (a handler, a timer, a connect callback, a restart hook): that is asserted.
//
// A livelock cannot hang a test: after WorldOptions::max_events events the world halts, records
// ResourceExhausted in status(), and every later run returns at once.
//
// Thread rules: a World and everything it hands out are used by one thread (the test's).
// Different worlds share nothing and may run on different threads at once (a parallel sweep).
// Determinism rules followed inside: no hash-container iteration, no pointer ordering, no
// std::*_distribution, no clock reads; randomness comes only from generator().
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/core/generator.h"
#include "netlayer/core/probe.h"
#include "netlayer/sim/choices.h"
#include "netlayer/sim/disk.h"
#include "netlayer/sim/fault_tape.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/trace.h"

namespace netlayer::sim {

// A host of one world, from AddHost or FindHost. Hosts are numbered in the order added.
struct HostId {
  uint32_t value = UINT32_MAX;
  friend auto operator<=>(const HostId&, const HostId&) = default;
};

// How a flapping server drops the connections it accepts (World::SetFlapping; the random
// flap fault draws one per connection).
struct Flap {
  enum class Kind {
    kOff,             // a normal server
    kAtOnce,          // accepted and closed at once (FIN), before the application sees it
    kAfterBytes,      // reset once the server end has received `count` bytes
    kAfterRoundTrips  // reset after the server answered `count` times (an app handshake)
  };
  Kind kind = Kind::kOff;
  uint64_t count = 0;
};

// How far past a time a host's clock may read at the first world tick at which it reaches it.
// World time moves in whole nanoseconds; a host clock that drifts fast (drift > 0, at most
// 1000 ppm) moves up to 2 ns in one of them, so it may step over a deadline's exact nanosecond.
// A host's timer fires at that first tick: on the host's own clock never before its time and at
// most kHostTimerSlack after it (HostClock asserts both). Every deadline invariant of the
// built-in scenarios allows this much, plus the host's freezes and clock steps over the wait
// (FrozenTime, ClockStepped); docs/SIMULATOR.md, "Host clocks".
inline constexpr absl::Duration kHostTimerSlack = absl::Nanoseconds(1);

struct WorldOptions {
  uint64_t seed = 1;
  // The network shape and random faults. Default: a calm network, no random faults.
  FaultProfile profile;
  // Trace events kept in memory (the hash covers all of them regardless).
  size_t trace_capacity = 4096;
  // Hard bound on events run in this world's lifetime; past it the world halts with an error.
  uint64_t max_events = 20'000'000;
  // Limits of every simulated connection's ConnectionState.
  ConnectionLimits connection_limits;
  // Also trace each Env timer firing (on by default; a chatty heartbeat may turn it off).
  bool trace_timers = true;
  // Watch every handler call and write on every connection and stop the world the moment a
  // promise of connection.h is broken (PromiseChecker; docs/SIMULATOR.md). Turn off only for
  // benchmarks: it copies each written byte until it is delivered.
  bool check_promises = true;
  // The fault tape (fault_tape.h): every random fault decision is appended to `record_tape`,
  // or taken from `replay_tape` instead of drawn (a decision it has no entry for is neutral).
  // Both outlive the world.
  FaultTape* record_tape = nullptr;
  const FaultTape* replay_tape = nullptr;
  // NETLAYER_BUGGIFY sites may fire in this world (core/probe.h). Off by default for a bare
  // World; RunScenario turns it on (ScenarioOptions::buggify).
  bool buggify = false;
  // A choice string (choices.h): the world's and the faults' streams take their draws from it
  // (and continue from the seed past its end); `seed` must be ChoiceSeed(*choices). Null: both
  // streams come from the seed. `record_choices` (if set) receives every value each stream drew.
  // Both outlive the world.
  const std::string* choices = nullptr;
  ChoiceRecord* record_choices = nullptr;
};

class World {
 public:
  // Fails InvalidArgument for a bad profile or zero capacities.
  static absl::StatusOr<std::unique_ptr<World>> Create(WorldOptions options);
  // REQUIRES: options valid (asserted); prefer Create for untrusted options.
  explicit World(WorldOptions options);
  // Detaches everything handed out: later calls on a connection, listener or factory of this
  // world fail cleanly (FailedPrecondition / nullptr) instead of touching freed memory.
  // Destructors it runs (of objects owned by pending timers or handlers) may still use an Env or
  // factory of this world: RunAt then schedules nothing and returns 0 (no timer's id),
  // CancelTimer returns false, Connect and Listen fail FailedPrecondition.
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  uint64_t seed() const;
  const FaultProfile& profile() const;
  // The world's generator (xoshiro256**, seeded once with the seed). Scenario code may draw
  // from it too; every draw shifts later ones, deterministically.
  Generator& generator();

  // ---- Time ----
  absl::Time Now() const;
  // Virtual time at creation (the Unix epoch).
  absl::Time start() const;
  absl::Duration Elapsed() const { return Now() - start(); }

  // ---- Hosts ----
  // InvalidArgument for an empty name or one with characters other than [A-Za-z0-9._-];
  // AlreadyExists for a duplicate.
  absl::StatusOr<HostId> AddHost(std::string name);
  // NotFound for an unknown name.
  absl::StatusOr<HostId> FindHost(std::string_view name) const;
  // The accessors below REQUIRE a HostId of this world (asserted).
  const std::string& HostName(HostId host) const;
  bool IsUp(HostId host) const;
  std::vector<HostId> Hosts() const;
  Env& env(HostId host);
  ClientConnectionFactory& client_factory(HostId host);
  ServerConnectionFactory& server_factory(HostId host);

  // ---- Running ----
  // Runs events until pred() is true (checked before each event) or the next event lies past
  // `deadline`; then time moves to `deadline` (if finite and later). Returns pred(). With an
  // infinite deadline and no event left, returns pred() at once (nothing can change it).
  // Asserts if called from inside a callback.
  bool RunUntil(const std::function<bool()>& pred, absl::Time deadline);
  // Runs every event up to Now() + d, then sets the time to it. InvalidArgument if d < 0; the
  // halt error if the event budget ran out.
  absl::Status RunFor(absl::Duration d);
  // Runs until no event is pending. DeadlineExceeded if events remain past Now() + limit
  // (heartbeats keep a world busy forever); the halt error if the budget ran out.
  absl::Status RunUntilIdle(absl::Duration limit = absl::Hours(24));
  // Schedules `fn` in the world at `when` (a scripted action: a fault, a check, a step of the
  // workload). InvalidArgument if `when` is before Now().
  absl::Status At(absl::Time when, absl::AnyInvocable<void() &&> fn);
  // Stops the run (a failed invariant, say), from anywhere, including a callback: status()
  // becomes `why` (an OK status becomes Internal), the trace records it, the current callback
  // finishes, and every later run returns at once. The first reason stays.
  void Stop(absl::Status why);
  // True while the world is running a callback (blocking calls are forbidden then).
  bool InCallback() const;
  // OK, or why the world halted (event budget).
  absl::Status status() const;
  uint64_t events_run() const;
  size_t pending_events() const;

  // ---- Faults (scripted). Each is traced as kind "fault". ----
  // Blocks every direction from a host in `from` to a host in `to`, and back unless `one_way`.
  // Streams stall (bytes wait in the network), connects hang. InvalidArgument: unknown host,
  // empty group, a host in both groups.
  absl::Status Partition(const std::vector<HostId>& from, const std::vector<HostId>& to,
                         bool one_way = false);
  // Removes the blocks between the groups (both directions); stalled streams resume.
  absl::Status Heal(const std::vector<HostId>& a, const std::vector<HostId>& b);
  // Removes every partition and clog.
  void HealAll();
  // Stalls deliveries (and SYNs) from `from` to `to` until Now() + d. InvalidArgument for an
  // unknown host, from == to, or d < 0.
  absl::Status Clog(HostId from, HostId to, absl::Duration d);
  // The end `c` resets its stream (as an abort does): `c` closes now (IsOpen() false) and gets
  // ConnectionClosed(kReset) from the world (unless closed locally); its unread input and its
  // bytes in flight are lost; its RST travels to the peer like any segment (one latency; a clog
  // delays it, a partition in its way loses it: the peer then learns of the reset only from the
  // RST that answers its next bytes). InvalidArgument if `c` is not a connection of this world;
  // FailedPrecondition if its stream has already ended for it.
  absl::Status Reset(Connection& c);
  // The host's process crashes on a live machine: its timers are cancelled, its listeners
  // vanish, its pending connects end (ConnectBlocking fails Unavailable; async ones report
  // nothing: the process is dead), its own ends close silently (no handler is called again) and
  // its kernel closes each of its streams as Linux does: a FIN behind the bytes already in
  // flight (a partition delays it: the kernel retransmits it, so it arrives after the heal), or
  // an RST where input was unread (a partition in its way loses it: an RST is never
  // retransmitted). The kernel keeps answering for the closed sockets: bytes that arrive for
  // them later get an RST (which crosses the network too). Its output queues die with it. While
  // it is down, connects to it are refused. FailedPrecondition if already down.
  absl::Status Crash(HostId host);
  // The host loses power: nothing at all leaves it (no FIN, no RST); its timers and work
  // vanish, its listeners and pending connects end as in Crash. Its peers' connections stay
  // open and silent: their bytes go into the network and are never read (the path fills to the
  // send buffer, then their output queues grow until Write fails), until their own heartbeats
  // or deadlines end them, or its restarted kernel answers their bytes with an RST. SYNs to it
  // are lost. FailedPrecondition if already down.
  absl::Status PowerOff(HostId host);
  // The host (crashed or powered off) comes back up as a new incarnation and its restart hook
  // runs (in the world, at Now()). Its new kernel knows none of its old streams: bytes that
  // arrive for one of them are answered with an RST. FailedPrecondition if it is up.
  absl::Status Restart(HostId host);
  // Called (in the world) each time `host` restarts, so the scenario starts its application
  // again. Replaces an earlier hook.
  void SetRestartHook(HostId host, std::function<void()> hook);
  // The host's disk (disk.h): what its Env::fs() returns. A crash keeps its page cache; a power
  // off (PowerOff) loses what was not synced (the last unsynced write maybe torn).
  SimDisk& disk(HostId host);
  // PowerOff under the disk's older name (kept for one round).
  absl::Status LosePower(HostId host);
  // Whether the random crash and power-failure processes may take this host down (default
  // false).
  void SetCrashable(HostId host, bool crashable);
  // What SetCrashable, SetFreezable and SetClockSkewable set (REQUIRE a host of this world).
  bool IsCrashable(HostId host) const;
  bool IsFreezable(HostId host) const;
  bool IsClockSkewable(HostId host) const;
  // The liveness phase: random faults stop for good, every partition and clog heals and every
  // down host (crashed or powered off) restarts. Scripted faults still work afterwards.
  void StopFaults();
  bool faults_stopped() const;

  // A flapping server: connections accepted at `host`'s listeners from now on are dropped as
  // `flap` says (Flap{} turns it off). Traced as kind "fault" per dropped connection.
  // InvalidArgument for an unknown host.
  absl::Status SetFlapping(HostId host, Flap flap);
  // The receive side of every connection of `host` (or of the end `c`) stops draining for `d`
  // (InfiniteDuration: until ResumeReading or StopFaults): arriving bytes wait in the network up
  // to the send buffer, then the sender's output queue grows until its bound fails Write.
  // InvalidArgument for an unknown host or a connection of another world, or d <= 0.
  absl::Status StopReading(HostId host, absl::Duration d = absl::InfiniteDuration());
  absl::Status ResumeReading(HostId host);
  absl::Status StopReading(Connection& c, absl::Duration d = absl::InfiniteDuration());
  absl::Status ResumeReading(Connection& c);
  // The host's process stops (SIGSTOP, a long GC pause) for `d` (InfiniteDuration: until
  // Resume or StopFaults): its timers, handlers, deadline checks and connect steps wait and run,
  // in order, when it resumes (a timer due meanwhile fires then); it sends nothing from its
  // output queues; its sockets still take bytes up to the buffer. FailedPrecondition if the
  // host is down or already frozen.
  absl::Status Freeze(HostId host, absl::Duration d = absl::InfiniteDuration());
  // FailedPrecondition if the host is not frozen. What waited runs at Now(), in the world.
  absl::Status Resume(HostId host);
  bool IsFrozen(HostId host) const;
  // Whether the random freeze process may freeze this host (default false).
  void SetFreezable(HostId host, bool freezable);
  // The host's clock: its Env::Now() is world time + offset + drift (ppm, |drift| <= 1000) from
  // now on, never going backwards (FailedPrecondition if `offset` would take it back); its
  // timers fire when its own clock reaches their time. InvalidArgument for a bad drift.
  absl::Status SetClock(HostId host, absl::Duration offset, double drift_ppm);
  // The host's clock jumps forward by `d` (an NTP step); its timers due by then fire now.
  absl::Status StepClock(HostId host, absl::Duration d);
  // The host's clock (what its Env::Now() returns).
  absl::Time HostNow(HostId host) const;
  // World time the host has spent frozen so far (the current freeze included), and the sum of
  // its forward clock steps so far. A deadline the host keeps on its own clock may be met late
  // by the growth of both over the wait: invariants about deadlines allow for them.
  absl::Duration FrozenTime(HostId host) const;
  absl::Duration ClockStepped(HostId host) const;
  // Whether this host's clock may be skewed by the profile (offset, drift, steps; default
  // false). Turning it on draws the host's offset and drift from the profile.
  void SetClockSkewable(HostId host, bool skewable);

  // ---- Introspection ----
  // The stream id of a sim connection ("conn#<id>" in the trace); InvalidArgument otherwise.
  absl::StatusOr<uint64_t> ConnectionId(Connection& c) const;
  // Bytes of `c`'s outgoing direction inside the network (sent, not yet read by the peer).
  absl::StatusOr<size_t> InFlightBytes(Connection& c) const;
  // The handler `c` delivers to, as installed: with check_promises on, the promise checker's
  // checking handler around the application's (nullptr if none is set). Calling it is delivering
  // to `c` as the world does: the promise checker's tests play a broken delivery path with it.
  // InvalidArgument if `c` is not a connection of this world.
  absl::StatusOr<std::shared_ptr<ConnectionHandler>> InstalledHandler(Connection& c) const;
  // Streams not yet ended.
  size_t LiveConnections() const;

  // ---- Trace ----
  // Records an application event on `host`.
  void Note(HostId host, std::string_view text);
  const Trace& trace() const;
  Trace& trace();

  // ---- Probes (core/probe.h) ----
  // This world's probe counts and BUGGIFY decisions. The world installs it as the thread's
  // probe sink while it runs events (RunScenario for the whole run); an UNREACHABLE probe
  // reached stops the world (status Internal "unreachable probe 'NAME' reached").
  ProbeSink& probes();

 private:
  struct Impl;  // world.cc: the simulator's parts composed (sim/src, private to the library)

  std::unique_ptr<ProbeSink> probes_;  // outlives impl_
  std::unique_ptr<Impl> impl_;
};

}  // namespace netlayer::sim
