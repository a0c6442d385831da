// netlayer::sim::Main: the scenario tool's commands (sim_main.h). This file is the one part of
// sim/ that is not simulated code: it forks workers, starts fresh processes, reads the wall clock
// for progress lines and the hardware's core count. It drives runs; it never runs inside one.
#include "netlayer/sim/sim_main.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>  // NOLINT(determinism): the CLI spawns worker processes, not simulated code

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>  // hardware_concurrency only: no thread is started
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "netlayer/core/log.h"
#include "explore.h"
#include "netlayer/sim/choices.h"
#include "netlayer/sim/timeline.h"

extern char** environ;

namespace netlayer::sim {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// Trace events kept for a timeline; a longer run's timeline shows the first this many.
constexpr size_t kTimelineEventLimit = 300000;
constexpr int kMaxJobs = 256;
constexpr uint64_t kMaxShards = 1'000'000;
constexpr char kSweepFormat[] = "netlayer-sweep-1";

struct UsageError {
  std::string message;
};

// What every command needs: the registry and the name replay commands start with.
struct Tool {
  const ScenarioRegistry& registry;
  std::string program;

  std::vector<const ScenarioInfo*> Select(const std::string& name) const {
    std::vector<const ScenarioInfo*> out;
    if (name == "all") {
      for (const ScenarioInfo& s : registry.all()) out.push_back(&s);
      return out;
    }
    auto found = registry.Find(name);
    if (!found.ok()) throw UsageError{std::string(found.status().message())};
    out.push_back(*found);
    return out;
  }

  std::string Replay(const std::string& scenario, uint64_t seed, const std::string& plant,
                     bool buggify) const {
    std::string out = absl::StrCat(program, " run ", scenario, " --seed ", seed);
    if (!plant.empty()) absl::StrAppend(&out, " --plant ", plant);
    if (!buggify) absl::StrAppend(&out, " --no-buggify");
    return out;
  }

  // The scenarios that run with `plant`: all of `scenarios` when it is empty; else those that
  // declare it (Scenario::Plants). A plant that none of them declares is a usage error naming
  // the known ones. With one scenario named (not `all`), that scenario must declare it.
  std::vector<const ScenarioInfo*> WithPlant(const std::vector<const ScenarioInfo*>& scenarios,
                                             const std::string& plant) const {
    if (plant.empty()) return scenarios;
    std::vector<const ScenarioInfo*> out;
    std::vector<std::string> known;
    for (const ScenarioInfo* s : scenarios) {
      bool declares = false;
      for (const Plant& p : s->make()->Plants()) {
        declares = declares || p.name == plant;
        known.push_back(scenarios.size() > 1 ? absl::StrCat(p.name, " (", s->name, ")") : p.name);
      }
      if (declares) out.push_back(s);
    }
    if (out.empty()) {
      throw UsageError{absl::StrCat(
          "unknown plant '", plant, "'", scenarios.size() == 1 ? " for " + scenarios[0]->name : "",
          "; known: ", known.empty() ? std::string("(none)") : absl::StrJoin(known, ", "))};
    }
    return out;
  }
};

SeedRange Seeds(const std::string& text) {
  auto range = ParseSeedRange(text);
  if (!range.ok()) throw UsageError{std::string(range.status().message())};
  return *range;
}

std::string RangeText(SeedRange r) { return absl::StrCat(r.first, "..", r.last); }

double Seconds(std::chrono::steady_clock::duration d) {  // NOLINT(determinism): CLI wall time
  return std::chrono::duration<double>(d).count();
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find my own executable");
  return std::string(buf, static_cast<size_t>(n));
}

// ---- run ----

struct RunArgs {
  std::string scenario;
  uint64_t seed = 1;
  std::string trace_file, trace_json_file, timeline_file, plant;
  std::string record_tape_file, tape_file;
  std::string history_file;
  std::string choices_file, write_choices_file;
  bool verbose = false;
  bool no_buggify = false;
};

FaultTape ReadTape(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw UsageError{absl::StrCat("cannot read ", file)};
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<FaultTape> tape = FaultTape::Parse(text.str());
  if (!tape.ok()) throw UsageError{absl::StrCat(file, ": ", tape.status().message())};
  return *std::move(tape);
}

void WriteTape(const std::string& file, const FaultTape& tape) {
  std::ofstream out(file);
  out << tape.Serialize();
  out.close();
  if (!out) throw UsageError{absl::StrCat("cannot write ", file)};
}

std::string ReadFile(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UsageError{absl::StrCat("cannot read ", file)};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw UsageError{absl::StrCat("cannot write ", file)};
}

// A choice file for `scenario` (choices.h). A recorded one must be of that scenario, and names
// the plant and BUGGIFY of its run: a --plant or --no-buggify given too must agree with it.
// Raw bytes take `plant` and `buggify` from the command line.
ChoiceFile LoadChoices(const std::string& file, const std::string& scenario,
                       const std::string& plant, bool buggify) {
  absl::StatusOr<ChoiceFile> parsed = ChoiceFile::Parse(ReadFile(file));
  if (!parsed.ok()) throw UsageError{absl::StrCat(file, ": ", parsed.status().message())};
  if (parsed->scenario.empty()) {
    parsed->scenario = scenario;
    parsed->plant = plant;
    parsed->buggify = buggify;
    return *std::move(parsed);
  }
  if (parsed->scenario != scenario) {
    throw UsageError{absl::StrCat(file, " holds choices of scenario ", parsed->scenario, ", not ",
                                  scenario)};
  }
  if (!plant.empty() && plant != parsed->plant) {
    throw UsageError{absl::StrCat(file, " was recorded with plant '", parsed->plant, "', not '",
                                  plant, "'")};
  }
  if (!buggify && parsed->buggify) {
    throw UsageError{absl::StrCat(file, " was recorded with BUGGIFY on")};
  }
  return *std::move(parsed);
}

int Run(const Tool& tool, const RunArgs& args) {
  ChoiceFile choices;
  if (!args.choices_file.empty()) {
    choices = LoadChoices(args.choices_file, args.scenario, args.plant, !args.no_buggify);
  }
  const std::string& plant = args.choices_file.empty() ? args.plant : choices.plant;
  const ScenarioInfo& info = *tool.WithPlant(tool.Select(args.scenario), plant).at(0);
  std::ofstream trace, trace_json;
  if (!args.trace_file.empty()) {
    trace.open(args.trace_file);
    if (!trace) throw UsageError{absl::StrCat("cannot write ", args.trace_file)};
  }
  if (!args.trace_json_file.empty()) {
    trace_json.open(args.trace_json_file);
    if (!trace_json) throw UsageError{absl::StrCat("cannot write ", args.trace_json_file)};
  }
  std::vector<TraceEvent> kept;
  bool truncated = false;
  ScenarioOptions options;
  options.seed = args.seed;
  options.planted_bug = plant;
  options.program = tool.program;
  options.buggify = !args.no_buggify;
  if (!args.choices_file.empty()) {
    options.seed = ChoiceSeed(choices.bytes);
    options.choices = &choices.bytes;
    options.choices_file = args.choices_file;
    options.buggify = choices.buggify;
  }
  ChoiceRecord drawn;
  if (!args.write_choices_file.empty()) options.record_choices = &drawn;
  FaultTape recorded, replayed;
  if (!args.tape_file.empty()) {
    replayed = ReadTape(args.tape_file);
    if (replayed.seed != options.seed) {
      throw UsageError{absl::StrCat(args.tape_file, " was recorded with seed ", replayed.seed,
                                    ", not ", options.seed)};
    }
    options.replay_tape = &replayed;
  }
  if (!args.record_tape_file.empty()) options.record_tape = &recorded;
  options.trace_sink = [&](const TraceEvent& e) {
    if (trace.is_open()) trace << e.HumanLine() << '\n';
    if (trace_json.is_open()) trace_json << e.JsonLine() << '\n';
    if (args.verbose) std::cout << e.HumanLine() << '\n';
    if (!args.timeline_file.empty()) {
      if (kept.size() < kTimelineEventLimit) {
        kept.push_back(e);
      } else {
        truncated = true;
      }
    }
  };
  bool history_written = false;
  if (!args.history_file.empty()) {
    options.history_sink = [&](std::string_view jsonl) {
      std::ofstream out(args.history_file, std::ios::binary | std::ios::trunc);
      out << jsonl;
      history_written = static_cast<bool>(out);
    };
  }
  const auto start = std::chrono::steady_clock::now();
  ScenarioResult result = RunScenario(info.name, info.make(), options);
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::cout << result.Report() << "\n";
  if (result.passed) {
    std::cout << "faults: " << result.profile_summary << "\n";
    if (!result.drawn_options.empty()) std::cout << "drawn: " << result.drawn_options << "\n";
  }
  if (!result.buggify_sites.empty()) {
    std::cout << "buggify sites enabled: " << absl::StrJoin(result.buggify_sites, " ") << "\n";
  }
  if (options.replay_tape != nullptr) {
    std::cout << "fault decisions from " << args.tape_file << " (" << replayed.faults()
              << " faults)\n";
  }
  if (!args.history_file.empty()) {
    std::cout << (history_written ? "history: "
                                  : "no history written (this scenario records none): ")
              << args.history_file << "\n";
  }
  if (options.choices != nullptr) {
    std::cout << "choices from " << args.choices_file << " (" << choices.bytes.size()
              << " bytes, seed " << options.seed << ")\n";
  }
  if (options.record_choices != nullptr) {
    ChoiceFile out{info.name, plant, options.buggify, EncodeChoices(options.seed, drawn)};
    WriteFile(args.write_choices_file, out.Serialize());
    std::cout << "choices: " << args.write_choices_file << " (" << drawn.streams[0].size()
              << " + " << drawn.streams[1].size() << " draws; replay: " << tool.program << " run "
              << info.name << " --choices " << args.write_choices_file << ")\n";
  }
  if (options.record_tape != nullptr) {
    WriteTape(args.record_tape_file, recorded);
    std::cout << "fault tape: " << args.record_tape_file << " (" << recorded.faults() << " faults, "
              << recorded.entries.size() << " decisions)\n";
  }
  std::cout << absl::StrFormat(
      "trace hash: %016x  (%d trace events, %d events run, %.3f s wall, "
      "simulated/wall %.1fx)\n",
      result.trace_hash, result.trace_events, result.events_run, wall,
      absl::ToDoubleSeconds(result.simulated) / std::max(wall, 1e-9));
  if (!args.timeline_file.empty()) {
    std::ofstream html(args.timeline_file);
    if (!html) throw UsageError{absl::StrCat("cannot write ", args.timeline_file)};
    html << RenderTimeline(result, kept, truncated);
    std::cout << "timeline: " << args.timeline_file << "\n";
  }
  return result.passed ? 0 : kExitFailed;
}

// ---- sweep results (shared by sweep and merge) ----

struct Failure {
  std::string scenario;
  uint64_t seed = 0;
  std::string invariant;
  std::string replay;
  std::string profile;  // the seed's FaultProfile::Describe()
};

struct PerScenario {
  uint64_t seeds = 0, failures = 0;
  int64_t simulated_ns = 0;  // integers, so shards add up to exactly the unsharded total
  CombinedHash hash;
  // Scenario::RequiredProbes, each with the number of this scenario's runs in which it held.
  std::map<std::string, uint64_t> required;
};

// One probe over a sweep (core/probe.h).
struct ProbeTotal {
  std::string kind;           // ProbeKindName
  uint64_t runs_reached = 0;  // runs that evaluated it
  uint64_t runs_held = 0;     // runs in which it held (reachable: reached; BUGGIFY: fired)
  // The first run in which it held, by (scenario in registry order, seed): the same whatever
  // order runs finished in, and across shards.
  std::string first_scenario;
  uint64_t first_seed = 0;
};

// Whether a never-held probe of this kind is a hole (SOMETIMES and REACHABLE only).
bool Requirable(const std::string& kind) { return kind == "sometimes" || kind == "reachable"; }

struct Totals {
  std::vector<std::string> scenarios;  // in registry order
  std::map<std::string, PerScenario> per;
  std::vector<Failure> failures;
  std::map<std::string, ProbeTotal> probes;  // every registered probe, by name

