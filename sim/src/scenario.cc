#include "netlayer/sim/scenario.h"

#include <charconv>
#include <cstdlib>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"

namespace netlayer::sim {

void ScenarioContext::Fail(std::string invariant, std::string detail) {
  if (failed_ || checks_ended_) return;  // the first failure is the one that counts
  failed_ = true;
  // Recorded in the trace by RunScenario once the run stops (Fail may be called from inside a
  // trace observer, i.e. from inside Trace::Add).
  failure_ = Failure{std::move(invariant), std::move(detail), world_.Elapsed()};
}

void ScenarioContext::Check(bool ok, std::string_view invariant,
                            const std::function<std::string()>& detail) {
  if (!ok) Fail(std::string(invariant), detail ? detail() : std::string());
}

void ScenarioContext::Eventually(std::string invariant, std::function<bool()> holds,
                                 std::function<std::string()> describe) {
  NETLAYER_ASSERT(holds != nullptr, "Eventually needs a condition");
  liveness_.push_back(Liveness{std::move(invariant), std::move(holds), std::move(describe)});
}

void ScenarioContext::ObserveTrace(std::function<void(const TraceEvent&)> observer) {
  observers_.push_back(std::move(observer));
}

bool ScenarioContext::AllEventuallyHold() const {
  for (const Liveness& l : liveness_) {
    if (!l.holds()) return false;
  }
  return true;
}

void ScenarioContext::FailUnmetEventually(absl::Duration bound) {
  for (const Liveness& l : liveness_) {
    if (!l.holds()) {
      Fail(absl::StrCat("liveness: ", l.invariant),
           absl::StrCat("not true ", absl::FormatDuration(bound), " after faults stopped",
                        l.describe ? absl::StrCat(": ", l.describe()) : std::string()));
      return;
    }
  }
}

void ScenarioContext::Dispatch(const TraceEvent& event) {
  for (auto& observer : observers_) observer(event);
}

std::string ScenarioResult::ReplayCommand() const {
  std::string command =
      choices_file.empty() ? absl::StrCat(program, " run ", scenario, " --seed ", seed)
                           : absl::StrCat(program, " run ", scenario, " --choices ", choices_file);
  if (!planted_bug.empty()) absl::StrAppend(&command, " --plant ", planted_bug);
  if (!buggify) absl::StrAppend(&command, " --no-buggify");
  return command;
}

std::string ScenarioResult::Summary() const {
  return absl::StrFormat("%s %s seed=%d hash=%016x trace_events=%d simulated=%s",
                         passed ? "PASS" : "FAIL", scenario, seed, trace_hash, trace_events,
                         absl::FormatDuration(simulated));
}

std::string ScenarioResult::Report() const {
  std::string out = Details();
  if (!passed) {
    absl::StrAppend(&out, "\n  faults:    ", profile_summary);
    if (!drawn_options.empty()) absl::StrAppend(&out, "\n  drawn:     ", drawn_options);
    absl::StrAppend(&out, "\n  replay:    ", ReplayCommand());
  }
  return out;
}

std::string ScenarioResult::Details() const {
  std::string out = Summary();
  if (passed) return out;
  absl::StrAppend(&out, "\n  invariant: ", invariant,
                  "\n  at:        t=", absl::FormatDuration(failed_at), "\n  detail:    ", detail,
                  "\n  profile:   ", profile, "\n  last trace events:");
  for (const TraceEvent& e : last_events) absl::StrAppend(&out, "\n    ", e.HumanLine());
  return out;
}

void CombinedHash::Add(uint64_t seed, uint64_t trace_hash) {
  // splitmix64's finaliser over (seed, hash): a sum of well-mixed terms does not cancel by
  // accident, and addition makes the result independent of completion order.
  uint64_t z = trace_hash ^ (seed * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  value_ += z ^ (z >> 31);
}

std::string CombinedHash::Hex() const { return absl::StrFormat("%016x", value_); }

std::optional<SeedRange> ShardOf(SeedRange range, uint64_t k, uint64_t n) {
  NETLAYER_ASSERT(n >= 1 && k >= 1 && k <= n && n <= 1'000'000,
                  "a shard is k/n with 1 <= k <= n <= 10^6");
  const uint64_t size = range.size();  // <= 10^9 (ParseSeedRange), n <= 10^6: no overflow
  const uint64_t begin = (k - 1) * size / n;
  const uint64_t end = k * size / n;
  if (begin == end) return std::nullopt;
  return SeedRange{range.first + begin, range.first + end - 1};
}

ScenarioResult RunScenario(std::string_view name, std::unique_ptr<Scenario> owned,
                           const ScenarioOptions& options) {
  NETLAYER_ASSERT(owned != nullptr, "RunScenario needs a scenario");
  Scenario& scenario = *owned;
  WorldOptions world_options;
  world_options.seed = options.seed;
  world_options.profile = scenario.Profile(options.seed);
  world_options.trace_capacity = std::max<size_t>(options.trace_capacity, options.report_events);
  scenario.ConfigureWorld(options, world_options);
  world_options.buggify = options.buggify;
  world_options.record_tape = options.record_tape;
  world_options.replay_tape = options.replay_tape;
  world_options.choices = options.choices;
  world_options.record_choices = options.record_choices;
  if (options.record_tape != nullptr) {
    *options.record_tape = FaultTape{
        std::string(name), options.seed, options.planted_bug, world_options.profile.Describe(), {}};
  }
  World world(world_options);
  ScenarioContext ctx(world, options);
  // Probes count from Setup to TearDown (the world installs its sink while it runs events too).
  // A unique_ptr, not an optional: g++ 12 under -fsanitize=thread warns (maybe-uninitialized,
  // a false positive) on an optional ScopedProbeSink reset before the end of the scope.
  auto probe_scope = std::make_unique<ScopedProbeSink>(&world.probes());
  world.trace().SetSink([&](const TraceEvent& event) {
    if (options.trace_sink) options.trace_sink(event);
    ctx.Dispatch(event);
  });

  // Library log lines during the run carry the virtual time (the core logging hook).
  SetLogStamp([&world] { return absl::StrCat("[t=", absl::FormatDuration(world.Elapsed()), "]"); });
  scenario.Setup(ctx);
  auto failed = [&] { return ctx.failed() || !world.status().ok(); };
  if (!failed()) world.RunUntil(failed, world.start() + scenario.FaultPhase());
  if (!failed()) {
    world.StopFaults();
    scenario.OnFaultsStopped(ctx);
    const absl::Time deadline = world.Now() + scenario.LivenessBound();
    world.RunUntil([&] { return failed() || ctx.AllEventuallyHold(); }, deadline);
    if (!failed() && !ctx.AllEventuallyHold()) ctx.FailUnmetEventually(scenario.LivenessBound());
  }
  if (!failed()) scenario.Finish(ctx);
  if (!ctx.failed() && !world.status().ok()) {
    // The world halts for its event budget, or when its promise checker saw a broken promise.
    const bool promise = absl::StrContains(world.status().message(), "promise ");
    const bool unreachable = absl::StartsWith(world.status().message(), "unreachable probe ");
    ctx.Fail(promise       ? "the connection promises hold"
             : unreachable ? "no unreachable probe is reached"
                           : "the world ran within its event budget",
             world.status().ToString());
  }

  if (ctx.failed()) {
    world.trace().Add(
        world.Elapsed(), "-", TraceKind::kWorld,
        absl::StrCat("invariant failed: ", ctx.failure().invariant, ": ", ctx.failure().detail));
  }
  ScenarioResult result;
  result.scenario = std::string(name);
  result.seed = options.seed;
  result.planted_bug = options.planted_bug;
  result.buggify = options.buggify;
  result.choices_file = options.choices_file;
  result.program = options.program;
  result.passed = !ctx.failed();
  result.profile = world.profile().ToString();
  FaultScope scope{false, false, false};
  for (HostId h : world.Hosts()) {
    scope.crash = scope.crash || world.IsCrashable(h);
    scope.freeze = scope.freeze || world.IsFreezable(h);
    scope.clock = scope.clock || world.IsClockSkewable(h);
  }
  result.profile_summary = world.profile().Describe(scope);
  if (ctx.failed()) {
    result.invariant = ctx.failure().invariant;
    result.detail = ctx.failure().detail;
    result.failed_at = ctx.failure().at;
    result.last_events = world.trace().Last(options.report_events);
  }
  result.trace_hash = world.trace().hash();
  result.trace_events = world.trace().count();
  result.events_run = world.events_run();
  result.simulated = world.Elapsed();
  result.drawn_options = scenario.DrawnOptions();
  // The application stops while the world still runs; observers belong to the scenario: detach
  // them, then destroy the application objects before the world they run in.
  ctx.EndChecks();
  scenario.TearDown(ctx);
  world.trace().SetSink(nullptr);
  // Probes reached while the application stops count too (a close's linger, calls failed at a
  // close); the application is destroyed outside the run.
  result.probes = world.probes().Hits();
  result.buggify_sites = world.probes().EnabledBuggifySites();
  probe_scope.reset();
  owned.reset();
  SetLogStamp(nullptr);
  return result;
}

absl::Status ScenarioRegistry::Add(ScenarioInfo info) {
  if (info.name.empty() || !info.make) {
    return absl::InvalidArgumentError("a scenario needs a name and a maker");
  }
  for (const ScenarioInfo& s : scenarios_) {
    if (s.name == info.name) {
      return absl::AlreadyExistsError(
          absl::StrCat("scenario '", info.name, "' is registered twice"));
    }
  }
  scenarios_.push_back(std::move(info));
  return absl::OkStatus();
}

absl::StatusOr<const ScenarioInfo*> ScenarioRegistry::Find(std::string_view name) const {
  std::vector<std::string> names;
  for (const ScenarioInfo& s : scenarios_) {
    if (s.name == name) return &s;
    names.push_back(s.name);
  }
  return absl::NotFoundError(absl::StrCat("no scenario named '", std::string(name),
                                          "'; known: ", absl::StrJoin(names, ", ")));
}

namespace {
absl::StatusOr<uint64_t> ParseSeed(std::string_view text, std::string_view whole) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seeds '", std::string(whole), "': expected a number N or a range A..B (decimal)"));
  }
  return value;
}
}  // namespace

