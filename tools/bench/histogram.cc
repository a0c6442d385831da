#include "histogram.h"

#include <bit>
#include <cmath>

namespace netlayer::bench {

// Values in [0, 2 * kSubBuckets) have a bucket each. For value >= 2 * kSubBuckets with highest
// bit e (e > kSubBucketBits), the top kSubBucketBits + 1 bits m = value >> (e - kSubBucketBits)
// lie in [kSubBuckets, 2 * kSubBuckets), and the octave's buckets follow the previous octave's.
size_t LatencyHistogram::BucketIndex(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  const int e = 63 - std::countl_zero(value);
  const int shift = e - kSubBucketBits;
  const uint64_t m = value >> shift;
  return static_cast<size_t>((static_cast<uint64_t>(shift) + 1) * kSubBuckets + (m - kSubBuckets));
}

uint64_t LatencyHistogram::BucketLow(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const uint64_t shift = index / kSubBuckets - 1;
  const uint64_t m = kSubBuckets + index % kSubBuckets;
  return m << shift;
}

uint64_t LatencyHistogram::BucketHigh(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const uint64_t shift = index / kSubBuckets - 1;
  return BucketLow(index) + ((uint64_t{1} << shift) - 1);
}

LatencyHistogram::LatencyHistogram() : counts_(std::make_unique<std::array<uint64_t, kBuckets>>()) {
  counts_->fill(0);
}

LatencyHistogram::LatencyHistogram(const LatencyHistogram& other)
    : counts_(std::make_unique<std::array<uint64_t, kBuckets>>(*other.counts_)),
      count_(other.count_),
      min_(other.min_),
      max_(other.max_) {}

LatencyHistogram& LatencyHistogram::operator=(const LatencyHistogram& other) {
  if (this != &other) {
    *counts_ = *other.counts_;
    count_ = other.count_;
    min_ = other.min_;
    max_ = other.max_;
  }
  return *this;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) (*counts_)[i] += (*other.counts_)[i];
  count_ += other.count_;
  if (other.min_ < min_) min_ = other.min_;
  if (other.max_ > max_) max_ = other.max_;
}

void LatencyHistogram::Reset() {
  counts_->fill(0);
  count_ = 0;
  min_ = std::numeric_limits<uint64_t>::max();
  max_ = 0;
}

uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0) return min();
  if (q >= 1) return max_;
  // The rank of the value at q: the smallest r with r >= q * count (1-based).
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += (*counts_)[i];
    if (seen >= rank) {
      const uint64_t high = BucketHigh(i);
      return high < max_ ? high : max_;
    }
  }
  return max_;
}

LatencySummary SummariseLatency(const LatencyHistogram& histogram) {
  LatencySummary s;
  s.count = histogram.count();
  s.p50_us = histogram.ValueAtQuantile(0.50) / 1e3;
  s.p99_us = histogram.ValueAtQuantile(0.99) / 1e3;
  s.p999_us = histogram.ValueAtQuantile(0.999) / 1e3;
  return s;
}

}  // namespace netlayer::bench