  size_t Rank(const std::string& scenario) const {
    return static_cast<size_t>(std::find(scenarios.begin(), scenarios.end(), scenario) -
                               scenarios.begin());
  }
  // A run (or a shard's totals) in which `name` held, first at (scenario, seed).
  void Held(ProbeTotal& t, const std::string& scenario, uint64_t seed) const {
    if (t.first_scenario.empty() || Rank(scenario) < Rank(t.first_scenario) ||
        (scenario == t.first_scenario && seed < t.first_seed)) {
      t.first_scenario = scenario;
      t.first_seed = seed;
    }
  }
  // Every registered probe, with no run yet.
  void RegisterProbes() {
    for (const ProbeInfo& p : ProbeRegistry::All()) {
      probes[std::string(p.name)].kind = std::string(ProbeKindName(p.kind));
    }
  }
  // Probes a sweep must have reached: with `require_all`, every SOMETIMES and REACHABLE probe;
  // always, each scenario's RequiredProbes. One line each, empty if all were reached.
  std::vector<std::string> Unmet(bool require_all) const {
    std::vector<std::string> out;
    if (require_all) {
      for (const auto& [name, t] : probes) {
        if (Requirable(t.kind) && t.runs_held == 0) out.push_back(name);
      }
    }
    for (const std::string& scenario : scenarios) {
      auto it = per.find(scenario);
      if (it == per.end()) continue;
      for (const auto& [name, runs] : it->second.required) {
        if (runs == 0) out.push_back(absl::StrCat(name, " (required by ", scenario, ")"));
      }
    }
    return out;
  }

