#include "fault_decider.h"

#include <algorithm>

namespace netlayer::sim {

absl::Duration ExpDuration(Generator& gen, absl::Duration mean) {
  if (mean <= absl::ZeroDuration()) return absl::ZeroDuration();
  const double ns = Exponential(gen, static_cast<double>(absl::ToInt64Nanoseconds(mean)));
  return absl::Nanoseconds(static_cast<int64_t>(std::min(ns, 1e17)));
}

double FaultDecider::TotalRate() const {
  const FaultProfile& p = profile_;
  return p.clog_rate + p.partition_rate + p.reset_rate + p.crash_rate;
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

FaultPick FaultDecider::PickFault(size_t hosts, size_t links,
                                  const std::vector<HostId>& crashable) {
  const FaultProfile& p = profile_;
  FaultPick pick;
  double x = UniformDouble(gen_) * TotalRate();
  const uint64_t n = hosts;
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
  } else {
    if (crashable.empty()) return pick;
    pick.kind = FaultPick::Kind::kCrash;
    pick.host = crashable[UniformInt(gen_, 0, crashable.size() - 1)];
  }
  return pick;
}

absl::Duration FaultDecider::DownTime() { return ExpDuration(gen_, profile_.down_mean); }

}  // namespace netlayer::sim
