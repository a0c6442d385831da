// netlayer-sim: run, sweep, replay and check the determinism of seeded scenarios.
//
//   netlayer-sim list
//   netlayer-sim run SCENARIO --seed N [--trace FILE] [--trace-json FILE] [--timeline FILE.html]
//                    [--verbose] [--plant BUG]
//   netlayer-sim sweep SCENARIO|all --seeds A..B [--jobs J] [--plant BUG]
//   netlayer-sim check-determinism SCENARIO|all --seeds A..B
//
// Exit status: 0 success, 1 a scenario failed (or runs diverged), 2 bad usage.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "netlayer/core/log.h"
#include "netlayer/sim/scenario.h"
#include "scenarios/builtin.h"
#include "timeline.h"

extern char** environ;

namespace netlayer::tools {
namespace {

using sim::ScenarioInfo;
using sim::ScenarioOptions;
using sim::ScenarioResult;
using sim::SeedRange;
using sim::TraceEvent;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// Trace events kept for a timeline; a longer run's timeline shows the first this many.
constexpr size_t kTimelineEventLimit = 300000;

struct UsageError {
  std::string message;
};

std::vector<const ScenarioInfo*> Select(const std::string& name) {
  const auto& registry = scenarios::BuiltinScenarios();
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

SeedRange Seeds(const std::string& text) {
  auto range = sim::ParseSeedRange(text);
  if (!range.ok()) throw UsageError{std::string(range.status().message())};
  return *range;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---- run ----

struct RunArgs {
  std::string scenario;
  uint64_t seed = 1;
  std::string trace_file, trace_json_file, timeline_file, plant;
  bool verbose = false;
};

int Run(const RunArgs& args) {
  const ScenarioInfo& info = *Select(args.scenario).at(0);
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
  options.planted_bug = args.plant;
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
  const auto start = std::chrono::steady_clock::now();
  ScenarioResult result = sim::RunScenario(info.name, info.make(), options);
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::cout << result.Report() << "\n";
  std::cout << absl::StrFormat(
      "trace hash: %016x  (%d trace events, %d events run, %.3f s wall, "
      "simulated/wall %.1fx)\n",
      result.trace_hash, result.trace_events, result.events_run, wall,
      absl::ToDoubleSeconds(result.simulated) / std::max(wall, 1e-9));
  if (!args.timeline_file.empty()) {
    // The failure line is recorded after the sink saw the run; keep it in the timeline too.
    std::ofstream html(args.timeline_file);
    if (!html) throw UsageError{absl::StrCat("cannot write ", args.timeline_file)};
    html << RenderTimeline(result, kept, truncated);
    std::cout << "timeline: " << args.timeline_file << "\n";
  }
  return result.passed ? 0 : kExitFailed;
}

// ---- sweep ----

// One result line from a worker: "<scenario> <seed> <0|1> <hash> <trace events> <simulated ns>
// <invariant>" (the invariant last, it may hold spaces).
std::string EncodeResult(const ScenarioResult& r) {
  std::string invariant = r.invariant;
  for (char& c : invariant) {
    if (c == '\n') c = ' ';
  }
  return absl::StrFormat("%s %d %d %016x %d %d %s\n", r.scenario, r.seed, r.passed ? 1 : 0,
                         r.trace_hash, r.trace_events, absl::ToInt64Nanoseconds(r.simulated),
                         invariant);
}

struct SweepLine {
  std::string scenario;
  uint64_t seed = 0;
  bool passed = false;
  std::string hash;
  int64_t simulated_ns = 0;
  std::string invariant;
};

std::optional<SweepLine> DecodeResult(absl::string_view line) {
  std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 6));
  if (f.size() < 6) return std::nullopt;
  SweepLine out;
  out.scenario = std::string(f[0]);
  int passed = 0;
  uint64_t events = 0;
  if (!absl::SimpleAtoi(f[1], &out.seed) || !absl::SimpleAtoi(f[2], &passed) ||
      !absl::SimpleAtoi(f[4], &events) || !absl::SimpleAtoi(f[5], &out.simulated_ns)) {
    return std::nullopt;
  }
  out.passed = passed == 1;
  out.hash = std::string(f[3]);
  if (f.size() == 7) out.invariant = std::string(f[6]);
  return out;
}

struct Job {
  const ScenarioInfo* scenario;
  uint64_t seed;
};

int Sweep(const std::string& scenario_name, SeedRange seeds, int jobs, const std::string& plant) {
  const std::vector<const ScenarioInfo*> scenarios = Select(scenario_name);
  if (jobs < 1 || jobs > 64) throw UsageError{"--jobs must be 1..64"};
  std::vector<Job> work;
  for (const ScenarioInfo* s : scenarios) {
    for (uint64_t seed = seeds.first;; ++seed) {
      work.push_back({s, seed});
      if (seed == seeds.last) break;
    }
  }
  jobs = static_cast<int>(std::min<size_t>(jobs, work.size()));
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
      for (const Worker& other : workers) {
        if (other.fd >= 0) close(other.fd);
      }
      for (size_t i : runs) {
        ScenarioOptions options;
        options.seed = work[i].seed;
        options.planted_bug = plant;
        const std::string line = EncodeResult(
            sim::RunScenario(work[i].scenario->name, work[i].scenario->make(), options));
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
  for (int k = 0; k < jobs; ++k) {
    std::vector<size_t> runs;
    for (size_t i = static_cast<size_t>(k); i < work.size(); i += static_cast<size_t>(jobs)) {
      runs.push_back(i);
    }
    spawn(std::move(runs));
  }

  struct PerScenario {
    uint64_t seeds = 0, failures = 0;
    double simulated_s = 0;
  };
  std::map<std::string, PerScenario> per;
  std::vector<SweepLine> failures;
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
                   work.size(), failures.size(), rate, left, final ? "\n" : "");
    } else if (final || Seconds(std::chrono::steady_clock::now() - last_plain) >= 10) {
      last_plain = std::chrono::steady_clock::now();
      std::fprintf(stderr, "progress: %zu/%zu seeds, %zu failed, %.1f seeds/s, %.0fs left\n", done,
                   work.size(), failures.size(), rate, left);
    }
  };
  auto record = [&](const SweepLine& line) {
    ++done;
    PerScenario& p = per[line.scenario];
    ++p.seeds;
    p.simulated_s += line.simulated_ns / 1e9;
    if (line.passed) return;
    ++p.failures;
    failures.push_back(line);
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "FAIL %s seed %llu: %s\n  replay: netlayer-sim run %s --seed %llu%s\n",
                 line.scenario.c_str(), static_cast<unsigned long long>(line.seed),
                 line.invariant.c_str(), line.scenario.c_str(),
                 static_cast<unsigned long long>(line.seed),
                 plant.empty() ? "" : absl::StrCat(" --plant ", plant).c_str());
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
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::printf("sweep of %zu runs with %d jobs in %.2f s (%.1f seeds/s)\n", work.size(), jobs, wall,
              work.size() / std::max(wall, 1e-9));
  for (const ScenarioInfo* s : scenarios) {
    const PerScenario& p = per[s->name];
    std::printf("  %-18s %6llu seeds  %4llu failed  simulated %.1f s in total\n", s->name.c_str(),
                static_cast<unsigned long long>(p.seeds),
                static_cast<unsigned long long>(p.failures), p.simulated_s);
  }
  for (const SweepLine& f : failures) {
    std::printf("FAIL %s seed %llu: %s\n  replay: netlayer-sim run %s --seed %llu%s\n",
                f.scenario.c_str(), static_cast<unsigned long long>(f.seed), f.invariant.c_str(),
                f.scenario.c_str(), static_cast<unsigned long long>(f.seed),
                plant.empty() ? "" : absl::StrCat(" --plant ", plant).c_str());
  }
  if (done != work.size() || lost) {
    std::printf("ERROR: %zu of %zu runs reported\n", done, work.size());
    return kExitFailed;
  }
  std::printf("%zu passed, %zu failed\n", done - failures.size(), failures.size());
  return failures.empty() ? 0 : kExitFailed;
}