  uint64_t runs() const {
    uint64_t n = 0;
    for (const auto& [name, p] : per) n += p.seeds;
    return n;
  }
  // Failures by (scenario in registry order, seed): the same whatever order runs finished in.
  void SortFailures() {
    std::sort(failures.begin(), failures.end(), [&](const Failure& a, const Failure& b) {
      if (a.scenario != b.scenario) return Rank(a.scenario) < Rank(b.scenario);
      return a.seed < b.seed;
    });
  }
};

void PrintFailure(FILE* out, const Failure& f) {
  std::fprintf(out, "FAIL %s seed %llu: %s\n", f.scenario.c_str(),
               static_cast<unsigned long long>(f.seed), f.invariant.c_str());
  if (!f.profile.empty()) std::fprintf(out, "  faults: %s\n", f.profile.c_str());
  std::fprintf(out, "  replay: %s\n", f.replay.c_str());
}

// The part of a sweep's report that a merge of its shards reproduces exactly.
void PrintTotals(const Totals& t) {
  for (const std::string& name : t.scenarios) {
    auto it = t.per.find(name);
    const PerScenario p = it == t.per.end() ? PerScenario() : it->second;
    std::printf("  %-18s %6llu seeds  %4llu failed  simulated %.1f s in total  hash %s\n",
                name.c_str(), static_cast<unsigned long long>(p.seeds),
                static_cast<unsigned long long>(p.failures), p.simulated_ns / 1e9,
                p.hash.Hex().c_str());
  }
  for (const Failure& f : t.failures) PrintFailure(stdout, f);
}

// The probe report: every registered probe, in name order, then the ones no run reached.
void PrintProbes(const Totals& t) {
  const uint64_t runs = t.runs();
  size_t reached = 0;
  std::vector<std::string> holes;
  for (const auto& [name, p] : t.probes) {
    if (p.runs_held > 0) ++reached;
  }
  std::printf("probes: %zu registered, %zu held in some run (of %llu runs)\n", t.probes.size(),
              reached, static_cast<unsigned long long>(runs));
  for (const auto& [name, p] : t.probes) {
    std::string what;
    if (p.kind == "unreachable") {
      what = p.runs_held == 0 ? std::string("never reached (as it must be)")
                              : absl::StrCat("REACHED in ", p.runs_held, " runs");
    } else if (p.kind == "buggify") {
      what = absl::StrCat("fired in ", p.runs_held, " runs, evaluated in ", p.runs_reached);
    } else if (p.kind == "sometimes") {
      what = absl::StrCat("held in ", p.runs_held, " runs, evaluated in ", p.runs_reached);
    } else {
      what = absl::StrCat("reached in ", p.runs_held, " runs");
    }
    if (p.runs_held > 0) {
      absl::StrAppend(&what, "  first ", p.first_scenario, " seed ", p.first_seed);
    } else if (Requirable(p.kind)) {
      holes.push_back(absl::StrCat(name, " (", p.kind, ")"));
    }
    std::printf("  %-46s %-11s %s\n", name.c_str(), p.kind.c_str(), what.c_str());
  }
  if (!holes.empty()) {
    std::printf("NEVER REACHED: %zu probes held in no run (holes in the scenarios):\n",
                holes.size());
    for (const std::string& h : holes) std::printf("  %s\n", h.c_str());
  }
}

// The probes each scenario requires (Scenario::RequiredProbes), with no run yet.
void RegisterRequired(Totals& totals, const std::vector<const ScenarioInfo*>& scenarios) {
  for (const ScenarioInfo* s : scenarios) {
    for (const std::string& name : s->make()->RequiredProbes()) totals.per[s->name].required[name];
  }
}

// Prints what the sweep did not reach; true if that fails it.
bool ProbesUnmet(const Totals& totals, bool require_all) {
  const std::vector<std::string> unmet = totals.Unmet(require_all);
  if (unmet.empty()) return false;
  std::printf("ERROR: %zu required probe%s never reached%s: %s\n", unmet.size(),
              unmet.size() == 1 ? "" : "s", require_all ? " (--require-probes)" : "",
              absl::StrJoin(unmet, ", ").c_str());
  return true;
}

// ---- sweep ----

// One result line from a worker: "<scenario> <seed> <0|1> <hash> <trace events> <simulated ns>
// <invariant>\t<profile>\t<probes>" (the invariant and the profile's description last, they
// may hold spaces; the profile only for a failure; probes as "name=evaluated/held,...", names
// hold no ',', '=', '/' or white space).
std::string EncodeResult(const ScenarioResult& r) {
  auto one_line = [](std::string text) {
    for (char& c : text) {
      if (c == '\n' || c == '\t') c = ' ';
    }
    return text;
  };
  std::string probes;
  for (const ProbeHit& h : r.probes) {
    absl::StrAppend(&probes, probes.empty() ? "" : ",", h.name, "=", h.evaluated, "/", h.held);
  }
  return absl::StrFormat("%s %d %d %016x %d %d %s\t%s\t%s\n", r.scenario, r.seed, r.passed ? 1 : 0,
                         r.trace_hash, r.trace_events, absl::ToInt64Nanoseconds(r.simulated),
                         one_line(r.invariant), r.passed ? "" : one_line(r.profile_summary),
                         probes);
}

struct SweepLine {
  std::string scenario;
  uint64_t seed = 0;
  bool passed = false;
  uint64_t hash = 0;
  int64_t simulated_ns = 0;
  std::string invariant;
  std::string profile;
  std::vector<ProbeHit> probes;  // name, evaluated, held (kind unset)
};

std::optional<SweepLine> DecodeResult(absl::string_view line) {
  std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 6));
  if (f.size() < 6) return std::nullopt;
  SweepLine out;
  out.scenario = std::string(f[0]);
  int passed = 0;
  uint64_t events = 0;
  if (!absl::SimpleAtoi(f[1], &out.seed) || !absl::SimpleAtoi(f[2], &passed) ||
      !absl::SimpleHexAtoi(f[3], &out.hash) || !absl::SimpleAtoi(f[4], &events) ||
      !absl::SimpleAtoi(f[5], &out.simulated_ns)) {
    return std::nullopt;
  }
  out.passed = passed == 1;
  if (f.size() == 7) {
    std::vector<absl::string_view> rest = absl::StrSplit(f[6], absl::MaxSplits('\t', 2));
    out.invariant = std::string(rest[0]);
    if (rest.size() >= 2) out.profile = std::string(rest[1]);
    if (rest.size() == 3 && !rest[2].empty()) {
      for (absl::string_view item : absl::StrSplit(rest[2], ',')) {
        std::vector<absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
        if (kv.size() != 2) return std::nullopt;
        std::vector<absl::string_view> counts = absl::StrSplit(kv[1], '/');
        ProbeHit h;
        h.name = std::string(kv[0]);
        if (counts.size() != 2 || !absl::SimpleAtoi(counts[0], &h.evaluated) ||
            !absl::SimpleAtoi(counts[1], &h.held)) {
          return std::nullopt;
        }
        out.probes.push_back(std::move(h));
      }
    }
  }
  return out;
}

struct SweepArgs {
  std::string scenario, seeds, plant, shard, json_file;
  int jobs = 0;  // 0: one per core
  bool require_probes = false;
  bool no_buggify = false;
};

struct Shard {
  uint64_t k = 1, n = 1;
};

Shard ParseShard(const std::string& text) {
  Shard s;
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &s.k) || !absl::SimpleAtoi(parts[1], &s.n) ||
      s.n < 1 || s.n > kMaxShards || s.k < 1 || s.k > s.n) {
    throw UsageError{
        absl::StrCat("--shard '", text, "': expected K/N with 1 <= K <= N <= ", kMaxShards)};
  }
  return s;
}

struct Job {
  const ScenarioInfo* scenario;
  uint64_t seed;
};

