// SimConnection: one end of a simulated stream. It drives core ConnectionState with NoLock
// (the same state machine the posix and asio backends drive) and hands what the state returns
// to the network model (Network::Carry).
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <memory>

#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/sim/promise_checker.h"
#include "sim_types.h"

namespace netlayer::sim {

class SimConnection final : public Connection, public std::enable_shared_from_this<SimConnection> {
 public:
  SimConnection(WorldRef world, Link* link, int side, HostId host, Address local, Address peer,
                ConnectionLimits limits)
      : world_(std::move(world)),
        link_(link),
        side_(side),
        host_(host),
        local_(std::move(local)),
        peer_(std::move(peer)),
        state_(limits) {}

  bool IsOpen() const override { return state_.IsOpen(); }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  void Abort() override;
  size_t QueuedOutputBytes() const override { return state_.output_bytes(); }
  Address local_address() const override { return local_; }
  Address peer_address() const override { return peer_; }

  ConnectionState& state() { return state_; }
  Link* link() const { return link_; }
  // The stream ended (nullptr): this end is no longer in the network.
  void set_link(Link* link) {
    link_ = link;
    CheckInvariants();
  }
  int side() const { return side_; }
  // The host this end lives on (still known after the stream has ended).
  HostId host() const { return host_; }
  uint64_t stream_id() const { return stream_id_; }
  const WorldRef& world_ref() const { return world_; }
  void set_stream_id(uint64_t id) { stream_id_ = id; }
  // The promise checker watching this end's stream (shared by both ends), or nullptr if off.
  PromiseChecker* checker() const { return checker_.get(); }
  void set_checker(std::shared_ptr<PromiseChecker> checker) { checker_ = std::move(checker); }
  // Who answers for this end (DESIGN.md §12). Transitions, all one-way except kSilent:
  //   kLive -> kClosedByKernel   its process died on a live machine; the kernel sent a FIN after
  //                              the bytes in flight and keeps the socket (FIN_WAIT)
  //   kLive -> kForgotten        its process died with unread input: the kernel sent an RST
  //   kLive -> kSilent           its machine lost power: nothing of it is read or answered
  //   kClosedByKernel -> kForgotten  bytes arrived for the closed socket: answered with an RST
  //   kSilent -> kForgotten      the machine came back: its new kernel knows no such stream
  // A kForgotten end answers every segment that reaches it with an RST (Network::AnswerDeadEnd).
  // Only a kLive end has a process behind it: no other is ever given to a handler again.
  enum class Fate { kLive, kClosedByKernel, kForgotten, kSilent };
  Fate fate() const { return fate_; }
  void set_fate(Fate next);
  static const char* FateName(Fate f);
  // The time of the pending deadline check (ConnectionState::OnDeadline), if any.
  absl::Time deadline_check = absl::InfiniteFuture();
  // This end's receive side has stopped draining (World::StopReading on the connection).
  bool not_reading = false;
  uint64_t stall_generation = 0;
  // A flapping server's plan for this (accepting) end, and its progress.
  struct FlapState {
    Flap plan;
    uint64_t received = 0;   // bytes delivered to this end
    uint64_t answers = 0;    // sends made after input arrived (round trips)
    bool got_input = false;  // input arrived since the last send
    bool dropped = false;
  } flap;

 private:
  // The end's model, asserted at each change of its link, fate or open state: its side is 0 or
  // 1; while in the network it is its link's end on that side, on that link's host; an end
  // without a process (fate not kLive) is closed; an end its application closed (Close/Abort)
  // is not open (and let go of its handler there: ReleaseHandlerAfterLocalClose).
  void CheckInvariants() const;
  // Takes the handler out of the state once the application closed this end (returned, to be
  // released by the caller after its work).
  std::shared_ptr<ConnectionHandler> ReleaseHandlerAfterLocalClose();

  WorldRef world_;
  Link* link_;  // nullptr once the stream has ended
  int side_;
  HostId host_;
  uint64_t stream_id_ = 0;
  Address local_;
  Address peer_;
  ConnectionState state_;
  std::shared_ptr<PromiseChecker> checker_;
  Fate fate_ = Fate::kLive;
  bool closed_by_application_ = false;  // Close() or Abort() was called
};

}  // namespace netlayer::sim
