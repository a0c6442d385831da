#include "netlayer/sim/profile.h"

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
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
         crash_rate > 0 || power_off_rate > 0 || flap_probability > 0 || stall_rate > 0 || freeze_rate > 0 ||
         clock_offset_max > absl::ZeroDuration() || clock_drift_ppm > 0 || clock_step_rate > 0;
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
                         std::pair{"one_way_probability", one_way_probability},
                         std::pair{"flap_probability", flap_probability},
                         std::pair{"stall_forever_probability", stall_forever_probability}}) {
    if (absl::Status s = CheckProbability(name, p); !s.ok()) return s;
  }
  for (auto [name, r] :
       {std::pair{"clog_rate", clog_rate}, std::pair{"partition_rate", partition_rate},
        std::pair{"reset_rate", reset_rate}, std::pair{"crash_rate", crash_rate},
        std::pair{"stall_rate", stall_rate}, std::pair{"freeze_rate", freeze_rate},
        std::pair{"clock_step_rate", clock_step_rate},
        std::pair{"power_off_rate", power_off_rate}}) {
    if (absl::Status s = CheckNonNegative(name, r); !s.ok()) return s;
  }
  for (auto [name, d] :
       {std::pair{"latency_min", latency_min}, std::pair{"latency_mean", latency_mean},
        std::pair{"tail_mean", tail_mean}, std::pair{"clog_mean", clog_mean},
        std::pair{"partition_mean", partition_mean}, std::pair{"down_mean", down_mean},
        std::pair{"stall_mean", stall_mean}, std::pair{"freeze_mean", freeze_mean},
        std::pair{"clock_offset_max", clock_offset_max},
        std::pair{"clock_step_mean", clock_step_mean}}) {
    if (absl::Status s = CheckDuration(name, d); !s.ok()) return s;
  }
  if (!(clock_drift_ppm >= 0 && clock_drift_ppm <= 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault profile: clock_drift_ppm must be in [0, 1000], got ", clock_drift_ppm));
  }
  if (clock_offset_max > absl::Hours(24)) {
    return absl::InvalidArgumentError("fault profile: clock_offset_max must be at most 24h");
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
      absl::FormatDuration(down_mean), ")", NewKindsString(),
      power_off_rate > 0 ? absl::StrCat(" power_off_rate=", power_off_rate, "/s") : "");
}

// The kinds added after the first ones, only when one is on: the trace's first line (and so
// the hash) of a profile without them is what it was.
std::string FaultProfile::NewKindsString() const {
  if (flap_probability == 0 && stall_rate == 0 && freeze_rate == 0 &&
      clock_offset_max == absl::ZeroDuration() && clock_drift_ppm == 0 && clock_step_rate == 0) {
    return "";
  }
  return absl::StrCat(" flap_p=", flap_probability, " stall_rate=", stall_rate, "/s stall=exp(",
                      absl::FormatDuration(stall_mean),
                      ") stall_forever_p=", stall_forever_probability, " freeze_rate=", freeze_rate,
                      "/s freeze=exp(", absl::FormatDuration(freeze_mean),
                      ") clock_offset<=", absl::FormatDuration(clock_offset_max),
                      " drift<=", clock_drift_ppm, "ppm clock_step_rate=", clock_step_rate,
                      "/s step=exp(", absl::FormatDuration(clock_step_mean), ")");
}

std::string FaultProfile::Describe(const FaultScope& scope) const {
  auto rate = [](double r) { return r > 0 ? absl::StrCat(r, "/s") : std::string("off"); };
  auto prob = [](double p) { return p > 0 ? absl::StrCat(p) : std::string("off"); };
  std::string clock = "off";
  if (clock_offset_max > absl::ZeroDuration() || clock_drift_ppm > 0 || clock_step_rate > 0) {
    clock = absl::StrCat("on(offset<=", absl::FormatDuration(clock_offset_max),
                         ",drift<=", clock_drift_ppm, "ppm,steps=", rate(clock_step_rate), ")");
  }
  return absl::StrCat(
      "profile: chunks=w", max_write_chunk, "/r", max_read_chunk, " buffer=", send_buffer_bytes,
      " latency=", absl::FormatDuration(latency_min), "+exp(", absl::FormatDuration(latency_mean),
      ") tail=", prob(tail_probability), " connect_fail=", prob(connect_fail_probability),
      " clog=", rate(clog_rate), " partition=", rate(partition_rate), " reset=", rate(reset_rate),
      scope.crash ? absl::StrCat(" crash=", rate(crash_rate), " power_off=", rate(power_off_rate))
                  : std::string(),
      " flap=", prob(flap_probability), " stall=", rate(stall_rate),
      scope.freeze ? absl::StrCat(" freeze=", rate(freeze_rate)) : std::string(),
      scope.clock ? absl::StrCat(" clock=", clock) : std::string());
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
  NETLAYER_ASSERT(p.Validate().ok(), "a drawn network profile is valid");
  NETLAYER_ASSERT(!p.HasRandomFaults(), "a network profile draws the network's shape only");
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
  // The kinds added later, from a third stream.
  Xoshiro256 more((seed ^ kProfileSalt) + 2 * 0x9e3779b97f4a7c15ULL);
  if (Bernoulli(more, 0.5)) p.flap_probability = UniformIn(more, 0.02, 0.3);
  if (Bernoulli(more, 0.5)) {
    p.stall_rate = UniformIn(more, 0.05, 0.5);
    p.stall_mean = UniformMicros(more, 50'000, 2'000'000);
    p.stall_forever_probability = UniformIn(more, 0.0, 0.2);
  }
  if (Bernoulli(more, 0.5)) {
    p.freeze_rate = UniformIn(more, 0.02, 0.3);
    p.freeze_mean = UniformMicros(more, 10'000, 2'000'000);
  }
  if (Bernoulli(more, 0.5)) {
    p.clock_offset_max = UniformMicros(more, 0, 500'000);
    p.clock_drift_ppm = static_cast<double>(UniformInt(more, 0, 200));
    p.clock_step_rate = Bernoulli(more, 0.5) ? UniformIn(more, 0.01, 0.1) : 0.0;
    p.clock_step_mean = UniformMicros(more, 1'000, 1'000'000);
  }
  // Power losses, drawn after the others (so their values are as they were): they also need
  // down_mean, which the crash kind draws; a seed without crashes keeps the default.
  if (Bernoulli(more, 0.5)) p.power_off_rate = UniformIn(more, 0.005, 0.05);
  NETLAYER_ASSERT(p.Validate().ok(), "a drawn fault profile is valid");
  NETLAYER_ASSERT(p.clock_drift_ppm <= 200 && p.clock_offset_max <= absl::Milliseconds(500),
                  "a drawn clock skew stays within the drawn ranges");
  return p;
}

}  // namespace netlayer::sim
