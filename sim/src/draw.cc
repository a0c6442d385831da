#include "netlayer/sim/draw.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace netlayer::sim {
namespace {
absl::Duration UniformDuration(Generator& gen, absl::Duration lo, absl::Duration hi) {
  if (hi <= lo) return lo;
  const int64_t span = absl::ToInt64Microseconds(hi - lo);
  return lo +
         absl::Microseconds(static_cast<int64_t>(UniformInt(gen, 0, static_cast<uint64_t>(span))));
}
}  // namespace

ConnectionLimits DrawConnectionLimits(Generator& gen, const ConnectionLimits& base,
                                      size_t min_output_bytes) {
  ConnectionLimits out = base;
  const size_t divisor = size_t{1} << UniformInt(gen, 0, 2);
  out.max_output_bytes =
      std::max(base.max_output_bytes / divisor, std::min(base.max_output_bytes, min_output_bytes));
  out.close_linger = UniformDuration(gen, absl::Milliseconds(100), base.close_linger);
  out.close_drain = UniformDuration(gen, absl::Milliseconds(10), base.close_drain);
  out.max_writer_drain_rounds = static_cast<int>(
      UniformInt(gen, 0, static_cast<uint64_t>(std::max(0, base.max_writer_drain_rounds))));
  return out;
}

std::string DescribeConnectionLimits(const ConnectionLimits& limits) {
  return absl::StrCat("limits: max_output=", limits.max_output_bytes,
                      " linger=", absl::FormatDuration(limits.close_linger),
                      " drain=", absl::FormatDuration(limits.close_drain),
                      " writer_rounds=", limits.max_writer_drain_rounds);
}

}  // namespace netlayer::sim
