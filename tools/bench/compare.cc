#include "compare.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "stats.h"

namespace netlayer::bench {
namespace {

using nlohmann::json;

// One measure of one figure in one run: its per-repetition values.
struct Series {
  std::vector<double> values;
  bool empty() const { return values.empty(); }
  double min() const { return *std::min_element(values.begin(), values.end()); }
  double max() const { return *std::max_element(values.begin(), values.end()); }
  double median() const { return Median(values); }
};

std::vector<double> Numbers(const json& figure, const char* key) {
  std::vector<double> out;
  auto it = figure.find(key);
  if (it == figure.end() || !it->is_array()) return out;
  for (const json& v : *it) {
    if (v.is_number()) out.push_back(v.get<double>());
  }
  return out;
}

std::vector<double> LatencyPerRep(const json& figure, const char* percentile) {
  std::vector<double> out;
  auto it = figure.find("latency_us_per_rep");
  if (it == figure.end() || !it->is_array()) return out;
  for (const json& rep : *it) {
    auto p = rep.find(percentile);
    if (p != rep.end() && p->is_number()) out.push_back(p->get<double>());
  }
  return out;
}

bool HasError(const json& figure) {
  auto it = figure.find("error");
  return it != figure.end() && it->is_string();
}

absl::Status CheckDocument(const json& doc, const char* which) {
  if (!doc.is_object() || doc.value("tool", "") != "netlayer-bench" || !doc.contains("figures") ||
      !doc["figures"].is_array()) {
    return absl::InvalidArgumentError(std::string(which) +
                                      " is not a netlayer-bench --json document");
  }
  const int format = doc.value("format", 0);
  if (format < 1 || format > 2) {
    return absl::InvalidArgumentError(std::string(which) + ": unknown format " +
                                      std::to_string(format) + " (this tool reads 1 and 2)");
  }
  return absl::OkStatus();
}

CompareRow MakeRow(const std::string& id, const std::string& measure, const Series& old_series,
                   const Series& new_series, bool higher_is_better) {
  CompareRow row;
  row.id = id;
  row.measure = measure;
  if (old_series.empty() || new_series.empty()) return row;  // kMissing
  row.old_median = old_series.median();
  row.new_median = new_series.median();
  row.old_min = old_series.min();
  row.old_max = old_series.max();
  row.new_min = new_series.min();
  row.new_max = new_series.max();
  if (row.old_median != 0 && row.new_median != 0) row.ratio = row.new_median / row.old_median;
  if (row.new_min > row.old_max) {
    row.verdict = higher_is_better ? Verdict::kBetter : Verdict::kWorse;
  } else if (row.new_max < row.old_min) {
    row.verdict = higher_is_better ? Verdict::kWorse : Verdict::kBetter;
  } else {
    row.verdict = Verdict::kWithinSpread;
  }
  return row;
}

const char* VerdictText(Verdict v) {
  switch (v) {
    case Verdict::kWithinSpread:
      return "within spread";
    case Verdict::kBetter:
      return "BETTER (beyond spread)";
    case Verdict::kWorse:
      return "WORSE (beyond spread)";
    case Verdict::kMissing:
      return "(missing)";
  }
  return "";
}

}  // namespace

absl::StatusOr<RunComparison> CompareRuns(const json& old_run, const json& new_run) {
  if (absl::Status s = CheckDocument(old_run, "OLD"); !s.ok()) return s;
  if (absl::Status s = CheckDocument(new_run, "NEW"); !s.ok()) return s;
  RunComparison out;
  const std::string old_mode = old_run.value("mode", "?"), new_mode = new_run.value("mode", "?");
  if (old_mode != new_mode) {
    out.notes.push_back("the runs are of different modes (" + old_mode + " and " + new_mode +
                        "): the quick mode's shorter repetitions differ in their own right");
  }
  for (const auto& [run, name] : {std::pair{&old_run, "OLD"}, std::pair{&new_run, "NEW"}}) {
    const double load = std::max(run->value("load_average_at_start", -1.0),
                                 run->value("load_average_at_end", -1.0));
    const int cpus = run->value("cpus", 0);
    if (cpus > 0 && load > 0.5 * cpus) {
      out.notes.push_back(std::string(name) + " ran on a busy machine (load average " +
                          FormatValue(load) + " on " + std::to_string(cpus) +
                          " CPUs): its spread is wide and its figures noisy");
    }
  }

  std::map<std::string, const json*> old_figures;
  for (const json& f : old_run["figures"]) old_figures[f.value("id", "")] = &f;
  std::map<std::string, bool> seen;
  for (const json& f : new_run["figures"]) {
    const std::string id = f.value("id", "");
    auto it = old_figures.find(id);
    if (it == old_figures.end()) {
      out.only_new.push_back(id);
      continue;
    }
    seen[id] = true;
    const json& o = *it->second;
    if (HasError(o)) out.notes.push_back(id + ": error in OLD: " + o["error"].get<std::string>());
    if (HasError(f)) out.notes.push_back(id + ": error in NEW: " + f["error"].get<std::string>());
    out.rows.push_back(MakeRow(id, f.value("unit", "value"), {Numbers(o, "samples")},
                               {Numbers(f, "samples")}, /*higher_is_better=*/true));
    out.rows.push_back(MakeRow(id, "cpu us/u", {Numbers(o, "cpu_us_per_unit")},
                               {Numbers(f, "cpu_us_per_unit")}, /*higher_is_better=*/false));
    for (const auto& [key, measure] :
         {std::pair{"p50", "p50 us"}, std::pair{"p99", "p99 us"}, std::pair{"p999", "p99.9 us"}}) {
      Series a{LatencyPerRep(o, key)}, b{LatencyPerRep(f, key)};
      if (a.empty() && b.empty()) continue;
      out.rows.push_back(MakeRow(id, measure, a, b, /*higher_is_better=*/false));
    }
  }
  for (const auto& [id, figure] : old_figures) {
    if (!seen.count(id)) out.only_old.push_back(id);
  }
  return out;
}

void PrintComparison(const RunComparison& comparison, const std::string& old_name,
                     const std::string& new_name, std::FILE* out) {
  std::fprintf(out, "netlayer-bench compare: OLD %s, NEW %s\n", old_name.c_str(), new_name.c_str());
  std::fprintf(out,
               "(medians; NEW/OLD ratio; flagged when the two runs' min..max over their "
               "repetitions do not overlap)\n\n");
  std::fprintf(out, "%-32s %-9s %12s %12s %8s  %s\n", "figure", "measure", "OLD", "NEW", "NEW/OLD",
               "");
  int better = 0, worse = 0, within = 0;
  std::string last_id;
  for (const CompareRow& row : comparison.rows) {
    const std::string id = row.id == last_id ? "" : row.id;
    last_id = row.id;
    if (row.verdict == Verdict::kMissing) {
      std::fprintf(out, "%-32s %-9s %12s %12s %8s  %s\n", id.c_str(), row.measure.c_str(), "-", "-",
                   "-", VerdictText(row.verdict));
      continue;
    }
    if (row.verdict == Verdict::kBetter) ++better;
    if (row.verdict == Verdict::kWorse) ++worse;
    if (row.verdict == Verdict::kWithinSpread) ++within;
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.3fx", row.ratio);
    std::fprintf(out, "%-32s %-9s %12s %12s %8s  %s\n", id.c_str(), row.measure.c_str(),
                 FormatValue(row.old_median).c_str(), FormatValue(row.new_median).c_str(), ratio,
                 VerdictText(row.verdict));
  }
  std::fprintf(out, "\n%d measures beyond the spread better, %d worse, %d within\n", better, worse,
               within);
  for (const auto& [ids, which] :
       {std::pair{&comparison.only_old, "OLD"}, std::pair{&comparison.only_new, "NEW"}}) {
    if (ids->empty()) continue;
    std::string list;
    for (const std::string& id : *ids) list += (list.empty() ? "" : ", ") + id;
    std::fprintf(out, "only in %s (%zu): %s\n", which, ids->size(), list.c_str());
  }
  for (const std::string& note : comparison.notes) std::fprintf(out, "note: %s\n", note.c_str());
}

int RunCompare(const std::string& old_path, const std::string& new_path, std::FILE* out) {
  json docs[2];
  const std::string paths[2] = {old_path, new_path};
  for (int i = 0; i < 2; ++i) {
    std::ifstream file(paths[i]);
    if (!file) {
      std::fprintf(stderr, "netlayer-bench compare: cannot read %s\n", paths[i].c_str());
      return 1;
    }
    docs[i] = json::parse(file, nullptr, /*allow_exceptions=*/false);
    if (docs[i].is_discarded()) {
      std::fprintf(stderr, "netlayer-bench compare: %s is not JSON\n", paths[i].c_str());
      return 1;
    }
  }
  absl::StatusOr<RunComparison> comparison = CompareRuns(docs[0], docs[1]);
  if (!comparison.ok()) {
    std::fprintf(stderr, "netlayer-bench compare: %s\n",
                 std::string(comparison.status().message()).c_str());
    return 1;
  }
  PrintComparison(*comparison, old_path, new_path, out);
  return 0;
}

}  // namespace netlayer::bench