int Sweep(const Tool& tool, const SweepArgs& args) {
  const std::vector<const ScenarioInfo*> scenarios =
      tool.WithPlant(tool.Select(args.scenario), args.plant);
  const bool buggify = !args.no_buggify;
  const SeedRange all_seeds = Seeds(args.seeds);
  const Shard shard = args.shard.empty() ? Shard() : ParseShard(args.shard);
  const std::optional<SeedRange> seeds = ShardOf(all_seeds, shard.k, shard.n);
  int jobs = args.jobs;
  // NOLINT(determinism): the CLI sizes its worker pool; no simulated code sees it.
  if (jobs == 0) jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (jobs < 1 || jobs > kMaxJobs) throw UsageError{absl::StrCat("--jobs must be 1..", kMaxJobs)};
  std::ofstream json_out;
  if (!args.json_file.empty()) {
    json_out.open(args.json_file);
    if (!json_out) throw UsageError{absl::StrCat("cannot write ", args.json_file)};
  }
  const std::string& plant = args.plant;
  std::vector<Job> work;
  if (seeds) {
    for (const ScenarioInfo* s : scenarios) {
      for (uint64_t seed = seeds->first;; ++seed) {
        work.push_back({s, seed});
        if (seed == seeds->last) break;
      }
    }
  }
  jobs = static_cast<int>(std::min<size_t>(jobs, std::max<size_t>(work.size(), 1)));
  const bool tty = isatty(STDERR_FILENO) == 1;
  std::fflush(nullptr);
  // Each worker process runs its list of runs in order (each run single-threaded) and writes one
  // result line per run. A worker that dies (an assertion, a sanitizer report) is detected by its
  // missing results: the run it was in is reported as a crash with its replay command, and a new
  // worker takes the rest of its list.
  struct Worker {
    pid_t pid = -1;
    int fd = -1;
    std::string buffer;
    std::vector<size_t> runs;  // indices into `work`, in order
    size_t reported = 0;
  };
  std::vector<Worker> workers;
  auto spawn = [&](std::vector<size_t> runs) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      close(fds[0]);
      // Workers are quiet: a failure is reported by its result line, with the replay command
      // that shows its log lines. NETLAYER_LOG_LEVEL still sets the level.
      if (std::getenv("NETLAYER_LOG_LEVEL") == nullptr) SetLogLevel(spdlog::level::err);
      for (const Worker& other : workers) {
        if (other.fd >= 0) close(other.fd);
      }
      for (size_t i : runs) {
        ScenarioOptions options;
        options.seed = work[i].seed;
        options.planted_bug = plant;
        options.program = tool.program;
        options.buggify = buggify;
        const std::string line =
            EncodeResult(RunScenario(work[i].scenario->name, work[i].scenario->make(), options));
        for (size_t off = 0; off < line.size();) {
          ssize_t n = write(fds[1], line.data() + off, line.size() - off);
          if (n <= 0) _exit(3);
          off += static_cast<size_t>(n);
        }
      }
      _exit(0);
    }
    close(fds[1]);
    Worker w;
    w.pid = pid;
    w.fd = fds[0];
    w.runs = std::move(runs);
    workers.push_back(std::move(w));
  };
  if (!work.empty()) {
    for (int k = 0; k < jobs; ++k) {
      std::vector<size_t> runs;
      for (size_t i = static_cast<size_t>(k); i < work.size(); i += static_cast<size_t>(jobs)) {
        runs.push_back(i);
      }
      spawn(std::move(runs));
    }
  }

  Totals totals;
  for (const ScenarioInfo* s : scenarios) {
    totals.scenarios.push_back(s->name);
    totals.per[s->name];
  }
  totals.RegisterProbes();
  RegisterRequired(totals, scenarios);
  size_t done = 0;
  bool lost = false;
  const auto start = std::chrono::steady_clock::now();
  auto last_plain = start;
  auto progress = [&](bool final) {
    const double elapsed = Seconds(std::chrono::steady_clock::now() - start);
    const double rate = done / std::max(elapsed, 1e-9);
    const double left = rate > 0 ? (work.size() - done) / rate : 0;
    if (tty) {
      const int width = 30;
      const int filled = static_cast<int>(width * done / std::max<size_t>(work.size(), 1));
      std::fprintf(stderr, "\r[%s%s] %zu/%zu seeds  %zu failed  %.1f seeds/s  %.0fs left   %s",
                   std::string(filled, '#').c_str(), std::string(width - filled, '-').c_str(), done,
                   work.size(), totals.failures.size(), rate, left, final ? "\n" : "");
    } else if (final || Seconds(std::chrono::steady_clock::now() - last_plain) >= 10) {
      last_plain = std::chrono::steady_clock::now();
      std::fprintf(stderr, "progress: %zu/%zu seeds, %zu failed, %.1f seeds/s, %.0fs left\n", done,
                   work.size(), totals.failures.size(), rate, left);
    }
  };
  auto record = [&](const SweepLine& line) {
    ++done;
    PerScenario& p = totals.per[line.scenario];
    ++p.seeds;
    p.simulated_ns += line.simulated_ns;
    p.hash.Add(line.seed, line.hash);
    for (const ProbeHit& h : line.probes) {
      ProbeTotal& t = totals.probes[h.name];
      if (h.evaluated > 0) ++t.runs_reached;
      if (h.held == 0) continue;
      ++t.runs_held;
      totals.Held(t, line.scenario, line.seed);
      if (auto it = p.required.find(h.name); it != p.required.end()) ++it->second;
    }
    if (line.passed) return;
    ++p.failures;
    Failure f{line.scenario, line.seed, line.invariant,
              tool.Replay(line.scenario, line.seed, plant, buggify), line.profile};
    // Each failure shows the moment it happens, above the progress line.
    if (tty) std::fprintf(stderr, "\r%*s\r", 100, "");
    PrintFailure(stderr, f);
    totals.failures.push_back(std::move(f));
  };
  for (;;) {
    std::vector<pollfd> pfds;
    std::vector<size_t> owner;
    for (size_t k = 0; k < workers.size(); ++k) {
      if (workers[k].fd < 0) continue;
      pfds.push_back({workers[k].fd, POLLIN, 0});
      owner.push_back(k);
    }
    if (pfds.empty()) break;
    if (poll(pfds.data(), pfds.size(), 1000) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("poll failed");
    }
    for (size_t p = 0; p < pfds.size(); ++p) {
      if (pfds[p].revents == 0) continue;
      const size_t k = owner[p];
      char buf[4096];
      ssize_t n = read(workers[k].fd, buf, sizeof buf);
      if (n > 0) {
        Worker& w = workers[k];
        w.buffer.append(buf, static_cast<size_t>(n));
        for (size_t nl; (nl = w.buffer.find('\n')) != std::string::npos;) {
          std::optional<SweepLine> line = DecodeResult(absl::string_view(w.buffer).substr(0, nl));
          w.buffer.erase(0, nl + 1);
          if (!line) continue;
          ++w.reported;
          record(*line);
        }
        progress(false);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // End of the worker's output: it finished, or it died in the middle of a run.
      close(workers[k].fd);
      workers[k].fd = -1;
      int status = 0;
      waitpid(workers[k].pid, &status, 0);
      workers[k].pid = -1;
      if (workers[k].reported < workers[k].runs.size()) {
        const Job& crashed = work[workers[k].runs[workers[k].reported]];
        SweepLine line;
        line.scenario = crashed.scenario->name;
        line.seed = crashed.seed;
        line.passed = false;
        line.invariant = WIFSIGNALED(status)
                             ? absl::StrCat("the run crashed (signal ", WTERMSIG(status), ")")
                             : absl::StrCat("the run crashed (exit ", WEXITSTATUS(status), ")");
        record(line);
        std::vector<size_t> rest(workers[k].runs.begin() + workers[k].reported + 1,
                                 workers[k].runs.end());
        if (!rest.empty()) spawn(std::move(rest));
      } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        lost = true;
      }
    }
  }
  progress(true);
  totals.SortFailures();
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::string what = RangeText(all_seeds);
  if (shard.n > 1) {
    what = absl::StrCat("shard ", shard.k, "/", shard.n, ": seeds ",
                        seeds ? RangeText(*seeds) : "(none)", " of ", what);
  }
  std::printf("sweep of %zu runs (%s) with %d jobs in %.2f s (%.1f seeds/s)\n", work.size(),
              what.c_str(), jobs, wall, work.size() / std::max(wall, 1e-9));
  PrintTotals(totals);
  PrintProbes(totals);
  const bool complete = done == work.size() && !lost;
  if (json_out.is_open()) {
    nlohmann::json j;
    j["format"] = kSweepFormat;
    j["program"] = tool.program;
    j["build_id"] = BuildId();
    j["scenarios"] = totals.scenarios;
    j["seeds"] = RangeText(all_seeds);
    j["plant"] = plant;
    j["buggify"] = buggify;
    j["require_probes"] = args.require_probes;
    j["shard"] = {{"k", shard.k}, {"n", shard.n}};
    j["shard"]["seeds"] = seeds ? nlohmann::json(RangeText(*seeds)) : nlohmann::json(nullptr);
    j["complete"] = complete;
    j["runs"] = done;
    j["passed"] = done - totals.failures.size();
    j["failed"] = totals.failures.size();
    j["wall_seconds"] = wall;
    int64_t simulated_ns = 0;
    nlohmann::json per = nlohmann::json::array();
    for (const std::string& name : totals.scenarios) {
      const PerScenario& p = totals.per[name];
      simulated_ns += p.simulated_ns;
      per.push_back({{"scenario", name},
                     {"seeds", p.seeds},
                     {"failed", p.failures},
                     {"simulated_ns", p.simulated_ns},
                     {"hash", p.hash.Hex()},
                     {"required_probes", p.required}});
    }
    j["simulated_ns"] = simulated_ns;
    j["per_scenario"] = per;
    nlohmann::json probes = nlohmann::json::array();
    for (const auto& [name, t] : totals.probes) {
      probes.push_back({{"name", name},
                        {"kind", t.kind},
                        {"runs_reached", t.runs_reached},
                        {"runs_held", t.runs_held},
                        {"first_scenario", t.first_scenario},
                        {"first_seed", t.first_seed}});
    }
    j["probes"] = probes;
    nlohmann::json failures = nlohmann::json::array();
    for (const Failure& f : totals.failures) {
      failures.push_back({{"scenario", f.scenario},
                          {"seed", f.seed},
                          {"invariant", f.invariant},
                          {"replay", f.replay},
                          {"profile", f.profile}});
    }
    j["failures"] = failures;
    json_out << j.dump(2) << "\n";
    json_out.close();
    if (!json_out) throw std::runtime_error(absl::StrCat("cannot write ", args.json_file));
  }
  if (!complete) {
    std::printf("ERROR: %zu of %zu runs reported\n", done, work.size());
    return kExitFailed;
  }
  std::printf("%zu passed, %zu failed\n", done - totals.failures.size(), totals.failures.size());
  // A shard cannot know what the other shards reached: merge checks the probes.
  const bool unmet = shard.n == 1 && ProbesUnmet(totals, args.require_probes);
  if (shard.n > 1 && (args.require_probes || !totals.Unmet(false).empty())) {
    std::printf("probes: required probes are checked by merge over every shard\n");
  }
  return totals.failures.empty() && !unmet ? 0 : kExitFailed;
}

