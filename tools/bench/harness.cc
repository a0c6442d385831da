#include "harness.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "nlohmann/json.hpp"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The watchdog's state is leaked on purpose: its thread is detached and may still wait on it
// while static destructors run at exit.
struct WatchdogState {
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;
  Clock::time_point deadline;
  std::string what;
  bool thread_started = false;
};

WatchdogState& Dog() {
  static auto* state = new WatchdogState;
  return *state;
}

void WatchdogLoop() {
  WatchdogState& dog = Dog();
  std::unique_lock lock(dog.mu);
  for (;;) {
    if (!dog.armed) {
      dog.cv.wait(lock);
      continue;
    }
    if (Clock::now() >= dog.deadline) {
      std::fprintf(stderr, "netlayer-bench: watchdog: '%s' overran its time budget; giving up\n",
                   dog.what.c_str());
      std::fflush(stderr);
      _exit(3);
    }
    dog.cv.wait_until(lock, dog.deadline);
  }
}

bool Matches(const Options& options, const FigureSpec& spec) {
  return options.filter.empty() || spec.id.find(options.filter) != std::string::npos;
}

// Budget for one runner call: generous, only there so nothing hangs forever.
Seconds Budget(Seconds work) { return work * 3 + Seconds(30); }

const FigureResult* Find(const Report& report, const std::string& id) {
  for (const auto& f : report.figures) {
    if (f.spec.id == id) return &f;
  }
  return nullptr;
}

// A baseline's short name for the table: the middle part of its id ("pingpong/asio/16B" ->
// "asio").
std::string ShortName(const std::string& id) {
  size_t first = id.find('/');
  size_t last = id.rfind('/');
  if (first == std::string::npos || first == last) return id;
  return id.substr(first + 1, last - first - 1);
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

void Watchdog::Arm(Seconds budget, std::string what) {
  WatchdogState& dog = Dog();
  std::lock_guard lock(dog.mu);
  if (!dog.thread_started) {
    std::thread(WatchdogLoop).detach();
    dog.thread_started = true;
  }
  dog.armed = true;
  dog.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(budget);
  dog.what = std::move(what);
  dog.cv.notify_all();
}

void Watchdog::Disarm() {
  WatchdogState& dog = Dog();
  std::lock_guard lock(dog.mu);
  dog.armed = false;
  dog.cv.notify_all();
}

double LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1;
  double load = -1;
  if (std::fscanf(f, "%lf", &load) != 1) load = -1;
  std::fclose(f);
  return load;
}

void RunGroups(const std::vector<Group>& groups, const Options& options, Report& report) {
  for (const Group& group : groups) {
    struct Live {
      size_t result_index;
      std::unique_ptr<Runner> runner;
      bool started = false;
      LatencyHistogram latency = {};  // every kept repetition's operations
    };
    std::vector<Live> live;
    for (const FigureSpec& spec : group.figures) {
      if (!Matches(options, spec)) continue;
      FigureResult result;
      result.group = group.title;
      result.spec = spec;
      report.figures.push_back(std::move(result));
      live.push_back({report.figures.size() - 1, nullptr});
    }
    if (live.empty()) continue;
    std::fprintf(stderr, "== %s\n", group.title.c_str());

    auto fail = [&](Live& l, const absl::Status& status, const char* when) {
      FigureResult& r = report.figures[l.result_index];
      if (r.error.empty()) {
        r.error = std::string(when) + ": " + status.ToString();
        ++report.errors;
        std::fprintf(stderr, "   ERROR %s: %s\n", r.spec.id.c_str(), r.error.c_str());
      }
    };

    for (Live& l : live) {
      const FigureSpec& spec = report.figures[l.result_index].spec;
      l.runner = spec.make();
      Watchdog::Arm(Budget(Seconds(10)), spec.id + " start");
      absl::Status s = l.runner->Start();
      Watchdog::Disarm();
      if (s.ok()) {
        l.started = true;
      } else {
        fail(l, s, "start");
      }
    }

    auto measure = [&](Live& l, Seconds duration, bool keep) {
      if (!l.started || !report.figures[l.result_index].error.empty()) return;
      FigureResult& r = report.figures[l.result_index];
      Watchdog::Arm(Budget(duration), r.spec.id + " measure");
      const double cpu0 = ProcessCpuSeconds();
      const auto wall0 = Clock::now();
      absl::StatusOr<double> value = l.runner->Measure(duration);
      const double wall = Seconds(Clock::now() - wall0).count();
      const double cpu = ProcessCpuSeconds() - cpu0;
      Watchdog::Disarm();
      if (!value.ok()) {
        fail(l, value.status(), "measure");
        return;
      }
      if (!keep) return;
      r.samples.push_back(*value);
      // Units of work done ~= rate x wall time of the call.
      const double units = *value * wall;
      if (units > 0) r.cpu_us_per_unit.push_back(cpu / units * 1e6);
      if (const LatencyHistogram* latency = l.runner->latency(); latency != nullptr) {
        r.latency_per_rep.push_back(SummariseLatency(*latency));
        l.latency.Merge(*latency);
      }
      for (const Gauge& g : l.runner->gauges()) {
        auto same = [&g](const Gauge& kept) { return kept.name == g.name; };
        auto it = std::find_if(r.gauges.begin(), r.gauges.end(), same);
        if (it == r.gauges.end()) {
          r.gauges.push_back(g);
        } else {
          it->value = std::max(it->value, g.value);
        }
      }
    };

    if (!group.no_warmup) {
      for (Live& l : live) measure(l, options.warmup, /*keep=*/false);
    }
    for (int rep = 0; rep < options.repetitions; ++rep) {
      // Rotate the order so no runner always goes first (or always follows a given one).
      for (size_t k = 0; k < live.size(); ++k) {
        measure(live[(k + rep) % live.size()], options.rep_duration, /*keep=*/true);
      }
      std::fprintf(stderr, "   rep %d/%d done\n", rep + 1, options.repetitions);
    }

    for (Live& l : live) {
      FigureResult& r = report.figures[l.result_index];
      if (!r.latency_per_rep.empty()) r.latency = SummariseLatency(l.latency);
      if (!l.started) continue;
      Watchdog::Arm(Budget(Seconds(10)), report.figures[l.result_index].spec.id + " stop");
      absl::Status s = l.runner->Stop();
      Watchdog::Disarm();
      if (!s.ok()) fail(l, s, "stop");
      l.runner.reset();
    }
  }
}

