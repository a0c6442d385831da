#include "fault_decider.h"

#include <algorithm>

#include "netlayer/core/assert.h"

namespace netlayer::sim {

absl::Duration ExpDuration(Generator& gen, absl::Duration mean) {
  if (mean <= absl::ZeroDuration()) return absl::ZeroDuration();
  const double ns = Exponential(gen, static_cast<double>(absl::ToInt64Nanoseconds(mean)));
  return absl::Nanoseconds(static_cast<int64_t>(std::min(ns, 1e17)));
}

FaultDecider::FaultDecider(Generator& gen, const FaultProfile& profile)
    : gen_(gen), profile_(profile) {
  NETLAYER_ASSERT(profile_.Validate().ok(), "a fault decider draws from a valid profile");
}

namespace {
bool Contains(const std::vector<HostId>& hosts, HostId h) {
  return std::find(hosts.begin(), hosts.end(), h) != hosts.end();
}
}  // namespace

void FaultDecider::CheckPick(const FaultPick& pick, size_t hosts, size_t links,
                             const std::vector<HostId>& crashable,
                             const std::vector<HostId>& freezable,
                             const std::vector<HostId>& skewable) const {
  const FaultProfile& p = profile_;
  using Kind = FaultPick::Kind;
  NETLAYER_ASSERT(!stopped_ || pick.kind == Kind::kNone, "a stopped decider picks no fault");
  NETLAYER_ASSERT(pick.duration >= absl::ZeroDuration(), "a fault lasts a non-negative time");
  switch (pick.kind) {
    case Kind::kNone:
      break;
    case Kind::kCrash:
      NETLAYER_ASSERT(p.crash_rate > 0 && Contains(crashable, pick.host),
                      "a crash picks a crashable host");
      break;
    case Kind::kPowerOff:
      NETLAYER_ASSERT(p.power_off_rate > 0 && Contains(crashable, pick.host),
                      "a power loss picks a crashable host");
      break;
    case Kind::kFreeze:
      NETLAYER_ASSERT(p.freeze_rate > 0 && Contains(freezable, pick.host),
                      "a freeze picks a freezable host");
      break;
    case Kind::kClockStep:
      NETLAYER_ASSERT(p.clock_step_rate > 0 && Contains(skewable, pick.host),
                      "a clock step picks a skewable host");
      break;
    case Kind::kStallHost:
      NETLAYER_ASSERT(p.stall_rate > 0 && pick.host.value < hosts, "a host stall picks a host");
      break;
    case Kind::kStallConnection:
      NETLAYER_ASSERT(
          p.stall_rate > 0 && pick.link_index < links && (pick.side == 0 || pick.side == 1),
          "a connection stall picks an end of a live stream");
      break;
    case Kind::kReset:
      NETLAYER_ASSERT(
          p.reset_rate > 0 && pick.link_index < links && (pick.side == 0 || pick.side == 1),
          "a reset picks an end of a live stream");
      break;
    case Kind::kClog:
      NETLAYER_ASSERT(p.clog_rate > 0 && pick.from.value < hosts && pick.to.value < hosts &&
                          pick.from != pick.to,
                      "a clog is between two distinct hosts");
      break;
    case Kind::kPartition: {
      NETLAYER_ASSERT(p.partition_rate > 0 && !pick.side_a.empty() && !pick.side_b.empty() &&
                          pick.side_a.size() + pick.side_b.size() == hosts,
                      "a partition splits every host into two non-empty sides");
      for (HostId h : pick.side_a) {
        NETLAYER_ASSERT(h.value < hosts && !Contains(pick.side_b, h),
                        "a partition's sides are disjoint");
      }
      break;
    }
  }
}

double FaultDecider::TotalRate() const {
  const FaultProfile& p = profile_;
  // The older kinds first: a profile without the newer ones sums (and draws) as before.
  return p.clog_rate + p.partition_rate + p.reset_rate + p.crash_rate + p.stall_rate +
         p.freeze_rate + p.clock_step_rate + p.power_off_rate;
}

bool FaultDecider::ConnectFailsFast() {
  const double p = profile_.connect_fail_probability;
  return !stopped_ && p > 0 && Bernoulli(gen_, p);
}

std::optional<absl::Duration> FaultDecider::NextFaultDelay() {
  const double total = TotalRate();
  if (stopped_ || total <= 0) return std::nullopt;
  return ExpDuration(gen_, absl::Seconds(1.0 / total));
}

FaultPick FaultDecider::PickFault(size_t hosts, size_t links, const std::vector<HostId>& crashable,
                                  const std::vector<HostId>& freezable,
                                  const std::vector<HostId>& skewable) {
  FaultPick pick = DrawPick(hosts, links, crashable, freezable, skewable);
  CheckPick(pick, hosts, links, crashable, freezable, skewable);
  return pick;
}

FaultPick FaultDecider::DrawPick(size_t hosts, size_t links, const std::vector<HostId>& crashable,
                                 const std::vector<HostId>& freezable,
                                 const std::vector<HostId>& skewable) {
  const FaultProfile& p = profile_;
  FaultPick pick;
  double x = UniformDouble(gen_) * TotalRate();
  const uint64_t n = hosts;
  // The newer kinds are tested first: with their rates 0, x is unchanged for the older ones.
  if ((x -= p.power_off_rate) < 0) {
    if (crashable.empty()) return pick;
    pick.kind = FaultPick::Kind::kPowerOff;
    pick.host = crashable[UniformInt(gen_, 0, crashable.size() - 1)];
    return pick;
  }
  if ((x -= p.stall_rate) < 0) {
    const bool forever = Bernoulli(gen_, p.stall_forever_probability);
    pick.duration = forever ? absl::InfiniteDuration() : ExpDuration(gen_, p.stall_mean);
    if (links > 0 && Bernoulli(gen_, 0.75)) {
      pick.kind = FaultPick::Kind::kStallConnection;
      pick.link_index = static_cast<size_t>(UniformInt(gen_, 0, links - 1));
      pick.side = static_cast<int>(UniformInt(gen_, 0, 1));
    } else if (n > 0) {
      pick.kind = FaultPick::Kind::kStallHost;
      pick.host = HostId{static_cast<uint32_t>(UniformInt(gen_, 0, n - 1))};
    }
    return pick;
  }
  if ((x -= p.freeze_rate) < 0) {
    if (freezable.empty()) return pick;
    pick.kind = FaultPick::Kind::kFreeze;
    pick.host = freezable[UniformInt(gen_, 0, freezable.size() - 1)];
    pick.duration = ExpDuration(gen_, p.freeze_mean);
    return pick;
  }
  if ((x -= p.clock_step_rate) < 0) {
    if (skewable.empty()) return pick;
    pick.kind = FaultPick::Kind::kClockStep;
    pick.host = skewable[UniformInt(gen_, 0, skewable.size() - 1)];
    pick.duration = ExpDuration(gen_, p.clock_step_mean);
    return pick;
  }
  if ((x -= p.clog_rate) < 0) {
    if (n < 2) return pick;
    const uint64_t a = UniformInt(gen_, 0, n - 1);
    uint64_t b = UniformInt(gen_, 0, n - 2);
    if (b >= a) ++b;
    pick.kind = FaultPick::Kind::kClog;
    pick.from = HostId{static_cast<uint32_t>(a)};
    pick.to = HostId{static_cast<uint32_t>(b)};
    pick.duration = ExpDuration(gen_, p.clog_mean);
  } else if ((x -= p.partition_rate) < 0) {
    if (n < 2) return pick;
    for (uint32_t i = 0; i < n; ++i) {
      (Bernoulli(gen_, 0.5) ? pick.side_a : pick.side_b).push_back(HostId{i});
    }
    if (pick.side_a.empty() || pick.side_b.empty()) {
      const uint32_t lone = static_cast<uint32_t>(UniformInt(gen_, 0, n - 1));
      pick.side_a = {HostId{lone}};
      pick.side_b.clear();
      for (uint32_t i = 0; i < n; ++i) {
        if (i != lone) pick.side_b.push_back(HostId{i});
      }
    }
    pick.kind = FaultPick::Kind::kPartition;
    pick.one_way = Bernoulli(gen_, p.one_way_probability);
    pick.duration = ExpDuration(gen_, p.partition_mean);
  } else if ((x -= p.reset_rate) < 0) {
    if (links == 0) return pick;
    pick.kind = FaultPick::Kind::kReset;
    pick.link_index = static_cast<size_t>(UniformInt(gen_, 0, links - 1));
    pick.side = static_cast<int>(UniformInt(gen_, 0, 1));  // the end that sends the RST
  } else {
    if (crashable.empty()) return pick;
    pick.kind = FaultPick::Kind::kCrash;
    pick.host = crashable[UniformInt(gen_, 0, crashable.size() - 1)];
  }
  return pick;
}

Flap FaultDecider::FlapOnAccept() {
  const double p = profile_.flap_probability;
  Flap flap;
  if (stopped_ || p <= 0 || !Bernoulli(gen_, p)) return flap;
  switch (UniformInt(gen_, 0, 2)) {
    case 0:
      flap.kind = Flap::Kind::kAtOnce;
      break;
    case 1:
      flap.kind = Flap::Kind::kAfterBytes;
      flap.count = UniformInt(gen_, 1, 256);
      break;
    default:
      flap.kind = Flap::Kind::kAfterRoundTrips;
      flap.count = UniformInt(gen_, 1, 4);
      break;
  }
  return flap;
}

std::optional<FaultDecider::ClockPlan> FaultDecider::HostClock() {
  const FaultProfile& p = profile_;
  if (p.clock_offset_max <= absl::ZeroDuration() && p.clock_drift_ppm <= 0) return std::nullopt;
  ClockPlan plan;
  plan.offset = absl::Nanoseconds(static_cast<int64_t>(
      UniformInt(gen_, 0, static_cast<uint64_t>(absl::ToInt64Nanoseconds(p.clock_offset_max)))));
  // Whole ppb, drawn as an integer: the same on every build.
  const int64_t max_ppb = static_cast<int64_t>(p.clock_drift_ppm * 1000);
  const int64_t ppb =
      static_cast<int64_t>(UniformInt(gen_, 0, static_cast<uint64_t>(2 * max_ppb))) - max_ppb;
  plan.drift_ppm = static_cast<double>(ppb) / 1000.0;
  return plan;
}

absl::Duration FaultDecider::DownTime() { return ExpDuration(gen_, profile_.down_mean); }

}  // namespace netlayer::sim
