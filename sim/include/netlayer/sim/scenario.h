// Scenarios: whole client/server runs in a simulated World, replayable from a seed.
//
// A Scenario declares hosts, starts servers and clients on them (application code written
// against core/, smac/ and rpc/ only, so it can run on posix too), drives a workload, and states
// invariants:
//   - safety checks, evaluated as events happen (ScenarioContext::Fail / Check, and trace
//     observers that see every trace event the moment it is recorded);
//   - liveness checks (ScenarioContext::Eventually), which must all hold within the scenario's
//     liveness bound after the fault phase ends (faults stop, partitions heal, hosts restart).
// A failed invariant stops the run at once; the result names the seed, the virtual time, the
// invariant, and the last trace events, and gives the one command that replays it.
//
// A run: World(seed, Profile(seed)) -> Setup -> run the fault phase -> StopFaults ->
// OnFaultsStopped -> run until every Eventually holds (or the bound passes) -> Finish ->
// TearDown (always) -> the scenario is destroyed, then the world.
//
// Thread rules: single-threaded, like the World.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/trace.h"
#include "netlayer/sim/world.h"

namespace netlayer::sim {

struct ScenarioOptions {
  uint64_t seed = 1;
  // A deliberately broken behaviour to plant (scenario-specific names, e.g.
  // "drop-first-byte-of-split-frame"), to prove that the invariants catch it. Empty: none.
  std::string planted_bug;
  // Every trace event is also passed here as it is recorded (e.g. to write a trace file).
  Trace::Sink trace_sink;
  // Trace events kept in memory for the failure report.
  size_t trace_capacity = 4096;
  // Trace events shown in a failure report.
  size_t report_events = 25;
  // The command that replays a run, as the user would type it (ScenarioResult::ReplayCommand):
  // the scenario tool's argv[0] when it runs through netlayer::sim::Main.
  std::string program = "netlayer-sim";
  // Record the run's fault decisions (its header too: scenario, seed, plant, profile), or take
  // them from a tape instead of the seed (fault_tape.h). Both outlive the run.
  FaultTape* record_tape = nullptr;
  const FaultTape* replay_tape = nullptr;
  // NETLAYER_BUGGIFY sites may fire (core/probe.h; WorldOptions::buggify). On by default, as in
  // FoundationDB's simulation: a sweep's runs take the rare paths the sites open.
  bool buggify = true;
  // A scenario that records its clients' history (docs/HISTORY.md) passes it here, as JSON
  // lines, at the end of the run (ScenarioContext::WriteHistory). Empty: not wanted.
  std::function<void(std::string_view history_jsonl)> history_sink;
  // A choice string (choices.h; WorldOptions::choices) instead of the seed's draws: `seed` must
  // be ChoiceSeed(*choices). `record_choices` receives what the run drew. Both outlive the run.
  // `choices_file` names the file the choices come from, for the replay command.
  const std::string* choices = nullptr;
  ChoiceRecord* record_choices = nullptr;
  std::string choices_file;
};

// A bug a scenario can plant (ScenarioOptions::planted_bug), declared by Scenario::Plants.
struct Plant {
  std::string name;
  std::string description;  // one line
};

class ScenarioContext;

class Scenario {
 public:
  virtual ~Scenario() = default;
  // The world's network and fault mix for `seed`. Default: DrawFaultProfile(seed).
  virtual FaultProfile Profile(uint64_t seed) { return DrawFaultProfile(seed); }
  // The rest of the world's options, before the world is made (seed and profile are set): e.g.
  // connection limits, or a bug planted below the application (options.planted_bug).
  virtual void ConfigureWorld(const ScenarioOptions& /*options*/, WorldOptions& /*world*/) {}
  // How long random faults run before the liveness phase.
  virtual absl::Duration FaultPhase() const { return absl::Seconds(20); }
  // After faults stop, every Eventually must hold within this.
  virtual absl::Duration LivenessBound() const { return absl::Seconds(30); }
  // Declare hosts, start servers and clients, schedule the workload, register observers.
  virtual void Setup(ScenarioContext& ctx) = 0;
  // The fault phase has ended (World::StopFaults ran): register Eventually checks here.
  virtual void OnFaultsStopped(ScenarioContext& /*ctx*/) {}
  // Every Eventually held: final safety checks (e.g. nothing completed twice).
  virtual void Finish(ScenarioContext& /*ctx*/) {}
  // Always called last, whether the run passed or failed, while the world still runs: stop the
  // workload and close the application (clients, servers) so nothing calls back into the
  // scenario while it is destroyed. Checks made here are ignored.
  virtual void TearDown(ScenarioContext& /*ctx*/) {}