void Summarise(Report& report) {
  for (FigureResult& f : report.figures) {
    if (f.samples.empty()) continue;
    f.min = *std::min_element(f.samples.begin(), f.samples.end());
    f.max = *std::max_element(f.samples.begin(), f.samples.end());
    f.median = Median(f.samples);
    f.cpu_median = Median(f.cpu_us_per_unit);
  }
  report.ratios.clear();
  for (const FigureResult& f : report.figures) {
    for (const Comparison& c : f.spec.comparisons) {
      if (c.steadiness) {
        if (f.samples.empty() || f.median <= 0) continue;
        RatioResult r;
        r.figure = f.spec.id;
        r.baseline = "its median";
        r.name = "slowest rep / median";
        r.steadiness = true;
        r.ratio = f.min / f.median;
        r.target = c.target;
        r.met = c.target.has_value() && r.ratio >= *c.target;
        report.ratios.push_back(r);
        continue;
      }
      if (c.reference) {
        if (f.samples.empty() || *c.reference <= 0) continue;
        RatioResult r;
        r.figure = f.spec.id;
        r.baseline = c.baseline;
        r.name = c.name.empty() ? c.baseline : c.name;
        r.reference = c.reference;
        r.ratio = f.median / *c.reference;
        r.target = c.target;
        r.met = c.target.has_value() && r.ratio >= *c.target;
        if (f.latency) r.p99_us = f.latency->p99_us;
        report.ratios.push_back(r);
        continue;
      }
      const FigureResult* base = Find(report, c.baseline);
      if (base == nullptr || base->samples.empty() || f.samples.empty() || base->median <= 0) {
        continue;
      }
      RatioResult r;
      r.figure = f.spec.id;
      r.baseline = c.baseline;
      r.ratio = f.median / base->median;
      if (f.cpu_median > 0) r.cpu_ratio = base->cpu_median / f.cpu_median;
      r.target = c.target;
      r.met = c.target.has_value() && r.ratio >= *c.target;
      r.name = c.name.empty() ? ShortName(c.baseline) : c.name;
      if (f.latency && base->latency && f.latency->p99_us > 0) {
        r.p99_ratio = base->latency->p99_us / f.latency->p99_us;
      }
      r.show_p99 = c.show_p99 || c.lower_p99;
      r.lower_p99 = c.lower_p99;
      r.p99_met = c.lower_p99 && r.p99_ratio > 1;
      report.ratios.push_back(r);
    }
  }
}

