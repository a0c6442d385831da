// The benchmark harness of netlayer-bench: runners, repetitions, statistics, the table and JSON.
//
// A Runner is one measured configuration (for example "ping-pong through raw blocking sockets,
// 1 KiB"). It sets itself up once (Start: listening socket, server thread, client connection),
// then Measure() runs its workload for about the asked duration and returns a rate; between
// Measure calls it is idle, so the runners of one group can take turns: every repetition runs
// each runner of the group once, in a rotating order, and the ratios of one figure to its
// baseline come from the same minutes of the same run.
//
// Thread rules: the harness runs on the main thread; a runner may start its own threads in
// Start and must join them in Stop. Everything is on loopback 127.0.0.1 and bounded in time:
// a watchdog ends the process (exit status 3) if one call overruns its budget.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "histogram.h"
#include "stats.h"

namespace netlayer::bench {

using Seconds = std::chrono::duration<double>;

// A level a runner reads after a measurement, beside its rate (the scale group's server threads
// and resident memory). The report keeps the largest seen over the kept repetitions.
struct Gauge {
  std::string name;  // "server threads"
  double value = 0;
  std::string unit;  // "", "MiB"
};

class Runner {
 public:
  virtual ~Runner() = default;
  // Sets up: sockets, server, connections, threads. Called once, before any Measure.
  virtual absl::Status Start() = 0;
  // Runs the workload for about `duration` and returns the figure's value (a rate).
  virtual absl::StatusOr<double> Measure(Seconds duration) = 0;
  // Tears down and joins every thread Start made. Called once if Start succeeded.
  virtual absl::Status Stop() = 0;
  // A runner that times each operation (an rpc call) returns the latencies of its last Measure
  // here; nullptr if it does not time them. Valid until the next Measure or Stop.
  virtual const LatencyHistogram* latency() const { return nullptr; }
  // Levels read at the end of the last Measure (see Gauge); none by default.
  virtual std::vector<Gauge> gauges() const { return {}; }
};

// "The median of this figure is at least `target` times the median of `baseline`", and, if
// `lower_p99`, "this figure's p99 latency is below the baseline's".
//
// With `reference` set, the baseline is that fixed value instead of a figure: "the median is
// at least `target` times `reference`", e.g. a figure whose load is offered at a fixed rate
// (the scale group: N connections x 10 calls/s) must serve at least 0.99 of it. Comparing two
// such figures with each other says nothing (both serve what is offered; their ratio is ~1 and
// its side of 1.00 is noise): their target is against the offered load, with the p99 beside.
struct Comparison {
  std::string baseline;          // figure id; with `reference`, the reference's name in reports
  std::optional<double> target;  // a target ratio from issues 7, 14 and 17, if there is one
  std::string name = {};         // the baseline's name in the table; default: from its id
  // For figures whose runners time operations: show the ratio of p99 latencies, and whether
  // a lower p99 than the baseline's is a target.
  bool show_p99 = false;
  bool lower_p99 = false;
  // A fixed baseline value (see above); no CPU or p99 ratio then.
  std::optional<double> reference = std::nullopt;
  // Steadiness instead of a baseline: the ratio is the figure's slowest repetition over its own
  // median (issue 17: "the slowest repetition within 0.7x of the median"); `baseline` is unused.
  bool steadiness = false;
};

struct FigureSpec {
  std::string id;     // stable, for JSON and --filter: "pingpong/raw/16B"
  std::string label;  // for the table: "raw blocking sockets"
  std::string unit;   // "rt/s", "MB/s", "calls/s", ...
  std::vector<Comparison> comparisons;
  std::function<std::unique_ptr<Runner>()> make;
};

// A group's runners are alive together and measured in turns.
struct Group {
  std::string title;  // "ping-pong, 16 B messages"
  std::vector<FigureSpec> figures;
  // Set when every figure of the group is a one-shot measurement (no warm-up, no rotation).
  bool no_warmup = false;
};

struct Options {
  int repetitions = 7;
  Seconds rep_duration{0.7};
  Seconds warmup{0.5};
  std::string filter;  // substring of a figure id; empty: all
  bool quick = false;
};

struct FigureResult {
  std::string group;
  FigureSpec spec;
  std::vector<double> samples;
  // CPU time of the whole process (every thread: client, server, backend) per unit of work in
  // each repetition: microseconds per round trip / call / event, or per MB. Far less sensitive
  // to other load on the machine than the rates.
  std::vector<double> cpu_us_per_unit;
  double cpu_median = 0;
  // Latency of single operations, for runners that time them (Runner::latency): the percentiles
  // of each kept repetition (their spread), and of every operation of all of them together.
  std::vector<LatencySummary> latency_per_rep;
  std::optional<LatencySummary> latency;
  std::string error;  // empty if fine
  double min = 0, median = 0, max = 0;
  std::vector<Gauge> gauges;  // each the largest over the kept repetitions
};

struct RatioResult {
  std::string figure, baseline;
  std::string name;  // the baseline's name in the table
  double ratio = 0;
  // The baseline's CPU per unit over this figure's: the same direction as `ratio` (above 1: this
  // figure is cheaper), and steadier than the rate on a busy machine. 0 if unknown.
  double cpu_ratio = 0;
  std::optional<double> target;
  bool met = false;
  // The baseline's p99 latency over this figure's (above 1: this figure's tail is lower); 0 if
  // either has no latency. `p99_met`: the comparison asked for a lower p99 and got it.
  double p99_ratio = 0;
  bool show_p99 = false, lower_p99 = false, p99_met = false;
  // Comparison::reference, when the baseline is a fixed value; and this figure's own p99 (us,
  // 0 if it times nothing), reported beside such a target.
  std::optional<double> reference;
  double p99_us = 0;
  bool steadiness = false;  // Comparison::steadiness: ratio = slowest repetition / median
};

// The 1-minute load average (/proc/loadavg), or -1 if unknown: a busy machine makes noisy figures.
double LoadAverage();

struct Report {
  double load_at_start = -1, load_at_end = -1;
  std::vector<FigureResult> figures;
  std::vector<RatioResult> ratios;
  std::vector<std::string> notes;  // printed under the table and stored in JSON
  int errors = 0;
};

// Runs every group (figures not matching the filter are skipped), fills `report`.
void RunGroups(const std::vector<Group>& groups, const Options& options, Report& report);
// Computes min/median/max and the ratios (after RunGroups).
void Summarise(Report& report);
void PrintTable(const Report& report, const Options& options, std::FILE* out);
// Writes the JSON document to `path`; false (with a message on stderr) if it cannot.
bool WriteJson(const Report& report, const Options& options, const std::string& command_line,
               const std::string& path);

// Ends the process with a message if it is not disarmed within `budget` (a hung connection
// must not hang CI). One at a time; Arm again to re-arm.
class Watchdog {
 public:
  static void Arm(Seconds budget, std::string what);
  static void Disarm();
};

}  // namespace netlayer::bench
