// Network: the simulated TCP-like byte streams between hosts, and what stands in their way.
//
// A stream (Link) has two ends (SimConnection) and two one-way pipes. A pipe carries bytes from
// one end to the other as segments with arrival times (latency with a tail, never earlier than
// the previous segment: no reordering). Faults delay, stall or break a stream; they never drop,
// duplicate or reorder bytes inside a live stream. Partitions (counted per direction) and clogs
// (per direction, until a time) stall deliveries; Kick resumes stalled pipes.
//
// Invariants asserted as the model runs (NETLAYER_ASSERT, on in release builds):
//   - per direction: bytes delivered + discarded + queued in the pipe == bytes sent (nothing
//     duplicated, nothing lost while the stream lives); the pipe never holds more than the
//     send buffer;
//   - the FIN is delivered only after every byte of its direction;
//   - no byte is sent after the FIN of its direction;
//   - nothing is delivered to an end whose host crashed since the stream was made.
//
// Thread rules: the world's single thread.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/sim/trace.h"
#include "sim_types.h"

namespace netlayer::sim {

// One direction of a stream: bytes written by one end, in flight or arrived, not yet read.
struct Pipe {
  struct Segment {
    std::string data;
    size_t offset = 0;
    absl::Time arrive;
  };
  enum class Wait {
    kNone,         // no delivery pending: new data schedules one
    kScheduled,    // a delivery event is queued
    kStalled,      // blocked by a partition or clog; a heal or unclog kicks it
    kReadBlocked,  // the receiver does not want input (its pending input is at its bound)
    kHeld,         // the receiver is frozen or not reading; Network::Release resumes it
  };
  std::deque<Segment> segments;
  size_t bytes = 0;  // unread bytes in segments
  absl::Time last_arrival = absl::InfinitePast();
  bool fin = false;
  absl::Time fin_at;
  Wait wait = Wait::kNone;
  bool sender_waiting = false;  // the sender has output but this pipe was full
  bool pump_scheduled = false;  // a pump (send) event for the sending end is queued
  bool pump_held = false;       // a pump found the sending host frozen; Release resumes it
  // Byte accounting of this direction over the stream's life (asserted: delivered + discarded
  // + bytes == sent while the stream lives; `lost` counts what a reset or crash threw away).
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t discarded = 0;  // arrived for an end closed locally (never read)
  uint64_t lost = 0;
};

// A stream between two ends: end[0] is the connecting side, end[1] the accepting side;
// pipe[i] carries bytes from end[i] to end[1 - i].
struct Link {
  uint64_t id = 0;
  std::array<HostId, 2> host;
  // Each end's host incarnation when the stream was made (a crash ends the stream).
  std::array<uint64_t, 2> incarnation = {0, 0};
  std::array<std::shared_ptr<SimConnection>, 2> end;
  std::array<Pipe, 2> pipe;
  bool dead = false;
};

class Network {
 public:
  explicit Network(World::Impl& w) : w_(w) {}
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // ---- Shape ----
  // The latency of one write (or SYN, FIN): latency_min + Exp(mean), plus a tail sometimes.
  absl::Duration Latency();

  // ---- Partitions and clogs ----
  static std::pair<uint32_t, uint32_t> Dir(HostId from, HostId to) {
    return {from.value, to.value};
  }
  bool Blocked(HostId from, HostId to) const {
    auto it = blocked.find(Dir(from, to));
    return it != blocked.end() && it->second > 0;
  }
  absl::Time ClogEnd(HostId from, HostId to) const {
    auto it = clogs.find(Dir(from, to));
    return it == clogs.end() ? absl::InfinitePast() : it->second;
  }
  void AddBlocks(const std::vector<HostId>& from, const std::vector<HostId>& to, bool one_way,
                 int delta);
  // Resumes every stalled pipe (after a heal or the end of a clog).
  void Kick();
  void ScheduleKick(absl::Time at);

  // ---- Streams ----
  // A new stream from `from` (connecting) to `to` (accepting), registered as live.
  std::shared_ptr<Link> NewLink(HostId from, HostId to, const Address& client_address,
                                const Address& server_address);
  std::string Stream(const Link& l, int from_side) const;
  void SchedulePump(Link& link, int side);
  void Pump(const std::shared_ptr<Link>& link, int side);
  void ScheduleDelivery(Link& link, int side, absl::Time at);
  void Deliver(const std::shared_ptr<Link>& link, int side);
  void SendFin(Link& link, int side);
  void MaybeTeardown(Link& link);
  void Teardown(Link& link);
  void ResetLink(Link& link, const std::string& detail);
  void DeliverPending(const std::shared_ptr<SimConnection>& conn);
  void ScheduleDeliverPending(const std::shared_ptr<SimConnection>& conn);
  void ResumeRead(SimConnection& conn);
  void OnLocalClose(SimConnection& conn, ConnectionState::Actions actions);
  // A write that holds the writer claim: sends what the pipe takes now, like a non-blocking send.
  void DirectSend(SimConnection& conn, absl::Span<const std::string_view> pieces);
  // The reader's end of a corked delivery (ConnectionState::EndCork gave it the writer claim):
  // sends the answers the handler queued, then ends the claim.
  void SendCorked(SimConnection& conn);
  // Puts up to `most` bytes of `views` on the wire as one segment (a partial write is drawn from
  // the seed, as in a real send); returns how many bytes went.
  size_t Transmit(Link& link, int side, absl::Span<const std::string_view> views, size_t most);
  // Whether the receiving end `rx` drains its input now (its host is not frozen, neither it nor
  // its host stopped reading).
  bool Reading(const SimConnection& rx) const;
  // Resumes deliveries and sends held back for ends that read (or hosts that run) again.
  void Release();
  // Carries out what a connection's state returned (the sim's mapping of ConnectionState
  // actions: a send event, a FIN, a reset, a deadline check, a release).
  void Carry(SimConnection& conn, ConnectionState::Actions actions);

  std::map<uint64_t, std::shared_ptr<Link>> links;  // live streams by id
  std::vector<std::weak_ptr<SimConnection>> all_connections;
  uint64_t next_link_id = 1;
  std::map<std::pair<uint32_t, uint32_t>, int> blocked;  // direction -> partition count
  std::map<std::pair<uint32_t, uint32_t>, absl::Time> clogs;

 private:
  // Asserts the byte accounting of one direction.
  static void CheckAccounting(const Pipe& p);

  World::Impl& w_;
};

}  // namespace netlayer::sim
