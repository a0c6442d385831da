#include "netlayer/sim/profile.h"

#include "absl/strings/str_cat.h"
#include "netlayer/core/generator.h"

namespace netlayer::sim {
namespace {

absl::Status CheckProbability(const char* name, double p) {
  if (!(p >= 0.0 && p <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault profile: ", name, " must be a probability in [0, 1], got ", p));
  }
  return absl::OkStatus();
}

absl::Status CheckNonNegative(const char* name, double v) {
  if (!(v >= 0.0) || v > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault profile: ", name, " must be a finite rate >= 0, got ", v));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(const char* name, absl::Duration d) {
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fault profile: ", name, " must be finite and >= 0, got ", absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}

absl::Duration UniformMicros(Generator& gen, int64_t lo, int64_t hi) {
  return absl::Microseconds(
      static_cast<int64_t>(UniformInt(gen, static_cast<uint64_t>(lo), static_cast<uint64_t>(hi))));
}

double UniformIn(Generator& gen, double lo, double hi) {
  return lo + (hi - lo) * UniformDouble(gen);
}

}  // namespace

bool FaultProfile::HasRandomFaults() const {
  return connect_fail_probability > 0 || clog_rate > 0 || partition_rate > 0 || reset_rate > 0 ||
         crash_rate > 0;
}

absl::Status FaultProfile::Validate() const {
  if (max_write_chunk == 0)
    return absl::InvalidArgumentError("fault profile: max_write_chunk is 0");
  if (max_read_chunk == 0) return absl::InvalidArgumentError("fault profile: max_read_chunk is 0");
  if (send_buffer_bytes == 0) {
    return absl::InvalidArgumentError("fault profile: send_buffer_bytes is 0");
  }
  if (accept_backlog == 0) return absl::InvalidArgumentError("fault profile: accept_backlog is 0");
  for (auto [name, p] : {std::pair{"full_write_probability", full_write_probability},
                         std::pair{"full_read_probability", full_read_probability},
                         std::pair{"tail_probability", tail_probability},
                         std::pair{"connect_fail_probability", connect_fail_probability},
                         std::pair{"one_way_probability", one_way_probability}}) {
    if (absl::Status s = CheckProbability(name, p); !s.ok()) return s;
  }
  for (auto [name, r] :
       {std::pair{"clog_rate", clog_rate}, std::pair{"partition_rate", partition_rate},
        std::pair{"reset_rate", reset_rate}, std::pair{"crash_rate", crash_rate}}) {
    if (absl::Status s = CheckNonNegative(name, r); !s.ok()) return s;
  }
  for (auto [name, d] :
       {std::pair{"latency_min", latency_min}, std::pair{"latency_mean", latency_mean},
        std::pair{"tail_mean", tail_mean}, std::pair{"clog_mean", clog_mean},
        std::pair{"partition_mean", partition_mean}, std::pair{"down_mean", down_mean}}) {
    if (absl::Status s = CheckDuration(name, d); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FaultProfile::ToString() const {
  return absl::StrCat(
      "write_chunk<=", max_write_chunk, " full_write_p=", full_write_probability,
      " read_chunk<=", max_read_chunk, " full_read_p=", full_read_probability,
      " send_buffer=", send_buffer_bytes, " latency=", absl::FormatDuration(latency_min), "+exp(",
      absl::FormatDuration(latency_mean), ") tail_p=", tail_probability, " tail=exp(",
      absl::FormatDuration(tail_mean), ") backlog=", accept_backlog,
      " connect_fail_p=", connect_fail_probability, " clog_rate=", clog_rate, "/s clog=exp(",
      absl::FormatDuration(clog_mean), ") partition_rate=", partition_rate, "/s partition=exp(",
      absl::FormatDuration(partition_mean), ") one_way_p=", one_way_probability,
      " reset_rate=", reset_rate, "/s crash_rate=", crash_rate, "/s down=exp(",
      absl::FormatDuration(down_mean), ")");
}

FaultProfile DrawNetworkProfile(uint64_t seed) {
  Xoshiro256 gen(seed ^ kProfileSalt);
  FaultProfile p;
  // Chunk bounds: a short write or read is uniform in 1..bound, so any split point occurs. Write
  // bounds stay >= one segment so a many-megabyte transfer is a few thousand writes (each write
  // may draw a tail latency that holds up the stream behind it).
  static constexpr size_t kWriteChunks[] = {1460, 8192, 65536};
  static constexpr size_t kReadChunks[] = {256, 1460, 8192, 65536};
  p.max_write_chunk = kWriteChunks[UniformInt(gen, 0, 2)];
  p.full_write_probability = UniformDouble(gen);
  p.max_read_chunk = kReadChunks[UniformInt(gen, 0, 3)];
  p.full_read_probability = UniformDouble(gen);
  static constexpr size_t kBuffers[] = {16384, 65536, 1 << 20};
  p.send_buffer_bytes = kBuffers[UniformInt(gen, 0, 2)];
  p.latency_min = UniformMicros(gen, 10, 500);
  p.latency_mean = UniformMicros(gen, 0, 2000);
  p.tail_probability = Bernoulli(gen, 0.5) ? UniformIn(gen, 0.0002, 0.002) : 0.0;
  p.tail_mean = UniformMicros(gen, 5'000, 100'000);
  p.accept_backlog = static_cast<size_t>(UniformInt(gen, 4, 128));
  return p;
}

FaultProfile DrawFaultProfile(uint64_t seed) {
  FaultProfile p = DrawNetworkProfile(seed);
  // A second stream, so the network shape is the same as DrawNetworkProfile's.
  Xoshiro256 gen((seed ^ kProfileSalt) + 0x9e3779b97f4a7c15ULL);
  if (Bernoulli(gen, 0.5)) p.connect_fail_probability = UniformIn(gen, 0.01, 0.3);
  if (Bernoulli(gen, 0.5)) {
    p.clog_rate = UniformIn(gen, 0.05, 1.0);
    p.clog_mean = UniformMicros(gen, 10'000, 2'000'000);
  }
  if (Bernoulli(gen, 0.5)) {
    p.partition_rate = UniformIn(gen, 0.02, 0.3);
    p.partition_mean = UniformMicros(gen, 100'000, 5'000'000);
    p.one_way_probability = UniformDouble(gen);
  }
  if (Bernoulli(gen, 0.5)) p.reset_rate = UniformIn(gen, 0.01, 0.2);
  if (Bernoulli(gen, 0.5)) {
    p.crash_rate = UniformIn(gen, 0.005, 0.05);
    p.down_mean = UniformMicros(gen, 100'000, 5'000'000);
  }
  return p;
}

}  // namespace netlayer::sim
