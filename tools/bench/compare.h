// `netlayer-bench compare OLD.json NEW.json`: each figure of two runs (--json) side by side, its
// ratio new/old, and a flag when the change is beyond the runs' own spread.
//
// "Beyond the spread": the two runs' ranges over their repetitions (min..max) do not overlap,
// i.e. every repetition of one run was better than every repetition of the other. With one
// repetition a range is a single value and any change is flagged: use several (the default 7,
// quick 3). Measures compared per figure: the rate (samples), the CPU per unit
// (cpu_us_per_unit) and, for figures that time calls, p50/p99/p99.9 latency (per repetition).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace netlayer::bench {

enum class Verdict {
  kWithinSpread,  // the ranges overlap
  kBetter,        // beyond the spread, better (higher rate, less CPU, lower latency)
  kWorse,         // beyond the spread, worse
  kMissing,       // one side has no value (error, no samples, not measured)
};

struct CompareRow {
  std::string id;       // figure id
  std::string measure;  // the unit ("calls/s"), "cpu us/u", "p50 us", "p99 us", "p99.9 us"
  double old_median = 0, new_median = 0;
  double old_min = 0, old_max = 0, new_min = 0, new_max = 0;
  double ratio = 0;  // new / old medians; 0 if either is missing or zero
  Verdict verdict = Verdict::kMissing;
};

struct RunComparison {
  std::vector<CompareRow> rows;
  std::vector<std::string> only_old, only_new;  // figure ids present in one run only
  std::vector<std::string> notes;               // different modes, busy machines, errors
};

// Compares two documents written by `netlayer-bench --json` (format 1 or 2). InvalidArgument if
// either is not one.
absl::StatusOr<RunComparison> CompareRuns(const nlohmann::json& old_run,
                                          const nlohmann::json& new_run);

void PrintComparison(const RunComparison& comparison, const std::string& old_name,
                     const std::string& new_name, std::FILE* out);

// Reads both files, compares and prints. The exit status: 0 compared (changes, even beyond the
// spread, never change it), 1 a file is missing or not a netlayer-bench JSON document.
int RunCompare(const std::string& old_path, const std::string& new_path, std::FILE* out);

}  // namespace netlayer::bench
