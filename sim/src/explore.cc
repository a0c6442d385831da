// `explore`: the driver and the libFuzzer worker (explore.h). Like sim_main.cc this is the tool,
// not simulated code: it spawns processes, reads pipes and the wall clock.
#include "explore.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>  // NOLINT(determinism): the CLI spawns the worker, not simulated code

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "netlayer/core/generator.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"
#include "netlayer/sim/choices.h"

extern char** environ;

#ifdef NETLAYER_HAVE_LIBFUZZER
extern "C" int LLVMFuzzerRunDriver(int* argc, char*** argv,
                                   int (*callback)(const uint8_t* data, size_t size));
#endif

namespace netlayer::sim::explore_internal {
namespace {

namespace fs = std::filesystem;

constexpr char kWorkerEnv[] = "NETLAYER_EXPLORE_WORKER";
constexpr char kPlantEnv[] = "NETLAYER_EXPLORE_PLANT";
constexpr char kBuggifyEnv[] = "NETLAYER_EXPLORE_BUGGIFY";
constexpr char kFindingLine[] = "NETLAYER-EXPLORE-FINDING: ";
// Two extra counters per probe: evaluated and held (libFuzzer buckets each count).
constexpr size_t kMaxProbes = 2048;

#ifdef NETLAYER_HAVE_LIBFUZZER
__attribute__((used, section("__libfuzzer_extra_counters"))) uint8_t probe_counters[2 * kMaxProbes];
#endif

double Seconds(std::chrono::steady_clock::duration d) {  // NOLINT(determinism): CLI wall time
  return std::chrono::duration<double>(d).count();
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(n));
}

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const fs::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

// Runs `argv` with stdout and stderr into one pipe; calls `line` with each line as it comes.
// Returns the wait status, or -1 if it could not start.
int SpawnAndRead(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                 const std::function<void(const std::string&)>& line) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with(kWorkerEnv) || entry.starts_with(kPlantEnv) ||
        entry.starts_with(kBuggifyEnv)) {
      continue;
    }
    env_strings.emplace_back(entry);
  }
  for (const std::string& e : extra_env) env_strings.push_back(e);
  std::vector<char*> env, args;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  std::string pending;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find_first_of("\r\n")) != std::string::npos) {
      if (nl > 0) line(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) line(pending);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// The number after `key` in a libFuzzer status line, or nullopt.
std::optional<uint64_t> Field(const std::string& line, std::string_view key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + key.size();
  while (i < line.size() && line[i] == ' ') ++i;
  uint64_t value = 0;
  bool any = false;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(line[i] - '0');
    ++i;
    any = true;
  }
  return any ? std::optional<uint64_t>(value) : std::nullopt;
}

// ---- the worker ----

struct WorkerState {
  const ScenarioInfo* info = nullptr;
  std::string plant;
  bool buggify = true;
  std::map<std::string, size_t, std::less<>> probe_index;
};
[[maybe_unused]] WorkerState* worker = nullptr;

[[maybe_unused]] int RunOne(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ScenarioOptions options;
  options.seed = ChoiceSeed(bytes);
  options.choices = &bytes;
  options.planted_bug = worker->plant;
  options.buggify = worker->buggify;
  const ScenarioResult result = RunScenario(worker->info->name, worker->info->make(), options);
#ifdef NETLAYER_HAVE_LIBFUZZER
  std::fill(std::begin(probe_counters), std::end(probe_counters), 0);
  for (const ProbeHit& hit : result.probes) {
    auto it = worker->probe_index.find(hit.name);
    if (it == worker->probe_index.end() || it->second >= kMaxProbes) continue;
    probe_counters[2 * it->second] = static_cast<uint8_t>(std::min<uint64_t>(hit.evaluated, 255));
    probe_counters[2 * it->second + 1] = static_cast<uint8_t>(std::min<uint64_t>(hit.held, 255));
  }
#endif
  if (!result.passed) {
    std::fprintf(stderr, "%s%s: %s\n", kFindingLine, result.invariant.c_str(),
                 result.detail.c_str());
    std::fflush(stderr);
    std::abort();  // libFuzzer writes the input as a crash artifact and stops
  }
  return 0;
}

}  // namespace

bool Available() {
#ifdef NETLAYER_HAVE_LIBFUZZER
  return true;
#else
  return false;
#endif
}

