// FaultDecider: every random fault decision of a world, in one place.
//
// Each method is one decision (whether, which, when, on what, with what parameters), drawn from
// the world's generator with the world's FaultProfile and returned as a plain value; the caller
// (Faults, Connector, Listeners) carries it out and traces it. Nothing else in the simulator
// draws randomness for a fault. Recording these values in order gives a "fault tape"; replaying
// them in place of the draws replays the faults.
//
// The network's shape (latency, chunk sizes) is not a fault: Network draws it.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "netlayer/core/generator.h"
#include "netlayer/sim/profile.h"
#include "sim_types.h"

namespace netlayer::sim {

// An exponential duration with this mean, drawn from `gen` (zero for a mean <= 0).
absl::Duration ExpDuration(Generator& gen, absl::Duration mean);

// One random fault of the fault process.
struct FaultPick {
  enum class Kind {
    kNone,
    kClog,
    kPartition,
    kReset,
    kCrash,
    kStallConnection,  // one end of a live stream stops reading
    kStallHost,        // every connection of a host stops reading
    kFreeze,           // a freezable host stops
    kClockStep,        // a skewable host's clock jumps forward
    kPowerOff          // a crashable host loses power (nothing leaves it)
  };
  Kind kind = Kind::kNone;
  // kClog: from -> to for `duration`.
  HostId from, to;
  // kPartition: side_a -> side_b (and back unless one_way) for `duration`.
  std::vector<HostId> side_a, side_b;
  bool one_way = false;
  absl::Duration duration;
  // kReset: the index of the stream in id order among the live ones.
  size_t link_index = 0;
  // kCrash, kPowerOff, kStallHost, kFreeze, kClockStep: the host. kStallConnection: the stream's `side`.
  HostId host;
  int side = 0;
  // kStallConnection, kStallHost, kFreeze (InfiniteDuration: until the liveness phase),
  // kClockStep (the step) use `duration` too.
};

class FaultDecider {
 public:
  // REQUIRES: `profile` is valid (FaultProfile::Validate; the world checks it first).
  FaultDecider(Generator& gen, const FaultProfile& profile);

  // Set once the liveness phase starts: decisions that inject a fault then say "none".
  void set_stopped(bool stopped) { stopped_ = stopped; }
  bool stopped() const { return stopped_; }

  // Whether this connect attempt fails fast (connect_fail_probability).
  bool ConnectFailsFast();
  // The delay to the next random fault; nullopt if the fault process is off.
  std::optional<absl::Duration> NextFaultDelay();
  // Which fault, on what. `hosts`: how many hosts; `links`: live streams; `crashable`: hosts
  // that are up and may crash; `freezable`: up, not frozen, may freeze; `skewable`: hosts whose
  // clock may be skewed.
  FaultPick PickFault(size_t hosts, size_t links, const std::vector<HostId>& crashable,
                      const std::vector<HostId>& freezable, const std::vector<HostId>& skewable);
  // How a listener treats the connection it just accepted (flap_probability).
  Flap FlapOnAccept();
  // A skewable host's clock: its offset (>= 0, so no host clock starts behind) and drift.
  struct ClockPlan {
    absl::Duration offset;
    double drift_ppm = 0;
  };
  std::optional<ClockPlan> HostClock();
  // How long a randomly crashed (or powered-off) host stays down.
  absl::Duration DownTime();

 private:
  double TotalRate() const;
  FaultPick DrawPick(size_t hosts, size_t links, const std::vector<HostId>& crashable,
                     const std::vector<HostId>& freezable, const std::vector<HostId>& skewable);
  // The decider's model (asserted on every pick): a pick names only what exists and may suffer
  // it (a crash or power loss a crashable host, a freeze a freezable one, a clock step a
  // skewable one, a reset or stall an existing stream and side, a clog two distinct hosts, a
  // partition two non-empty disjoint sides covering every host), for a duration that is not
  // negative; no kind whose rate is 0 is picked; nothing once stopped.
  void CheckPick(const FaultPick& pick, size_t hosts, size_t links,
                 const std::vector<HostId>& crashable, const std::vector<HostId>& freezable,
                 const std::vector<HostId>& skewable) const;

  Generator& gen_;
  const FaultProfile& profile_;
  bool stopped_ = false;
};

}  // namespace netlayer::sim
