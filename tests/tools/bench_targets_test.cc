// netlayer-bench's ratios and targets (Summarise, PrintTable): against another figure, and
// against a fixed reference (the load a rate-limited figure is offered, the scale group).
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "harness.h"

namespace netlayer::bench {
namespace {

FigureResult Result(const std::string& id, std::vector<double> samples,
                    std::vector<Comparison> comparisons = {}, double p99_us = 0) {
  FigureResult f;
  f.group = "g";
  f.spec.id = id;
  f.spec.label = id;
  f.spec.unit = "calls/s";
  f.spec.comparisons = std::move(comparisons);
  f.samples = std::move(samples);
  f.cpu_us_per_unit = {10, 10, 10};
  if (p99_us > 0) {
    LatencySummary l;
    l.p50_us = p99_us / 2;
    l.p99_us = p99_us;
    l.p999_us = p99_us * 2;
    l.count = 100;
    f.latency = l;
  }
  return f;
}

const RatioResult* Ratio(const Report& report, const std::string& figure,
                         const std::string& baseline) {
  for (const RatioResult& r : report.ratios) {
    if (r.figure == figure && r.baseline == baseline) return &r;
  }
  return nullptr;
}

std::string Table(const Report& report) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buf, &size);
  PrintTable(report, Options{}, out);
  std::fclose(out);
  std::string text(buf, size);
  std::free(buf);
  return text;
}

// The scale group's target: each server serves >= 0.99 of the offered load.
Comparison ServesOffered(double offered) {
  return {"offered", 0.99, "offered", false, false, offered};
}

TEST(BenchTargetsTest, AReferenceTargetIsTheMedianOverTheFixedValue) {
  Report report;
  report.figures.push_back(
      Result("scale/posix/100", {990, 999, 1000}, {ServesOffered(1000)}, /*p99_us=*/250));
  report.figures.push_back(Result("scale/asio/100", {970, 980, 985}, {ServesOffered(1000)}));
  Summarise(report);

  const RatioResult* posix = Ratio(report, "scale/posix/100", "offered");
  ASSERT_NE(posix, nullptr);
  EXPECT_DOUBLE_EQ(posix->ratio, 0.999);
  EXPECT_TRUE(posix->met);
  ASSERT_TRUE(posix->reference.has_value());
  EXPECT_DOUBLE_EQ(*posix->reference, 1000);
  EXPECT_DOUBLE_EQ(posix->p99_us, 250);
  EXPECT_EQ(posix->cpu_ratio, 0);  // no CPU ratio against a fixed value

  const RatioResult* asio = Ratio(report, "scale/asio/100", "offered");
  ASSERT_NE(asio, nullptr);
  EXPECT_DOUBLE_EQ(asio->ratio, 0.98);
  EXPECT_FALSE(asio->met);

  const std::string table = Table(report);
  EXPECT_NE(table.find("1 of 2 met"), std::string::npos) << table;
  EXPECT_NE(table.find("met      scale/posix/100 / offered 1,000 calls/s = 0.999 (target >= 0.99; "
                       "p99 us 250)"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("MISSED   scale/asio/100 / offered 1,000 calls/s = 0.980 (target >= 0.99)"),
            std::string::npos)
      << table;
}

// Two figures that both serve the offered load: their ratio is reported without a target, so
// which side of 1.00 it falls on (noise) is never a missed target.
TEST(BenchTargetsTest, AComparisonWithoutATargetIsNeverMissed) {
  Report report;
  report.figures.push_back(Result("scale/posix/100", {1000, 1000, 1001}, {}, 300));
  report.figures.push_back(Result("scale/asio/100", {999, 999, 1000},
                                  {ServesOffered(1000), {"scale/posix/100", {}, "posix", true}},
                                  200));
  Summarise(report);
  const RatioResult* versus = Ratio(report, "scale/asio/100", "scale/posix/100");
  ASSERT_NE(versus, nullptr);
  EXPECT_NEAR(versus->ratio, 0.999, 1e-9);
  EXPECT_FALSE(versus->target.has_value());
  EXPECT_DOUBLE_EQ(versus->p99_ratio, 1.5);
  const std::string table = Table(report);
  EXPECT_NE(table.find("1 of 1 met"), std::string::npos) << table;
  EXPECT_EQ(table.find("MISSED"), std::string::npos) << table;
}

TEST(BenchTargetsTest, AFigureTargetIsTheRatioOfMedians) {
  Report report;
  report.figures.push_back(Result("rpc/grpc/16B/1-thread", {100, 100, 100}));
  report.figures.push_back(
      Result("rpc/netlayer/16B/1-thread", {140, 160, 200}, {{"rpc/grpc/16B/1-thread", 1.5}}));
  Summarise(report);
  const RatioResult* r = Ratio(report, "rpc/netlayer/16B/1-thread", "rpc/grpc/16B/1-thread");
  ASSERT_NE(r, nullptr);
  EXPECT_DOUBLE_EQ(r->ratio, 1.6);
  EXPECT_TRUE(r->met);
  EXPECT_FALSE(r->reference.has_value());
  EXPECT_DOUBLE_EQ(r->cpu_ratio, 1.0);
}

// Issue 17's steadiness target: the slowest repetition over the figure's own median.
TEST(BenchTargetsTest, ASteadinessTargetIsTheSlowestRepetitionOverTheMedian) {
  const Comparison steady = {"", 0.70, "", false, false, std::nullopt, /*steadiness=*/true};
  Report report;
  report.figures.push_back(Result("bulk/netlayer/1MiB", {900, 3000, 3100, 3200, 2900}, {steady}));
  report.figures.push_back(Result("bulk/netlayer/64KiB", {2500, 3000, 3100}, {steady}));
  Summarise(report);
  const RatioResult* spread = Ratio(report, "bulk/netlayer/1MiB", "its median");
  ASSERT_NE(spread, nullptr);
  EXPECT_DOUBLE_EQ(spread->ratio, 0.3);
  EXPECT_FALSE(spread->met);
  const RatioResult* steady_one = Ratio(report, "bulk/netlayer/64KiB", "its median");
  ASSERT_NE(steady_one, nullptr);
  EXPECT_NEAR(steady_one->ratio, 2500.0 / 3000.0, 1e-9);
  EXPECT_TRUE(steady_one->met);
  const std::string table = Table(report);
  EXPECT_NE(table.find("1 of 2 met"), std::string::npos) << table;
  EXPECT_NE(table.find("MISSED   bulk/netlayer/1MiB slowest repetition / its median = 0.300 "
                       "(target >= 0.70)"),
            std::string::npos)
      << table;
}

// A figure that failed (no samples) has no ratio, so no target is counted as met.
TEST(BenchTargetsTest, AFailedFigureHasNoRatio) {
  Report report;
  FigureResult failed = Result("scale/asio/10000", {}, {ServesOffered(100000)});
  failed.error = "start: UNAVAILABLE: refused";
  report.figures.push_back(failed);
  Summarise(report);
  EXPECT_TRUE(report.ratios.empty());
}

}  // namespace
}  // namespace netlayer::bench