// ---- check-determinism ----

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find my own executable");
  return std::string(buf, static_cast<size_t>(n));
}

// Runs `netlayer-sim run` in a fresh process, its trace to `trace_json`; returns the trace hash,
// or an error if the run crashed (anything but exit 0 or 1) or printed no hash.
absl::StatusOr<std::string> RunFresh(const std::string& self, const std::string& scenario,
                                     uint64_t seed, const std::string& trace_json,
                                     const std::string& out_file) {
  std::vector<std::string> argv_s = {
      self, "run", scenario, "--seed", absl::StrCat(seed), "--trace-json", trace_json};
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

int CheckDeterminism(const std::string& scenario_name, SeedRange seeds) {
  const std::string self = SelfPath();
  char dir_template[] = "/tmp/netlayer-determinism.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string dir = dir_template;
  int mismatches = 0, checked = 0;
  for (const ScenarioInfo* s : Select(scenario_name)) {
    for (uint64_t seed = seeds.first;; ++seed) {
      const std::string a = dir + "/a.jsonl", b = dir + "/b.jsonl";
      const absl::StatusOr<std::string> ra = RunFresh(self, s->name, seed, a, dir + "/a.out");
      const absl::StatusOr<std::string> rb = RunFresh(self, s->name, seed, b, dir + "/b.out");
      ++checked;
      if (!ra.ok() || !rb.ok()) {
        ++mismatches;
        std::printf("CRASH %s seed %llu: %s\n  replay: netlayer-sim run %s --seed %llu\n",
                    s->name.c_str(), static_cast<unsigned long long>(seed),
                    (!ra.ok() ? ra.status() : rb.status()).ToString().c_str(), s->name.c_str(),
                    static_cast<unsigned long long>(seed));
        if (seed == seeds.last) break;
        continue;
      }
      const std::string& ha = *ra;
      const std::string& hb = *rb;
      if (ha != hb) {
        ++mismatches;
        std::printf("MISMATCH %s seed %llu: %s vs %s\n", s->name.c_str(),
                    static_cast<unsigned long long>(seed), ha.c_str(), hb.c_str());
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

int Main(int argc, char** argv) {
  if (const char* level = std::getenv("NETLAYER_LOG_LEVEL")) {
    SetLogLevel(spdlog::level::from_str(level));
  }
  CLI::App app{"netlayer-sim: run, sweep, replay and check seeded netlayer scenarios"};
  app.require_subcommand(1);

  app.add_subcommand("list", "list the built-in scenarios");

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "run one scenario with one seed (replays a failure)");
  run_cmd->add_option("scenario", run.scenario, "scenario name")->required();
  run_cmd->add_option("--seed", run.seed, "the seed")->required();
  run_cmd->add_option("--trace", run.trace_file, "write every trace event, human-readable");
  run_cmd->add_option("--trace-json", run.trace_json_file, "write every trace event as JSON lines");
  run_cmd->add_option("--timeline", run.timeline_file, "write a self-contained HTML timeline");
  run_cmd->add_flag("--verbose,-v", run.verbose, "print every trace event");
  run_cmd->add_option("--plant", run.plant, "plant a deliberate bug (harness self-test)");

  std::string sweep_scenario, sweep_seeds, sweep_plant;
  int jobs = 2;
  auto* sweep_cmd = app.add_subcommand("sweep", "run a scenario (or all) over a range of seeds");
  sweep_cmd->add_option("scenario", sweep_scenario, "scenario name, or 'all'")->required();
  sweep_cmd->add_option("--seeds", sweep_seeds, "seed range A..B (or one seed)")->required();
  sweep_cmd->add_option("--jobs,-j", jobs, "worker processes (default 2)");
  sweep_cmd->add_option("--plant", sweep_plant, "plant a deliberate bug (harness self-test)");

  std::string det_scenario, det_seeds;
  auto* det_cmd = app.add_subcommand(
      "check-determinism", "run each seed in two fresh processes and compare trace hashes");
  det_cmd->add_option("scenario", det_scenario, "scenario name, or 'all'")->required();
  det_cmd->add_option("--seeds", det_seeds, "seed range A..B (or one seed)")->required();

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
      for (const ScenarioInfo& s : scenarios::BuiltinScenarios().all()) {
        std::printf("%-18s %s\n", s.name.c_str(), s.description.c_str());
      }
      return 0;
    }
    if (app.got_subcommand(run_cmd)) return Run(run);
    if (app.got_subcommand(sweep_cmd)) {
      return Sweep(sweep_scenario, Seeds(sweep_seeds), jobs, sweep_plant);
    }
    if (app.got_subcommand(det_cmd)) return CheckDeterminism(det_scenario, Seeds(det_seeds));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "netlayer-sim: %s\n", e.message.c_str());
    return kExitUsage;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace netlayer::tools

int main(int argc, char** argv) { return netlayer::tools::Main(argc, argv); }
