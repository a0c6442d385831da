// Network: the simulated TCP-like byte streams between hosts, and what stands in their way.
//
// A stream (Link) has two ends (SimConnection) and two one-way pipes. A pipe carries bytes from
// one end to the other as segments with arrival times (latency with a tail, never earlier than
// the previous segment: no reordering). Faults delay, stall or break a stream; they never drop,
// duplicate or reorder bytes inside a live stream. Partitions (counted per direction) and clogs
// (per direction, until a time) stall deliveries; Kick resumes stalled pipes.
//
// A host that dies leaves its ends to its kernel (BreakHost; SimConnection::Fate): a crashed
// process's kernel sends a FIN behind the bytes in flight (it waits out partitions: the kernel
// retransmits it), or an RST where input was unread; a powered-off host sends and reads
// nothing. A dead end answers the bytes that reach it with an RST. An RST is a segment too: it
// takes one latency, a partition in its way loses it (it is never retransmitted), a clog delays
// it; when it arrives the stream ends at once for both ends (ResetLink). A live end that resets
// (an abort, a close with unread input, the reset fault, a flapping server: ResetFrom) closes at
// once and its RST travels the same way.
//
// Invariants asserted as the model runs (NETLAYER_ASSERT, on in release builds):
//   - per direction: bytes delivered + discarded + lost + queued in the pipe == bytes sent
//     (nothing duplicated); bytes are lost while the stream lives only in a direction whose
//     sender's kernel aborted it (an RST, a power loss), and only then; the pipe never holds more
//     than the send buffer;
//   - the FIN is delivered only after every byte of its direction;
//   - no byte is sent after the FIN of its direction, nor into an aborted direction;
//   - a live end belongs to the host incarnation the stream was made with; only a live end, or a
//     crashed process's kernel flushing its bytes and FIN, sends.
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
  uint64_t discarded = 0;  // arrived for an end closed locally or dead (never read)
  uint64_t lost = 0;
  // The sender's kernel aborted this direction (an RST, a power loss): what it held is lost and
  // nothing more is delivered from it.
  bool aborted = false;
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
  explicit Network(WorldParts& w) : w_(w) {}
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
  // The stream ends at once for both ends (the RST arrived, or a kernel-only stream is dropped):
  // each end not closed yet gets ConnectionClosed(kReset, detail).
  void ResetLink(Link& link, const std::string& detail);
  // End `side` (live) resets the stream: an abort, a close with unread input, the reset fault, a
  // flapping server, data for a socket closed for good. That end closes now (kReset, unless it
  // was closed locally), its unread input and its bytes in flight are lost, its kernel forgets
  // the stream (Fate::kForgotten: what reaches it later is answered with an RST), and one RST
  // travels to the other end like any segment (SendRst: one latency, lost in a partition,
  // delayed by a clog). The other end learns of the reset only when an RST reaches it.
  void ResetFrom(Link& link, int side, const std::string& why);
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
  // ---- Hosts that die and come back ----
  // Every live end of `h` is left to its kernel (SimConnection::Fate): a crash closes each (a FIN
  // behind its bytes in flight, or an RST where input was unread), a power loss silences each.
  // The process's handlers are never called again; its output queues are gone.
  void BreakHost(HostId h, HostDeath how);
  // `h` runs again, as a new incarnation: its silent ends are forgotten (the new kernel answers
  // what arrives for them with an RST), and what waited for them is delivered.
  void RestartHost(HostId h);

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
  // End `side` of `link` dies as `how` says (BreakHost).
  void KillEnd(const std::shared_ptr<Link>& link, int side, HostDeath how);
  // The kernel of end `side` aborts its own direction: what is in flight is lost.
  void AbortDirection(Link& link, int side);
  // Discards the bytes of pipe `side` that have arrived by now; returns how many.
  size_t DiscardArrived(Pipe& p);
  // A dead (not silent) end received pipe `side`'s segments: answered with an RST, or absorbed.
  void AnswerDeadEnd(const std::shared_ptr<Link>& link, int side);
  // End `side`'s kernel sends an RST toward the other end (lost if a partition is in the way).
  void SendRst(Link& link, int side, std::string why);
  void RstArrive(const std::shared_ptr<Link>& link, int side, const std::string& why);

  WorldParts& w_;
};

}  // namespace netlayer::sim