absl::StatusOr<SeedRange> ParseSeedRange(std::string_view text) {
  size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    auto seed = ParseSeed(text, text);
    if (!seed.ok()) return seed.status();
    return SeedRange{*seed, *seed};
  }
  auto first = ParseSeed(text.substr(0, dots), text);
  if (!first.ok()) return first.status();
  auto last = ParseSeed(text.substr(dots + 2), text);
  if (!last.ok()) return last.status();
  if (*last < *first) {
    return absl::InvalidArgumentError(
        absl::StrCat("seeds '", std::string(text), "': the range ends before it starts"));
  }
  if (*last - *first >= 1'000'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("seeds '", std::string(text), "': more than 10^9 seeds"));
  }
  return SeedRange{*first, *last};
}

absl::StatusOr<SeedRange> SeedsFromEnvironment(SeedRange fallback) {
  if (const char* one = std::getenv("NETLAYER_SEED"); one != nullptr && *one != '\0') {
    auto range = ParseSeedRange(one);
    if (!range.ok()) return range.status();
    if (range->first != range->last) {
      return absl::InvalidArgumentError("NETLAYER_SEED takes one seed; use NETLAYER_SEEDS=a..b");
    }
    return range;
  }
  if (const char* many = std::getenv("NETLAYER_SEEDS"); many != nullptr && *many != '\0') {
    return ParseSeedRange(many);
  }
  return fallback;
}

}  // namespace netlayer::sim
