// netlayer-bench's latency histogram: bucket boundaries, quantiles, merging. No timing.
#include <cstdint>
#include <limits>

#include "gtest/gtest.h"
#include "histogram.h"

namespace netlayer::bench {
namespace {

TEST(LatencyHistogramTest, BucketsAreContiguousAndBoundedInWidth) {
  // Every bucket starts right after the previous one ends, and is at most 1/128 of its values.
  for (size_t i = 1; i < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLow(i), LatencyHistogram::BucketHigh(i - 1) + 1) << i;
    const uint64_t low = LatencyHistogram::BucketLow(i);
    const uint64_t width = LatencyHistogram::BucketHigh(i) - low + 1;
    if (low < 2 * LatencyHistogram::kSubBuckets) {
      ASSERT_EQ(width, 1u) << i;  // small values are exact
    } else {
      ASSERT_LE(width, low / LatencyHistogram::kSubBuckets) << i;
    }
  }
  EXPECT_EQ(LatencyHistogram::BucketHigh(LatencyHistogram::kBuckets - 1),
            std::numeric_limits<uint64_t>::max());
}

TEST(LatencyHistogramTest, ValuesMapIntoTheirBucket) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{257}, uint64_t{1000},
        uint64_t{123456789}, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()}) {
    const size_t i = LatencyHistogram::BucketIndex(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets);
    EXPECT_LE(LatencyHistogram::BucketLow(i), v);
    EXPECT_GE(LatencyHistogram::BucketHigh(i), v);
  }
}

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 50u);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 99u);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100u);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 1u);
}

TEST(LatencyHistogramTest, QuantilesAreWithinTheBucketError) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000000; ++v) h.Record(v * 10);  // 10 ns .. 10 ms
  EXPECT_EQ(h.count(), 1000000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 1e7;
    const double got = static_cast<double>(h.ValueAtQuantile(q));
    EXPECT_GE(got, exact - 10) << q;  // never below the true quantile
    EXPECT_LE(got, exact * (1 + 1.0 / 128)) << q;
  }
  EXPECT_EQ(h.ValueAtQuantile(1.0), 10000000u);
}

TEST(LatencyHistogramTest, QuantileNeverExceedsTheLargestValue) {
  LatencyHistogram h;
  h.Record(1000001);  // its bucket reaches beyond it
  EXPECT_EQ(h.ValueAtQuantile(0.5), 1000001u);
}

TEST(LatencyHistogramTest, ATailShowsInTheHighPercentiles) {
  LatencyHistogram h;
  for (int i = 0; i < 990; ++i) h.Record(20000);   // 20 us
  for (int i = 0; i < 10; ++i) h.Record(5000000);  // 5 ms: 1 %
  const LatencySummary s = SummariseLatency(h);
  EXPECT_NEAR(s.p50_us, 20, 20 / 128.0);
  EXPECT_NEAR(s.p99_us, 20, 20 / 128.0);  // the 990th of 1000 is still 20 us
  EXPECT_NEAR(s.p999_us, 5000, 5000 / 128.0);
  EXPECT_EQ(s.count, 1000u);
}

TEST(LatencyHistogramTest, MergeAddsCountsAndKeepsExtremes) {
  LatencyHistogram a, b;
  for (int i = 0; i < 100; ++i) a.Record(1000);
  for (int i = 0; i < 100; ++i) b.Record(3000);
  b.Record(7);
  a.Merge(b);
  EXPECT_EQ(a.count(), 201u);
  EXPECT_EQ(a.min(), 7u);
  EXPECT_EQ(a.max(), 3000u);
  EXPECT_NEAR(static_cast<double>(a.ValueAtQuantile(0.25)), 1000, 1000 / 128.0);
  EXPECT_NEAR(static_cast<double>(a.ValueAtQuantile(0.75)), 3000, 3000 / 128.0);

  LatencyHistogram copy = a;
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(copy.count(), 201u);
}

}  // namespace
}  // namespace netlayer::bench