  // The bugs this scenario can plant. The scenario tool refuses any other --plant (exit 2),
  // and `sweep all --plant P` runs only the scenarios that declare P.
  virtual std::vector<Plant> Plants() const { return {}; }
  // Probes (core/probe.h) that a sweep of this scenario must reach: one no run reached fails
  // the sweep, with or without --require-probes.
  virtual std::vector<std::string> RequiredProbes() const { return {}; }
  // Options this run drew from its seed (sim/draw.h: connection limits, rpc options), as one
  // line for the report, beside the fault profile. Called after Setup. Empty: none drawn.
  virtual std::string DrawnOptions() const { return {}; }
};

class ScenarioContext {
 public:
  ScenarioContext(World& world, const ScenarioOptions& options)
      : world_(world), options_(options) {}

  World& world() { return world_; }
  uint64_t seed() const { return options_.seed; }
  // True if `bug` is the planted bug of this run.
  bool planted(std::string_view bug) const { return options_.planted_bug == bug; }

  // A safety invariant does not hold: the run stops after the current event. The first failure
  // is the one reported.
  void Fail(std::string invariant, std::string detail);
  // Fail(invariant, detail()) unless `ok`.
  void Check(bool ok, std::string_view invariant, const std::function<std::string()>& detail);
  bool failed() const { return failed_; }
  // Set by RunScenario before TearDown: later failures are ignored.
  void EndChecks() { checks_ended_ = true; }

  // A liveness invariant: `holds` must be true within the liveness bound after faults stop.
  // `describe` says what is missing, for the failure report.
  void Eventually(std::string invariant, std::function<bool()> holds,
                  std::function<std::string()> describe = {});
  // The run's client history is wanted (ScenarioOptions::history_sink is set).
  bool wants_history() const { return static_cast<bool>(options_.history_sink); }
  // Hands the history (JSON lines) to ScenarioOptions::history_sink, if set.
  void WriteHistory(std::string_view history_jsonl) const {
    if (options_.history_sink) options_.history_sink(history_jsonl);
  }
  // Calls `observer` with every trace event as it is recorded (safety checks on the trace).
  void ObserveTrace(std::function<void(const TraceEvent&)> observer);

  // Used by RunScenario.
  struct Failure {
    std::string invariant;
    std::string detail;
    absl::Duration at;
  };
  const Failure& failure() const { return failure_; }
  bool AllEventuallyHold() const;
  void FailUnmetEventually(absl::Duration bound);
  void Dispatch(const TraceEvent& event);

 private:
  struct Liveness {
    std::string invariant;
    std::function<bool()> holds;
    std::function<std::string()> describe;
  };
  World& world_;
  const ScenarioOptions& options_;
  bool failed_ = false;
  bool checks_ended_ = false;
  Failure failure_;
  std::vector<Liveness> liveness_;
  std::vector<std::function<void(const TraceEvent&)>> observers_;
};

struct ScenarioResult {
  std::string scenario;
  std::string program = "netlayer-sim";  // from ScenarioOptions::program
  uint64_t seed = 0;
  std::string planted_bug;
  bool buggify = true;  // from ScenarioOptions::buggify
  std::string choices_file;  // from ScenarioOptions::choices_file
  bool passed = false;
  // On failure: which invariant, why, when (virtual time since the start).
  std::string invariant;
  std::string detail;
  absl::Duration failed_at;
  // The run's fingerprint and size.
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  uint64_t events_run = 0;
  absl::Duration simulated;
  std::string profile;                  // FaultProfile::ToString(): every field
  std::string profile_summary;          // FaultProfile::Describe(): which faults were on, how hard
  std::vector<TraceEvent> last_events;  // on failure
  std::string drawn_options;            // Scenario::DrawnOptions()
  // The probes the run reached (core/probe.h), sorted by name, and the BUGGIFY sites it enabled.
  std::vector<ProbeHit> probes;
  std::vector<std::string> buggify_sites;

