// FaultProfile: the shape of a simulated network and the mix and rates of its random faults.
//
// A world runs one profile. The network shape (chunking, buffers, latency) is always in force;
// the random fault processes run while their rate is positive and until World::StopFaults().
// Scripted faults (World::Partition, Clog, Reset, Crash, ...) work with any profile.
//
// DrawNetworkProfile(seed) and DrawFaultProfile(seed) draw a profile from a seed with their own
// Xoshiro256 stream (seeded with seed ^ kProfileSalt), independent of the world's generator, so
// a profile can be printed or adjusted before the world starts. docs/SIMULATOR.md lists the
// ranges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace netlayer::sim {

// Which host-bound fault kinds can happen in a world (some host is crashable, freezable, has a
// skewable clock): FaultProfile::Describe leaves the others out.
struct FaultScope {
  bool crash = true;
  bool freeze = true;
  bool clock = true;
};

struct FaultProfile {
  // ---- Network shape ----
  // A write (one send into the network) takes at most this many bytes from a connection's
  // output queue; with probability full_write_probability it takes as much as fits, otherwise
  // a uniform 1..that many (a short write).
  size_t max_write_chunk = size_t{64} << 10;
  double full_write_probability = 1.0;
  // A read (one delivery to the receiving connection) takes at most this many of the bytes that
  // have arrived; with probability full_read_probability all of them up to that bound (merging
  // several writes), otherwise a uniform 1..that many (splitting a write).
  size_t max_read_chunk = size_t{64} << 10;
  double full_read_probability = 1.0;
  // Bytes in flight plus arrived-but-unread per direction (the socket buffers). A sender stops
  // taking from its output queue at this bound: back-pressure to Connection::Write.
  size_t send_buffer_bytes = size_t{256} << 10;
  // Latency of each write: latency_min + Exponential(latency_mean), and with tail_probability
  // another Exponential(tail_mean) on top (a few very slow). Arrival is never earlier than the
  // previous write's arrival on the same stream (no reordering).
  absl::Duration latency_min = absl::Microseconds(50);
  absl::Duration latency_mean = absl::Microseconds(100);
  double tail_probability = 0.0;
  absl::Duration tail_mean = absl::Milliseconds(50);
  // Connections waiting in a listener's accept queue; a full queue ignores SYNs (the client
  // retransmits, as TCP does).
  size_t accept_backlog = 64;

  // ---- Random faults (0 disables each) ----
  // Probability that a connect attempt fails fast (Unavailable), as a refused or unreachable
  // connect does, whether or not a listener exists.
  double connect_fail_probability = 0.0;
  // Rates are events per simulated second for the whole world.
  double clog_rate = 0.0;  // one direction between two hosts stalls for Exponential(clog_mean)
  absl::Duration clog_mean = absl::Milliseconds(500);
  double partition_rate = 0.0;  // hosts split into two groups for Exponential(partition_mean)
  absl::Duration partition_mean = absl::Seconds(2);
  double one_way_probability = 0.5;  // a partition blocks only one direction
  double reset_rate = 0.0;           // a random live connection is reset
  // A random crashable host's process crashes (its kernel closes its streams: a FIN each, an
  // RST where input was unread, crossing the network like data), and it restarts after
  // Exponential(down_mean).
  double crash_rate = 0.0;
  absl::Duration down_mean = absl::Seconds(2);
  // A random crashable host loses power: nothing leaves it (no FIN, no RST); its peers learn of
  // it only by their own timeouts, or by the RST its restarted kernel answers their bytes with.
  // It comes back after Exponential(down_mean), as a new incarnation.
  double power_off_rate = 0.0;
  // Probability that a connection accepted at a listener is dropped by a flapping server: closed
  // at once (before the application sees it), or reset once the server end has received a few
  // bytes, or after a few round trips (an application handshake). World::SetFlapping scripts it.
  double flap_probability = 0.0;
  // A receiver stops reading (one end of a live connection, or every connection of a host) for
  // Exponential(stall_mean), or, with stall_forever_probability, until the liveness phase. Its
  // bytes pile up in the network to the send buffer, then in the sender's output queue.
  double stall_rate = 0.0;
  absl::Duration stall_mean = absl::Seconds(1);
  double stall_forever_probability = 0.0;
  // A freezable host (World::SetFreezable) stops running for Exponential(freeze_mean): its
  // timers, handlers and connect steps wait; its sockets still take bytes up to the buffer.
  double freeze_rate = 0.0;
  absl::Duration freeze_mean = absl::Milliseconds(500);
  // Clocks of hosts that may be skewed (World::SetClockSkewable): an offset uniform in
  // [-clock_offset_max, clock_offset_max], a drift uniform in [-clock_drift_ppm,
  // clock_drift_ppm] (at most 1000 ppm), and forward steps of Exponential(clock_step_mean) at
  // clock_step_rate.
  absl::Duration clock_offset_max = absl::ZeroDuration();
  double clock_drift_ppm = 0.0;
  double clock_step_rate = 0.0;
  absl::Duration clock_step_mean = absl::Milliseconds(100);

  // A calm network for unit tests: no random fault, no chunking, fixed latency (the default).
  static FaultProfile Calm() { return FaultProfile{}; }

  // True if any random fault process has a positive rate or probability.
  bool HasRandomFaults() const;
  // InvalidArgument naming the field: probabilities outside [0, 1], negative durations or
  // rates, zero chunk or buffer sizes.
  absl::Status Validate() const;
  // One line, every field, for logs and replay notes.
  std::string ToString() const;
  // One short line for people: which fault kinds are on and how hard, e.g.
  // "profile: connect_fail=0.12 clog=off partition=0.2/s reset=off crash=off flap=0.3
  // stall=off freeze=0.1/s clock=on(±200ms,±150ppm) chunks=1460/256 latency=0.3ms+exp(1ms)".
  // With a scope: only the kinds that can happen in it (no crash rate when no host is
  // crashable).
  std::string Describe() const { return Describe(FaultScope{}); }
  std::string Describe(const FaultScope& scope) const;

 private:
  std::string NewKindsString() const;
};

// XOR-ed into the seed for the profile's own generator ("profile" in ASCII).
inline constexpr uint64_t kProfileSalt = 0x70726f66696c65ULL;

// The network shape drawn from `seed` (chunk sizes, split/merge probabilities, buffers, latency
// with a tail), with every random fault off: a fault-free but chunking network.
FaultProfile DrawNetworkProfile(uint64_t seed);
// DrawNetworkProfile(seed), plus a fault mix drawn from the seed (swarm testing): each fault
// kind is on with probability 1/2, with an intensity drawn from its range, so each seed tests its
// own subset of kinds. The kinds added later (flap, stall, freeze, clock) draw from a third
// stream, so the older kinds of a seed are as they were.
FaultProfile DrawFaultProfile(uint64_t seed);

}  // namespace netlayer::sim
