// `netlayer-bench compare`: ratios and the "beyond the spread" flag, on hand-made JSON runs.
#include <string>

#include "compare.h"
#include "gtest/gtest.h"

namespace netlayer::bench {
namespace {

using nlohmann::json;

json Figure(const std::string& id, std::vector<double> samples, std::vector<double> cpu,
            std::vector<double> p99 = {}) {
  json f = {{"id", id},
            {"unit", "calls/s"},
            {"samples", samples},
            {"error", nullptr},
            {"cpu_us_per_unit", cpu}};
  if (!p99.empty()) {
    json reps = json::array();
    for (double v : p99) reps.push_back({{"p50", v / 2}, {"p99", v}, {"p999", v * 2}});
    f["latency_us_per_rep"] = reps;
  }
  return f;
}

json MakeRun(std::vector<json> figures, std::string mode = "full", double load = 0.1) {
  return {{"tool", "netlayer-bench"},
          {"format", 2},
          {"mode", mode},
          {"cpus", 2},
          {"load_average_at_start", load},
          {"load_average_at_end", load},
          {"figures", figures}};
}

const CompareRow* Row(const RunComparison& c, const std::string& id, const std::string& measure) {
  for (const CompareRow& r : c.rows) {
    if (r.id == id && r.measure == measure) return &r;
  }
  return nullptr;
}

TEST(BenchCompareTest, OverlappingRangesAreWithinTheSpread) {
  auto c = CompareRuns(MakeRun({Figure("a", {90, 100, 110}, {10, 11, 12})}),
                       MakeRun({Figure("a", {105, 115, 120}, {10, 10.5, 11})}));
  ASSERT_TRUE(c.ok()) << c.status();
  const CompareRow* rate = Row(*c, "a", "calls/s");
  ASSERT_NE(rate, nullptr);
  EXPECT_DOUBLE_EQ(rate->ratio, 1.15);
  EXPECT_EQ(rate->verdict, Verdict::kWithinSpread);
  EXPECT_EQ(Row(*c, "a", "cpu us/u")->verdict, Verdict::kWithinSpread);
}

TEST(BenchCompareTest, DisjointRangesAreFlaggedInTheRightDirection) {
  auto c = CompareRuns(MakeRun({Figure("a", {90, 100, 110}, {10, 11, 12}, {50, 60, 70})}),
                       MakeRun({Figure("a", {60, 70, 80}, {5, 6, 7}, {100, 120, 130})}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Row(*c, "a", "calls/s")->verdict, Verdict::kWorse);    // fewer calls/s
  EXPECT_EQ(Row(*c, "a", "cpu us/u")->verdict, Verdict::kBetter);  // less CPU per call
  const CompareRow* p99 = Row(*c, "a", "p99 us");
  ASSERT_NE(p99, nullptr);
  EXPECT_EQ(p99->verdict, Verdict::kWorse);  // a higher tail
  EXPECT_DOUBLE_EQ(p99->ratio, 2.0);
  EXPECT_EQ(Row(*c, "a", "p50 us")->verdict, Verdict::kWorse);
}

TEST(BenchCompareTest, FiguresInOneRunOnlyAndErrorsAreListed) {
  json broken = Figure("b", {}, {});
  broken["error"] = "start: refused";
  auto c = CompareRuns(MakeRun({Figure("a", {1}, {1}), Figure("b", {1, 2}, {1, 2})}),
                       MakeRun({broken, Figure("c", {1}, {1})}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->only_old, std::vector<std::string>{"a"});
  EXPECT_EQ(c->only_new, std::vector<std::string>{"c"});
  EXPECT_EQ(Row(*c, "b", "calls/s")->verdict, Verdict::kMissing);
  ASSERT_FALSE(c->notes.empty());
  EXPECT_NE(c->notes[0].find("error in NEW"), std::string::npos);
}

TEST(BenchCompareTest, NotesDifferentModesAndBusyMachines) {
  auto c = CompareRuns(MakeRun({}, "full", 0.2), MakeRun({}, "quick", 3.5));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->notes.size(), 2u);
  EXPECT_NE(c->notes[0].find("different modes"), std::string::npos);
  EXPECT_NE(c->notes[1].find("NEW ran on a busy machine"), std::string::npos);
}

TEST(BenchCompareTest, RejectsOtherDocuments) {
  EXPECT_FALSE(CompareRuns(json::object(), MakeRun({})).ok());
  json future = MakeRun({});
  future["format"] = 99;
  EXPECT_FALSE(CompareRuns(MakeRun({}), future).ok());
}

}  // namespace
}  // namespace netlayer::bench
