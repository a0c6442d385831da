// A latency histogram in the style of HdrHistogram: log-bucketed counts of nanoseconds with a
// bounded relative error, so millions of calls cost a fixed 58 KiB and a few ns each to record.
//
// Buckets: values below 2^8 ns are counted exactly; above, every power of two [2^e, 2^(e+1)) is
// cut into 128 equal sub-buckets, so a bucket is at most 1/128 (0.8 %) of its values wide. A
// quantile is reported as the highest value its bucket can hold (as HdrHistogram does), capped
// at the largest value recorded: it is never below the true quantile, and above it by at most
// 0.8 %.
//
// Thread rules: none; one histogram per thread, merged afterwards.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

namespace netlayer::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128 per octave
  // Index of the bucket that counts `value`; 0 .. kBuckets - 1.
  static size_t BucketIndex(uint64_t value);
  // The smallest and the largest value that bucket `index` counts.
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);
  static constexpr size_t kBuckets = (64 - kSubBucketBits + 1) * kSubBuckets;

  LatencyHistogram();
  LatencyHistogram(const LatencyHistogram& other);
  LatencyHistogram& operator=(const LatencyHistogram& other);
  LatencyHistogram(LatencyHistogram&&) noexcept = default;
  LatencyHistogram& operator=(LatencyHistogram&&) noexcept = default;

  void Record(uint64_t nanos) {
    ++(*counts_)[BucketIndex(nanos)];
    ++count_;
    if (nanos < min_) min_ = nanos;
    if (nanos > max_) max_ = nanos;
  }
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  // 0 if empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  // The value at quantile q in [0, 1] (0.5: median, 0.99: p99); 0 if empty. q <= 0 gives min(),
  // q >= 1 gives max().
  uint64_t ValueAtQuantile(double q) const;

 private:
  std::unique_ptr<std::array<uint64_t, kBuckets>> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

// The three percentiles every latency figure reports, in microseconds.
struct LatencySummary {
  double p50_us = 0, p99_us = 0, p999_us = 0;
  uint64_t count = 0;
};
LatencySummary SummariseLatency(const LatencyHistogram& histogram);

}  // namespace netlayer::bench