namespace {

// "p50 / p99 / p99.9" columns: blank for figures that time no operations.
std::string LatencyColumns(const FigureResult& f) {
  char buf[96];
  if (!f.latency) {
    std::snprintf(buf, sizeof buf, "%8s %8s %8s", "", "", "");
  } else {
    std::snprintf(buf, sizeof buf, "%8s %8s %8s", FormatValue(f.latency->p50_us).c_str(),
                  FormatValue(f.latency->p99_us).c_str(), FormatValue(f.latency->p999_us).c_str());
  }
  return buf;
}

std::string RatioText(const RatioResult& r) {
  char buf[160];
  if (r.target) {
    std::snprintf(buf, sizeof buf, "%.2fx %s (>= %.2f %s)", r.ratio, r.name.c_str(), *r.target,
                  r.met ? "met" : "MISSED");
  } else {
    std::snprintf(buf, sizeof buf, "%.2fx %s", r.ratio, r.name.c_str());
  }
  std::string text = buf;
  if (r.show_p99 && r.p99_ratio > 0) {
    std::snprintf(buf, sizeof buf, "; p99 %.2fx lower%s", r.p99_ratio,
                  r.lower_p99 ? (r.p99_met ? " (> 1 met)" : " (> 1 MISSED)") : "");
    text += buf;
  }
  return text;
}

}  // namespace

void PrintTable(const Report& report, const Options& options, std::FILE* out) {
  std::fprintf(out, "netlayer-bench: %d repetitions of %.2f s per figure (medians; min..max)\n\n",
               options.repetitions, options.rep_duration.count());
  std::fprintf(out, "%-38s %-8s %11s %11s %11s %9s %8s %8s %8s  %s\n", "figure", "unit", "min",
               "median", "max", "cpu us/u", "p50 us", "p99 us", "p99.9 us",
               "ratio of medians (target)");
  std::string group;
  for (const FigureResult& f : report.figures) {
    if (f.group != group) {
      group = f.group;
      std::fprintf(out, "%s\n", group.c_str());
    }
    std::string label = "  " + f.spec.label;
    if (!f.error.empty()) {
      std::fprintf(out, "%-38s %-8s  ERROR: %s\n", label.c_str(), f.spec.unit.c_str(),
                   f.error.c_str());
      continue;
    }
    if (f.samples.empty()) {
      std::fprintf(out, "%-38s %-8s  (no samples)\n", label.c_str(), f.spec.unit.c_str());
      continue;
    }
    std::string ratios;
    for (const RatioResult& r : report.ratios) {
      if (r.figure != f.spec.id) continue;
      if (!ratios.empty()) ratios += ", ";
      ratios += RatioText(r);
    }
    std::fprintf(out, "%-38s %-8s %11s %11s %11s %9s %s  %s\n", label.c_str(), f.spec.unit.c_str(),
                 FormatValue(f.min).c_str(), FormatValue(f.median).c_str(),
                 FormatValue(f.max).c_str(), FormatValue(f.cpu_median).c_str(),
                 LatencyColumns(f).c_str(), ratios.c_str());
  }
  int targets = 0, met = 0;
  for (const RatioResult& r : report.ratios) {
    if (r.target) {
      ++targets;
      if (r.met) ++met;
    }
    if (r.lower_p99) {
      ++targets;
      if (r.p99_met) ++met;
    }
  }
  std::fprintf(out,
               "(cpu us/u: median CPU time of the whole process, all threads, per unit of the "
               "figure: per round trip, call or event, per MB for MB/s, per simulated second "
               "for x, per seed for seeds/s. p50/p99/p99.9 us: latency of single calls over "
               "all repetitions, from a log-bucketed histogram, within 0.8 %%)\n");
  std::fprintf(out, "\ntargets (issues 7, 14, 17): %d of %d met", met, targets);
  if (report.errors > 0) std::fprintf(out, "; %d ERROR(S)", report.errors);
  std::fprintf(out, "\n");
  for (const RatioResult& r : report.ratios) {
    if (r.target && r.reference) {
      const FigureResult* f = Find(report, r.figure);
      const std::string unit = f != nullptr ? " " + f->spec.unit : "";
      std::fprintf(out, "  %-8s %s / %s %s%s = %.3f (target >= %.2f%s%s)\n",
                   r.met ? "met" : "MISSED", r.figure.c_str(), r.baseline.c_str(),
                   FormatValue(*r.reference).c_str(), unit.c_str(), r.ratio, *r.target,
                   r.p99_us > 0 ? "; p99 us " : "",
                   r.p99_us > 0 ? FormatValue(r.p99_us).c_str() : "");
      continue;
    }
    if (r.target && r.steadiness) {
      std::fprintf(out, "  %-8s %s slowest repetition / its median = %.3f (target >= %.2f)\n",
                   r.met ? "met" : "MISSED", r.figure.c_str(), r.ratio, *r.target);
      continue;
    }
    if (r.target) {
      std::fprintf(out, "  %-8s %s / %s = %.3f (target >= %.2f; CPU per unit: %.2fx)\n",
                   r.met ? "met" : "MISSED", r.figure.c_str(), r.baseline.c_str(), r.ratio,
                   *r.target, r.cpu_ratio);
    }
    if (r.lower_p99) {
      std::fprintf(out, "  %-8s %s p99 below %s's: %.3fx lower (target > 1)\n",
                   r.p99_met ? "met" : "MISSED", r.figure.c_str(), r.baseline.c_str(), r.p99_ratio);
    }
  }
  for (const FigureResult& f : report.figures) {
    if (f.gauges.empty()) continue;
    std::fprintf(out, "  %-30s", f.spec.id.c_str());
    for (const Gauge& g : f.gauges) {
      std::fprintf(out, "  %s %s%s%s", g.name.c_str(), FormatValue(g.value).c_str(),
                   g.unit.empty() ? "" : " ", g.unit.c_str());
    }
    std::fprintf(out, "  (largest over the repetitions)\n");
  }
  for (const std::string& note : report.notes) std::fprintf(out, "note: %s\n", note.c_str());
  if (report.load_at_start >= 0) {
    unsigned cpus = std::thread::hardware_concurrency();
    std::fprintf(out, "load average: %.2f at start, %.2f at end, on %u CPUs%s\n",
                 report.load_at_start, report.load_at_end, cpus,
                 std::max(report.load_at_start, report.load_at_end) > 0.5 * cpus
                     ? " (a busy machine: expect noisy figures)"
                     : "");
  }
}