// ---- merge ----

// Mismatched shard files: never merged silently.
struct MergeError {
  std::string message;
};

int Merge(const std::vector<std::string>& files, bool require_probes) {
  struct Loaded {
    std::string file;
    nlohmann::json j;
  };
  std::vector<Loaded> shards;
  for (const std::string& file : files) {
    std::ifstream in(file);
    if (!in) throw UsageError{absl::StrCat("cannot read ", file)};
    Loaded l{file, nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false)};
    if (l.j.is_discarded() || !l.j.is_object() || l.j.value("format", "") != kSweepFormat) {
      throw MergeError{absl::StrCat(file, ": not a sweep --json file (", kSweepFormat, ")")};
    }
    shards.push_back(std::move(l));
  }
  const nlohmann::json& first = shards.front().j;
  // Everything that defines "the same sweep" must agree.
  for (const char* key : {"build_id", "scenarios", "seeds", "plant"}) {
    for (const Loaded& l : shards) {
      if (l.j.at(key) != first.at(key)) {
        throw MergeError{absl::StrCat("shards differ in ", key, ": ", shards.front().file, " has ",
                                      first.at(key).dump(), ", ", l.file, " has ",
                                      l.j.at(key).dump())};
      }
    }
  }
  const uint64_t n = first.at("shard").at("n").get<uint64_t>();
  const SeedRange all_seeds = Seeds(first.at("seeds").get<std::string>());
  std::map<uint64_t, std::string> seen;  // shard index -> file
  for (const Loaded& l : shards) {
    const uint64_t k = l.j.at("shard").at("k").get<uint64_t>();
    if (l.j.at("shard").at("n").get<uint64_t>() != n) {
      throw MergeError{absl::StrCat("shards differ in their count: ", shards.front().file,
                                    " is one of ", n, ", ", l.file, " one of ",
                                    l.j.at("shard").at("n").dump())};
    }
    if (k < 1 || k > n) throw MergeError{absl::StrCat(l.file, ": shard ", k, " of ", n)};
    auto [it, inserted] = seen.emplace(k, l.file);
    if (!inserted) {
      throw MergeError{
          absl::StrCat("shard ", k, "/", n, " twice (overlapping): ", it->second, " and ", l.file)};
    }
    const std::optional<SeedRange> expect = ShardOf(all_seeds, k, n);
    const nlohmann::json want =
        expect ? nlohmann::json(RangeText(*expect)) : nlohmann::json(nullptr);
    if (l.j.at("shard").at("seeds") != want) {
      throw MergeError{absl::StrCat(l.file, ": shard ", k, "/", n, " covers ",
                                    l.j.at("shard").at("seeds").dump(), ", expected ",
                                    want.dump())};
    }
  }
  std::vector<std::string> missing;
  for (uint64_t k = 1; k <= n && missing.size() < 10; ++k) {
    if (!seen.contains(k)) missing.push_back(absl::StrCat(k));
  }
  if (!missing.empty()) {
    throw MergeError{absl::StrCat("missing shard(s) of ", n, ": ", absl::StrJoin(missing, ", "))};
  }

  for (const Loaded& l : shards) {
    if (l.j.value("buggify", true) != first.value("buggify", true)) {
      throw MergeError{
          absl::StrCat("shards differ in buggify: ", shards.front().file, " and ", l.file)};
    }
  }
  Totals totals;
  totals.scenarios = first.at("scenarios").get<std::vector<std::string>>();
  bool complete = true;
  double wall = 0;
  for (const Loaded& l : shards) {
    complete = complete && l.j.at("complete").get<bool>();
    wall += l.j.at("wall_seconds").get<double>();
    for (const nlohmann::json& p : l.j.at("per_scenario")) {
      PerScenario& t = totals.per[p.at("scenario").get<std::string>()];
      t.seeds += p.at("seeds").get<uint64_t>();
      t.failures += p.at("failed").get<uint64_t>();
      t.simulated_ns += p.at("simulated_ns").get<int64_t>();
      uint64_t value = 0;
      if (!absl::SimpleHexAtoi(p.at("hash").get<std::string>(), &value)) {
        throw MergeError{absl::StrCat(l.file, ": bad hash ", p.at("hash").dump())};
      }
      t.hash.Add(CombinedHash::FromValue(value));
      const nlohmann::json required = p.value("required_probes", nlohmann::json::object());
      for (auto it = required.begin(); it != required.end(); ++it) {
        t.required[it.key()] += it.value().get<uint64_t>();
      }
    }
    require_probes = require_probes || l.j.value("require_probes", false);
    for (const nlohmann::json& p : l.j.value("probes", nlohmann::json::array())) {
      ProbeTotal& t = totals.probes[p.at("name").get<std::string>()];
      t.kind = p.at("kind").get<std::string>();
      t.runs_reached += p.at("runs_reached").get<uint64_t>();
      const uint64_t held = p.at("runs_held").get<uint64_t>();
      t.runs_held += held;
      if (held > 0) {
        totals.Held(t, p.at("first_scenario").get<std::string>(),
                    p.at("first_seed").get<uint64_t>());
      }
    }
    for (const nlohmann::json& f : l.j.at("failures")) {
      totals.failures.push_back({f.at("scenario").get<std::string>(), f.at("seed").get<uint64_t>(),
                                 f.at("invariant").get<std::string>(),
                                 f.at("replay").get<std::string>(), f.value("profile", "")});
    }
  }
  totals.SortFailures();
  const uint64_t runs = totals.runs();
  std::printf(
      "merge of %llu shards (seeds %s, build %s): %llu runs, %.2f s of workers' wall time\n",
      static_cast<unsigned long long>(n), RangeText(all_seeds).c_str(),
      first.at("build_id").get<std::string>().c_str(), static_cast<unsigned long long>(runs), wall);
  PrintTotals(totals);
  PrintProbes(totals);
  const uint64_t expected = all_seeds.size() * totals.scenarios.size();
  if (!complete || runs != expected) {
    std::printf("ERROR: %llu of %llu runs reported\n", static_cast<unsigned long long>(runs),
                static_cast<unsigned long long>(expected));
    return kExitFailed;
  }
  std::printf("%llu passed, %zu failed\n",
              static_cast<unsigned long long>(runs - totals.failures.size()),
              totals.failures.size());
  const bool unmet = ProbesUnmet(totals, require_probes);
  return totals.failures.empty() && !unmet ? 0 : kExitFailed;
}