int MaybeRunWorker(const ScenarioRegistry& registry, int argc, char** argv) {
  const char* scenario = std::getenv(kWorkerEnv);
  if (scenario == nullptr) return -1;
#ifdef NETLAYER_HAVE_LIBFUZZER
  auto found = registry.Find(scenario);
  if (!found.ok()) {
    std::fprintf(stderr, "explore worker: %s\n", std::string(found.status().message()).c_str());
    return 2;
  }
  static WorkerState* const state = new WorkerState;
  state->info = *found;
  const char* plant = std::getenv(kPlantEnv);
  state->plant = plant != nullptr ? plant : "";
  const char* buggify = std::getenv(kBuggifyEnv);
  state->buggify = buggify == nullptr || std::string_view(buggify) != "0";
  const std::vector<ProbeInfo> probes = ProbeRegistry::All();
  for (size_t i = 0; i < probes.size(); ++i) state->probe_index.emplace(probes[i].name, i);
  worker = state;
  if (std::getenv("NETLAYER_LOG_LEVEL") == nullptr) SetLogLevel(spdlog::level::off);
  return LLVMFuzzerRunDriver(&argc, &argv, RunOne);
#else
  (void)registry;
  (void)argc;
  (void)argv;
  std::fprintf(stderr, "explore worker: this build has no libFuzzer\n");
  return 2;
#endif
}