  // "<program> run rpc-faults --seed 17" (with --plant when a bug was planted, --no-buggify when
  // BUGGIFY was off); "<program> run rpc-faults --choices FILE" for a run from a choice file.
  std::string ReplayCommand() const;
  // One line: "PASS rpc-faults seed=17 hash=... events=... simulated=20.5s".
  std::string Summary() const;
  // Summary, and on failure the invariant, time, detail and last events (no replay line).
  std::string Details() const;
  // Details, and on failure the seed's fault profile (Describe) and the replay command.
  std::string Report() const;
};

// A fingerprint of many runs (a sweep, a test over seeds), independent of the order the runs
// finished in: the sum of a mix of each (seed, trace hash). Shards of a sweep combine by Add.
class CombinedHash {
 public:
  CombinedHash() = default;
  // A combined hash read back from its value (a shard's result file).
  static CombinedHash FromValue(uint64_t value) {
    CombinedHash h;
    h.value_ = value;
    return h;
  }
  void Add(uint64_t seed, uint64_t trace_hash);
  void Add(const CombinedHash& other) { value_ += other.value_; }
  uint64_t value() const { return value_; }
  std::string Hex() const;

 private:
  uint64_t value_ = 0;
};

// Runs `scenario` (registered as `name`) once with options.seed. The scenario is destroyed
// before its world, so application objects it holds never outlive the simulated hosts.
ScenarioResult RunScenario(std::string_view name, std::unique_ptr<Scenario> scenario,
                           const ScenarioOptions& options);

// A named scenario maker.
struct ScenarioInfo {
  std::string name;
  std::string description;
  std::function<std::unique_ptr<Scenario>()> make;
};

// Scenarios by name, in registration order (so listings and sweeps are deterministic).
class ScenarioRegistry {
 public:
  // InvalidArgument for an empty name; AlreadyExists for a duplicate.
  absl::Status Add(ScenarioInfo info);
  // NotFound naming the known scenarios.
  absl::StatusOr<const ScenarioInfo*> Find(std::string_view name) const;
  const std::vector<ScenarioInfo>& all() const { return scenarios_; }

 private:
  std::vector<ScenarioInfo> scenarios_;
};

// Seeds [first, last], inclusive.
struct SeedRange {
  uint64_t first = 1;
  uint64_t last = 1;
  uint64_t size() const { return last - first + 1; }
};
// The k-th (1-based) of n disjoint, contiguous slices that cover `range` in order; a slice is
// empty (nullopt) when n exceeds the range's size. REQUIRES: 1 <= k <= n <= 10^6, and a range
// of at most 10^9 seeds (as ParseSeedRange allows).
std::optional<SeedRange> ShardOf(SeedRange range, uint64_t k, uint64_t n);
// "17" or "1..500"; InvalidArgument otherwise (also for last < first, or more than 10^9 seeds).
absl::StatusOr<SeedRange> ParseSeedRange(std::string_view text);
// The seeds a test runs. Precedence: NETLAYER_SEED=n (one seed) wins over NETLAYER_SEEDS=a..b,
// which wins over `fallback`; an empty variable counts as unset. InvalidArgument for a malformed
// variable.
absl::StatusOr<SeedRange> SeedsFromEnvironment(SeedRange fallback);

}  // namespace netlayer::sim