// ---- check-determinism ----

// Runs `<self> run` in a fresh process, its trace to `trace_json`; returns the trace hash,
// or an error if the run crashed (anything but exit 0 or 1) or printed no hash.
absl::StatusOr<std::string> RunFresh(const std::string& self, const std::string& scenario,
                                     uint64_t seed, const std::string& plant, bool buggify,
                                     const std::string& trace_json, const std::string& out_file) {
  std::vector<std::string> argv_s = {
      self, "run", scenario, "--seed", absl::StrCat(seed), "--trace-json", trace_json};
  if (!plant.empty()) {
    argv_s.push_back("--plant");
    argv_s.push_back(plant);
  }
  if (!buggify) argv_s.push_back("--no-buggify");
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::InternalError("posix_spawn failed");
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    return absl::InternalError(absl::StrCat("the run crashed (signal ", WTERMSIG(status), ")"));
  }
  if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != kExitFailed)) {
    return absl::InternalError(absl::StrCat("the run exited ", WEXITSTATUS(status)));
  }
  std::ifstream in(out_file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("trace hash: ", 0) == 0) return line.substr(12, 16);
  }
  return absl::InternalError("the run printed no trace hash");
}

int CheckDeterminism(const Tool& tool, const std::string& scenario_name, SeedRange seeds,
                     const std::string& plant, bool buggify) {
  const std::vector<const ScenarioInfo*> scenarios =
      tool.WithPlant(tool.Select(scenario_name), plant);
  const std::string self = SelfPath();
  char dir_template[] = "/tmp/netlayer-determinism.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string dir = dir_template;
  int mismatches = 0, checked = 0;
  for (const ScenarioInfo* s : scenarios) {
    for (uint64_t seed = seeds.first;; ++seed) {
      const std::string a = dir + "/a.jsonl", b = dir + "/b.jsonl";
      const absl::StatusOr<std::string> ra =
          RunFresh(self, s->name, seed, plant, buggify, a, dir + "/a.out");
      const absl::StatusOr<std::string> rb =
          RunFresh(self, s->name, seed, plant, buggify, b, dir + "/b.out");
      ++checked;
      if (!ra.ok() || !rb.ok()) {
        ++mismatches;
        std::printf("CRASH %s seed %llu: %s\n  replay: %s\n", s->name.c_str(),
                    static_cast<unsigned long long>(seed),
                    (!ra.ok() ? ra.status() : rb.status()).ToString().c_str(),
                    tool.Replay(s->name, seed, plant, buggify).c_str());
        if (seed == seeds.last) break;
        continue;
      }
      const std::string& ha = *ra;
      const std::string& hb = *rb;
      if (ha != hb) {
        ++mismatches;
        std::printf("MISMATCH %s seed %llu: %s vs %s\n  replay: %s\n", s->name.c_str(),
                    static_cast<unsigned long long>(seed), ha.c_str(), hb.c_str(),
                    tool.Replay(s->name, seed, plant, buggify).c_str());
        std::ifstream fa(a), fb(b);
        std::string la, lb;
        for (uint64_t n = 0;; ++n) {
          const bool ga = static_cast<bool>(std::getline(fa, la));
          const bool gb = static_cast<bool>(std::getline(fb, lb));
          if (!ga && !gb) break;
          if (!ga || !gb || la != lb) {
            std::printf("  first difference at event %llu:\n    run 1: %s\n    run 2: %s\n",
                        static_cast<unsigned long long>(n), ga ? la.c_str() : "(end)",
                        gb ? lb.c_str() : "(end)");
            break;
          }
        }
      } else {
        std::printf("same %s seed %llu: %s\n", s->name.c_str(),
                    static_cast<unsigned long long>(seed), ha.c_str());
      }
      if (seed == seeds.last) break;
    }
  }
  for (const char* f : {"a.jsonl", "b.jsonl", "a.out", "b.out"}) unlink((dir + "/" + f).c_str());
  rmdir(dir.c_str());
  std::printf("%d passed, %d failed\n", checked - mismatches, mismatches);
  return mismatches == 0 ? 0 : kExitFailed;
}

// ---- shrink ----

struct ShrinkArgs {
  std::string scenario, plant, out, choices_file;
  uint64_t seed = 1;
  int max_runs = 300;
  double max_seconds = 300;
  bool no_buggify = false;
};