bool WriteJson(const Report& report, const Options& options, const std::string& command_line,
               const std::string& path) {
  using nlohmann::json;
  json doc;
  doc["tool"] = "netlayer-bench";
  doc["format"] = 2;  // 2: latency_us, p99 ratios
  doc["command"] = command_line;
  doc["mode"] = options.quick ? "quick" : "full";
  doc["repetitions"] = options.repetitions;
  doc["seconds_per_repetition"] = options.rep_duration.count();
  doc["warmup_seconds"] = options.warmup.count();
  doc["cpus"] = std::thread::hardware_concurrency();
#ifdef NETLAYER_BENCH_BUILD_TYPE
  doc["build_type"] = NETLAYER_BENCH_BUILD_TYPE;
#endif
  json figures = json::array();
  for (const FigureResult& f : report.figures) {
    json j;
    j["id"] = f.spec.id;
    j["group"] = f.group;
    j["label"] = f.spec.label;
    j["unit"] = f.spec.unit;
    j["samples"] = f.samples;
    if (!f.samples.empty()) {
      j["min"] = f.min;
      j["median"] = f.median;
      j["max"] = f.max;
    }
    j["cpu_us_per_unit"] = f.cpu_us_per_unit;
    if (!f.cpu_us_per_unit.empty()) j["cpu_us_per_unit_median"] = f.cpu_median;
    if (f.latency) {
      auto summary = [](const LatencySummary& l) {
        return json{{"p50", l.p50_us}, {"p99", l.p99_us}, {"p999", l.p999_us}, {"count", l.count}};
      };
      j["latency_us"] = summary(*f.latency);
      json per_rep = json::array();
      for (const LatencySummary& l : f.latency_per_rep) per_rep.push_back(summary(l));
      j["latency_us_per_rep"] = per_rep;
    }
    if (!f.gauges.empty()) {
      json gauges = json::object();
      for (const Gauge& g : f.gauges) gauges[g.name] = json{{"value", g.value}, {"unit", g.unit}};
      j["gauges"] = gauges;
    }
    j["error"] = f.error.empty() ? json(nullptr) : json(f.error);
    figures.push_back(j);
  }
  doc["figures"] = figures;
  json ratios = json::array();
  for (const RatioResult& r : report.ratios) {
    json j;
    j["figure"] = r.figure;
    j["baseline"] = r.baseline;
    j["ratio"] = r.ratio;
    j["cpu_ratio"] = r.cpu_ratio;
    j["target"] = r.target ? json(*r.target) : json(nullptr);
    j["met"] = r.target ? json(r.met) : json(nullptr);
    j["p99_ratio"] = r.p99_ratio;
    j["p99_target_lower"] = r.lower_p99;
    j["p99_met"] = r.lower_p99 ? json(r.p99_met) : json(nullptr);
    if (r.steadiness) j["steadiness"] = true;  // ratio: slowest repetition / median
    if (r.reference) {
      j["reference"] = *r.reference;  // the baseline is this fixed value, not a figure
      j["p99_us"] = r.p99_us;
    }
    ratios.push_back(j);
  }
  doc["ratios"] = ratios;
  doc["notes"] = report.notes;
  doc["load_average_at_start"] = report.load_at_start;
  doc["load_average_at_end"] = report.load_at_end;
  doc["errors"] = report.errors;
  std::ofstream file(path);
  if (!file) {
    std::fprintf(stderr, "netlayer-bench: cannot write %s\n", path.c_str());
    return false;
  }
  file << doc.dump(2) << "\n";
  file.close();
  if (!file) {
    std::fprintf(stderr, "netlayer-bench: error writing %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace netlayer::bench