int Explore(const ScenarioInfo& info, const std::string& program, const ExploreArgs& args) {
  if (!Available()) {
    std::fprintf(stderr,
                 "explore needs libFuzzer, which this build does not have: install clang "
                 "(Debian: apt-get install clang) and build the scenario tool with it (preset "
                 "`explore`: cmake --preset explore && cmake --build --preset explore; a "
                 "package user: configure with -DCMAKE_CXX_COMPILER=clang++)\n");
    return 2;
  }
  const std::string label = args.plant.empty() ? info.name : info.name + "-" + args.plant;
  const fs::path dir = args.corpus.empty() ? fs::path("explore-" + label) : fs::path(args.corpus);
  const fs::path corpus = dir / "corpus", artifacts = dir / "artifacts";
  std::error_code ec;
  fs::create_directories(corpus, ec);
  fs::create_directories(artifacts, ec);
  if (ec) {
    std::fprintf(stderr, "explore: cannot make %s: %s\n", dir.c_str(), ec.message().c_str());
    return 2;
  }
  for (const auto& entry : fs::directory_iterator(artifacts)) fs::remove(entry.path(), ec);
  if (fs::is_empty(corpus)) {
    // A few seeds to start from (their 8 bytes are their runs): drawn from --seed.
    uint64_t state = args.seed;
    for (int i = 0; i < 4; ++i) {
      const uint64_t seed = SplitMix64(state) % 1'000'000'000 + 1;
      WriteAll(corpus / absl::StrCat("seed-", seed), SeedChoices(seed));
    }
  }

  const std::string self = SelfPath();
  std::vector<std::string> argv = {self};
  if (args.seed != 0) argv.push_back(absl::StrCat("-seed=", args.seed));
  if (args.runs != 0) argv.push_back(absl::StrCat("-runs=", args.runs));
  if (args.runs == 0 || args.seconds > 0) {
    argv.push_back(
        absl::StrCat("-max_total_time=", std::max<int64_t>(1, static_cast<int64_t>(args.seconds))));
  }
  argv.push_back(absl::StrCat("-max_len=", args.max_len));
  argv.push_back("-timeout=120");  // wall seconds per run: a hang
  argv.push_back("-rss_limit_mb=4096");
  argv.push_back("-print_final_stats=1");
  argv.push_back("-reduce_inputs=1");
  argv.push_back(absl::StrCat("-artifact_prefix=", (artifacts / "").string()));
  if (args.jobs > 1) argv.push_back(absl::StrCat("-fork=", args.jobs));
  argv.push_back(corpus.string());
  const std::vector<std::string> env = {
      absl::StrCat(kWorkerEnv, "=", info.name), absl::StrCat(kPlantEnv, "=", args.plant),
      absl::StrCat(kBuggifyEnv, "=", args.no_buggify ? "0" : "1")};

  const bool tty = isatty(2) != 0;
  std::ofstream log(dir / "explore.log");
  const auto start = std::chrono::steady_clock::now();
  uint64_t runs = 0, cov = 0, ft = 0, corp = 0, rate = 0;
  double first_finding = -1, last_print = -100;
  std::string finding_line;
  auto progress = [&](bool final) {
    const double t = Seconds(std::chrono::steady_clock::now() - start);
    if (!final && t - last_print < (tty ? 0.5 : 10)) return;
    last_print = t;
    const std::string text = absl::StrFormat(
        "explore %s: %llu runs, %llu runs/s, coverage %llu, features %llu, corpus %llu, "
        "findings %d, %.0f s",
        label, static_cast<unsigned long long>(runs), static_cast<unsigned long long>(rate),
        static_cast<unsigned long long>(cov), static_cast<unsigned long long>(ft),
        static_cast<unsigned long long>(corp), first_finding >= 0 ? 1 : 0, t);
    std::fprintf(stderr, tty ? "\r%s\033[K" : "%s\n", text.c_str());
    if (final && tty) std::fputc('\n', stderr);
  };
  const int status = SpawnAndRead(argv, env, [&](const std::string& line) {
    log << line << '\n';
    if (line.starts_with(kFindingLine)) {
      finding_line = line.substr(sizeof kFindingLine - 1);
    }
    if ((line.starts_with(kFindingLine) || line.find("ERROR: libFuzzer") != std::string::npos ||
         line.find("ALARM: working on the last Unit") != std::string::npos) &&
        first_finding < 0) {
      first_finding = Seconds(std::chrono::steady_clock::now() - start);
    }
    if (!line.empty() && line[0] == '#') {
      if (auto v = Field(line, "#")) runs = *v;
      if (auto v = Field(line, "cov:")) cov = *v;
      if (auto v = Field(line, "ft:")) ft = *v;
      if (auto v = Field(line, "corp:")) corp = *v;
      if (auto v = Field(line, "exec/s:")) rate = *v;
      progress(false);
    }
    if (auto v = Field(line, "stat::number_of_executed_units:")) runs = *v;
  });
  log.close();
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  if (status == -1) {
    std::fprintf(stderr, "explore: cannot start %s\n", self.c_str());
    return 2;
  }
  progress(true);

  // Findings: what libFuzzer wrote (crash-, timeout-, oom-, leak-), oldest name first.
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(artifacts)) found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  int findings = 0;
  for (const fs::path& artifact : found) {
    const std::string name = artifact.filename().string();
    // An invariant failure aborts the worker too: libFuzzer calls it a crash.
    const std::string kind = !finding_line.empty() && name.starts_with("crash-")
                                 ? std::string("invariant")
                                 : name.substr(0, name.find('-'));
    ++findings;
    const fs::path choices = dir / absl::StrCat("finding-", findings, ".choices");
    ChoiceFile file{info.name, args.plant, !args.no_buggify, ReadAll(artifact)};
    WriteAll(choices, file.Serialize());
    const std::string replay =
        absl::StrCat(program, " run ", info.name, " --choices ", choices.string());
    // The replay, in a fresh process: it must fail the same way.
    std::string invariant, hash, outcome;
    const int replay_status = SpawnAndRead({self, "run", info.name, "--choices", choices.string()},
                                           {}, [&](const std::string& l) {
                                             if (l.starts_with("  invariant: "))
                                               invariant = l.substr(13);
                                             if (l.starts_with("trace hash: "))
                                               hash = l.substr(12, 16);
                                           });
    if (WIFEXITED(replay_status)) {
      outcome = WEXITSTATUS(replay_status) == 1
                    ? absl::StrCat("fails \"", invariant, "\", trace hash ", hash)
                    : absl::StrCat("exits ", WEXITSTATUS(replay_status));
    } else if (WIFSIGNALED(replay_status)) {
      outcome = absl::StrCat("crashes (signal ", WTERMSIG(replay_status), ")");
    }
    std::printf(
        "FINDING %d (%s) after %.1f s: %s\n  choices: %s (%zu bytes)\n  replay:  %s\n"
        "  the replay, in a fresh process: %s\n",
        findings, kind.c_str(), first_finding >= 0 ? first_finding : wall,
        finding_line.empty() ? kind.c_str() : finding_line.c_str(), choices.c_str(),
        file.bytes.size(), replay.c_str(), outcome.c_str());
    std::fflush(stdout);
    if (args.shrink) {
      const fs::path tape = dir / absl::StrCat("finding-", findings, ".min.tape");
      std::printf("shrinking:\n");
      std::fflush(stdout);
      SpawnAndRead(
          {self, "shrink", info.name, "--choices", choices.string(), "--out", tape.string()}, {},
          [&](const std::string& l) { std::printf("  %s\n", l.c_str()); });
    }
  }
  std::printf(
      "explore %s: %llu runs in %.1f s (%.0f runs/s), coverage %llu, features %llu, corpus %llu "
      "(%s), findings %d%s\n",
      label.c_str(), static_cast<unsigned long long>(runs), wall, runs / std::max(wall, 1e-9),
      static_cast<unsigned long long>(cov), static_cast<unsigned long long>(ft),
      static_cast<unsigned long long>(corp), corpus.c_str(), findings,
      findings > 0 ? absl::StrFormat(" (first after %.1f s)", first_finding).c_str() : "");
  if (findings > 0) return 1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "explore: the worker ended abnormally (see %s)\n",
                 (dir / "explore.log").c_str());
    return 2;
  }
  return 0;
}

}  // namespace netlayer::sim::explore_internal