int Shrink(const Tool& tool, const ShrinkArgs& given) {
  ShrinkArgs args = given;
  ChoiceFile choices;
  if (!args.choices_file.empty()) {
    choices = LoadChoices(args.choices_file, args.scenario, args.plant, !args.no_buggify);
    args.plant = choices.plant;
    args.no_buggify = !choices.buggify;
    args.seed = ChoiceSeed(choices.bytes);
  }
  const ScenarioInfo& info = *tool.WithPlant(tool.Select(args.scenario), args.plant).at(0);
  // What the run is called in messages and in the replay line.
  const std::string what = args.choices_file.empty()
                               ? absl::StrCat("seed ", args.seed)
                               : absl::StrCat("choices ", args.choices_file);
  const std::string replay =
      args.choices_file.empty()
          ? tool.Replay(info.name, args.seed, args.plant, !args.no_buggify)
          : absl::StrCat(tool.program, " run ", info.name, " --choices ", args.choices_file);
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  auto run = [&](const FaultTape* replay, FaultTape* record) {
    ScenarioOptions options;
    options.seed = args.seed;
    options.planted_bug = args.plant;
    options.program = tool.program;
    options.replay_tape = replay;
    options.record_tape = record;
    options.buggify = !args.no_buggify;
    if (!args.choices_file.empty()) {
      options.choices = &choices.bytes;
      options.choices_file = args.choices_file;
    }
    ++runs;
    return RunScenario(info.name, info.make(), options);
  };
  auto budget_left = [&] {
    return runs < args.max_runs &&
           Seconds(std::chrono::steady_clock::now() - start) < args.max_seconds;
  };
  FaultTape tape;
  const ScenarioResult first = run(nullptr, &tape);
  if (first.passed) {
    std::fprintf(stderr, "%s %s passes: nothing to shrink\n", info.name.c_str(), what.c_str());
    return kExitUsage;
  }
  const std::string invariant = first.invariant;
  const size_t faults_before = tape.faults();
  std::printf("shrinking %s %s: fails \"%s\" with %zu faults, %llu events, %s simulated\n",
              info.name.c_str(), what.c_str(), invariant.c_str(),
              tape.faults(), static_cast<unsigned long long>(first.events_run),
              absl::FormatDuration(first.simulated).c_str());
  ScenarioResult best = first;
  // Still fails the same invariant with `candidate`: it becomes the tape.
  auto fails = [&](const FaultTape& candidate) {
    ScenarioResult r = run(&candidate, nullptr);
    const bool same = !r.passed && r.invariant == invariant;
    if (same) {
      tape = candidate;
      best = r;
      std::printf("  run %d: %zu faults, %llu events: still fails\n", runs, tape.faults(),
                  static_cast<unsigned long long>(r.events_run));
      std::fflush(stdout);
    }
    return same;
  };
  auto with = [&](std::vector<TapeEntry> entries) {
    FaultTape t = tape;
    t.entries = std::move(entries);
    return t;
  };
  // Wake-ups that did nothing go first.
  {
    std::vector<TapeEntry> kept;
    for (const TapeEntry& e : tape.entries) {
      if (e.IsFault()) kept.push_back(e);
    }
    if (kept.size() != tape.entries.size()) fails(with(kept));
  }
  // ddmin over the decisions: drop chunks (halves, quarters, ... singles) while it still fails.
  size_t n = 2;
  while (tape.entries.size() >= 1 && budget_left()) {
    const size_t size = tape.entries.size();
    n = std::min(n, size);
    const size_t chunk = (size + n - 1) / n;
    bool reduced = false;
    for (size_t begin = 0; begin < size && budget_left(); begin += chunk) {
      std::vector<TapeEntry> rest(tape.entries.begin(), tape.entries.begin() + begin);
      rest.insert(rest.end(), tape.entries.begin() + std::min(size, begin + chunk),
                  tape.entries.end());
      if (fails(with(rest))) {
        reduced = true;
        n = std::max<size_t>(n - 1, 2);
        break;
      }
    }
    if (!reduced) {
      if (n >= size) break;
      n = std::min(size, n * 2);
    }
  }
  // Milder faults: shorter (a stall or freeze "until the liveness phase" first becomes 1 s),
  // fewer hops for a flap, later in the run.
  for (size_t i = 0; i < tape.entries.size() && budget_left(); ++i) {
    if (tape.entries[i].duration == absl::InfiniteDuration()) {
      std::vector<TapeEntry> e = tape.entries;
      e[i].duration = absl::Seconds(1);
      fails(with(e));
    }
    for (int k = 0; k < 4 && budget_left(); ++k) {
      const absl::Duration d = tape.entries[i].duration;
      if (d <= absl::Milliseconds(1) || d == absl::InfiniteDuration()) break;
      std::vector<TapeEntry> e = tape.entries;
      e[i].duration = d / 2;
      if (!fails(with(e))) break;
    }
    if (tape.entries[i].process == "fault" && budget_left()) {
      std::vector<TapeEntry> e = tape.entries;
      e[i].at += absl::Milliseconds(100);
      fails(with(e));
    }
  }
  // The result replays the same way every time.
  const ScenarioResult again = run(&tape, nullptr);
  const bool stable =
      !again.passed && again.invariant == invariant && again.trace_hash == best.trace_hash;
  const std::string out =
      args.out.empty() ? absl::StrCat(info.name, "-seed", args.seed,
                                      args.plant.empty() ? "" : "-" + args.plant, ".min.tape")
                       : args.out;
  WriteTape(out, tape);
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::printf(
      "shrunk in %d runs, %.1f s: faults %zu -> %zu, events %llu -> %llu, simulated %s -> %s%s\n",
      runs, wall, faults_before, tape.faults(), static_cast<unsigned long long>(first.events_run),
      static_cast<unsigned long long>(best.events_run),
      absl::FormatDuration(first.simulated).c_str(), absl::FormatDuration(best.simulated).c_str(),
      stable ? "" : " (WARNING: the replay differed)");
  std::printf("fails: %s\ntape: %s\nreplay: %s --tape %s --timeline out.html\n", invariant.c_str(),
              out.c_str(), replay.c_str(),
              out.c_str());
  return stable ? 0 : kExitFailed;
}

}  // namespace

std::string BuildId() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  if (!in) return "unknown";
  uint64_t hash = Trace::kFnvOffsetBasis;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    hash = Fnv1a64(hash, std::string_view(buf, static_cast<size_t>(in.gcount())));
  }
  return absl::StrFormat("%016x", hash);
}

int Main(const ScenarioRegistry& registry, int argc, char** argv, const MainOptions& options) {
  if (const char* level = std::getenv("NETLAYER_LOG_LEVEL")) {
    SetLogLevel(spdlog::level::from_str(level));
  }
  // An explore worker (explore.h) is this binary started again by `explore`.
  if (int rc = explore_internal::MaybeRunWorker(registry, argc, argv); rc >= 0) return rc;
  Tool tool{registry, options.program};
  if (tool.program.empty()) tool.program = argc > 0 ? argv[0] : "netlayer-sim";
  const std::string name = tool.program.substr(tool.program.rfind('/') + 1);

  CLI::App app{options.description, name};
  app.require_subcommand(1);

  app.add_subcommand("list", "list the scenarios");

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "run one scenario with one seed (replays a failure)");
  run_cmd->add_option("scenario", run.scenario, "scenario name")->required();
  auto* run_seed = run_cmd->add_option("--seed", run.seed, "the seed");
  auto* run_choices = run_cmd->add_option(
      "--choices", run.choices_file, "take the run's choices from a choice file (or raw bytes)");
  run_seed->excludes(run_choices);
  run_cmd->add_option("--write-choices", run.write_choices_file,
                      "write every choice the run drew as a choice file (replays with --choices)");
  run_cmd->add_option("--trace", run.trace_file, "write every trace event, human-readable");
  run_cmd->add_option("--trace-json", run.trace_json_file, "write every trace event as JSON lines");
  run_cmd->add_option("--timeline", run.timeline_file, "write a self-contained HTML timeline");
  run_cmd->add_flag("--verbose,-v", run.verbose, "print every trace event");
  run_cmd->add_option("--plant", run.plant, "plant a deliberate bug (harness self-test)");
  run_cmd->add_option("--record-tape", run.record_tape_file,
                      "write the run's fault decisions (JSON lines)");
  run_cmd->add_option("--tape", run.tape_file,
                      "take the fault decisions from a tape instead of the seed");
  run_cmd->add_flag("--no-buggify", run.no_buggify, "NETLAYER_BUGGIFY sites never fire");
  run_cmd->add_option("--history", run.history_file,
                      "write the clients' history as JSON lines (scenarios that record one)");

  ShrinkArgs shrink;
  auto* shrink_cmd = app.add_subcommand(
      "shrink", "minimize a failing seed's fault tape while it fails the same invariant");
  shrink_cmd->add_option("scenario", shrink.scenario, "scenario name")->required();
  auto* shrink_seed = shrink_cmd->add_option("--seed", shrink.seed, "the failing seed");
  auto* shrink_choices =
      shrink_cmd->add_option("--choices", shrink.choices_file, "the failing run's choice file");
  shrink_seed->excludes(shrink_choices);
  shrink_cmd->add_option("--plant", shrink.plant, "plant a deliberate bug");
  shrink_cmd->add_option("--out", shrink.out, "the smallest tape (default S-seedN.min.tape)");
  shrink_cmd->add_option("--max-runs", shrink.max_runs, "at most this many runs (default 300)");
  shrink_cmd->add_option("--max-seconds", shrink.max_seconds,
                         "stop shrinking after this much wall time (default 300)");
  shrink_cmd->add_flag("--no-buggify", shrink.no_buggify, "NETLAYER_BUGGIFY sites never fire");

  SweepArgs sweep;
  auto* sweep_cmd = app.add_subcommand("sweep", "run a scenario (or all) over a range of seeds");
  sweep_cmd->add_option("scenario", sweep.scenario, "scenario name, or 'all'")->required();
  sweep_cmd->add_option("--seeds", sweep.seeds, "seed range A..B (or one seed)")->required();
  sweep_cmd->add_option("--jobs,-j", sweep.jobs, "worker processes (default: one per core)");
  sweep_cmd->add_option("--plant", sweep.plant, "plant a deliberate bug (harness self-test)");
  sweep_cmd->add_option("--shard", sweep.shard,
                        "run only the K-th of N disjoint slices of the seeds (K/N, 1-based)");
  sweep_cmd->add_option("--json", sweep.json_file,
                        "write the result as JSON (for merge: counts, failures, build id)");
  sweep_cmd->add_flag("--require-probes", sweep.require_probes,
                      "fail if a registered SOMETIMES/REACHABLE probe held in no run");
  sweep_cmd->add_flag("--no-buggify", sweep.no_buggify, "NETLAYER_BUGGIFY sites never fire");

  std::vector<std::string> merge_files;
  auto* merge_cmd = app.add_subcommand(
      "merge", "combine the --json results of a sweep's shards into one summary");
  merge_cmd->add_option("files", merge_files, "the shards' JSON files")->required();
  bool merge_require_probes = false;
  merge_cmd->add_flag("--require-probes", merge_require_probes,
                      "fail if a registered SOMETIMES/REACHABLE probe held in no run (also when "
                      "the shards were run with it)");

  std::string det_scenario, det_seeds, det_plant;
  bool det_no_buggify = false;
  auto* det_cmd = app.add_subcommand(
      "check-determinism", "run each seed in two fresh processes and compare trace hashes");
  det_cmd->add_option("scenario", det_scenario, "scenario name, or 'all'")->required();
  det_cmd->add_option("--seeds", det_seeds, "seed range A..B (or one seed)")->required();
  det_cmd->add_option("--plant", det_plant, "plant a deliberate bug");
  det_cmd->add_flag("--no-buggify", det_no_buggify, "NETLAYER_BUGGIFY sites never fire");

  explore_internal::ExploreArgs explore;
  auto* explore_cmd = app.add_subcommand(
      "explore",
      "search a scenario's runs with libFuzzer, guided by coverage and probes (clang builds)");
  explore_cmd->add_option("scenario", explore.scenario, "scenario name")->required();
  explore_cmd->add_option("--seconds", explore.seconds, "wall time to explore (default 60)");
  explore_cmd->add_option("--runs", explore.runs, "at most this many runs (with --seed: repeatable)");
  explore_cmd->add_option("--jobs,-j", explore.jobs, "worker processes (libFuzzer -fork)");
  explore_cmd->add_option("--plant", explore.plant, "plant a deliberate bug");
  explore_cmd->add_option("--corpus", explore.corpus,
                          "directory of the corpus, findings and log (default explore-SCENARIO)");
  explore_cmd->add_option("--seed", explore.seed, "libFuzzer's seed (with --runs: repeatable)");
  explore_cmd->add_option("--max-len", explore.max_len, "longest choice string (default 16384)");
  explore_cmd->add_flag("--shrink", explore.shrink, "shrink each finding's fault tape");
  explore_cmd->add_flag("--no-buggify", explore.no_buggify, "NETLAYER_BUGGIFY sites never fire");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  try {
    if (app.got_subcommand("list")) {
      for (const ScenarioInfo& s : registry.all()) {
        std::printf("%-18s %s\n", s.name.c_str(), s.description.c_str());
        for (const Plant& p : s.make()->Plants()) {
          std::printf("  --plant %-32s %s\n", p.name.c_str(), p.description.c_str());
        }
      }
      return 0;
    }
    if (app.got_subcommand(run_cmd)) {
      if (run_seed->count() == 0 && run_choices->count() == 0) {
        throw UsageError{"run needs --seed N or --choices FILE"};
      }
      return Run(tool, run);
    }
    if (app.got_subcommand(shrink_cmd)) {
      if (shrink_seed->count() == 0 && shrink_choices->count() == 0) {
        throw UsageError{"shrink needs --seed N or --choices FILE"};
      }
      return Shrink(tool, shrink);
    }
    if (app.got_subcommand(sweep_cmd)) return Sweep(tool, sweep);
    if (app.got_subcommand(explore_cmd)) {
      const ScenarioInfo& info =
          *tool.WithPlant(tool.Select(explore.scenario), explore.plant).at(0);
      if (explore.scenario == "all") throw UsageError{"explore takes one scenario"};
      if (explore.jobs < 1 || explore.jobs > kMaxJobs) throw UsageError{"bad --jobs"};
      if (explore.seconds <= 0 && explore.runs == 0) {
        throw UsageError{"explore needs --seconds or --runs"};
      }
      return explore_internal::Explore(info, tool.program, explore);
    }
    if (app.got_subcommand(merge_cmd)) return Merge(merge_files, merge_require_probes);
    if (app.got_subcommand(det_cmd)) {
      return CheckDeterminism(tool, det_scenario, Seeds(det_seeds), det_plant, !det_no_buggify);
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), e.message.c_str());
    return kExitUsage;
  } catch (const MergeError& e) {
    std::fprintf(stderr, "%s merge: %s\n", name.c_str(), e.message.c_str());
    return kExitUsage;
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "%s merge: malformed sweep file: %s\n", name.c_str(), e.what());
    return kExitUsage;
  }
  return kExitUsage;
}

}  // namespace netlayer::sim
