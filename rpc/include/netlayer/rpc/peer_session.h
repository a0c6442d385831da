// PeerSession: the connection-level part of the rpc protocol that a client and a server session
// share, as a sans-I/O state machine (docs/PROTOCOL.md §3-§5): the handshake (the server speaks
// first), decoding envelopes, ping/pong, the liveness checks (the client's heartbeat: a ping every
// interval, a close when nothing arrived for heartbeat_timeout; the server's idle timeout) and the
// handshake deadline. One PeerSession per connection.
//
// It holds no lock, reads no clock (times are arguments), arms no timer and sends nothing: each
// input returns a Step saying what to send (small control messages, already encoded), whether
// the handshake just completed, whether to close the connection (and why), and the application
// message the owner must handle (a call, one-way call, reply or error reply). The owner arms one
// timer at NextTimer() and calls OnTimer then.
//
// Phases: kHandshaking -(valid hello)-> kReady; any -(a Step with `close`, or OnClosed)-> kClosed.
// After kClosed every input returns an empty Step.
//
// Thread rules: not thread-safe; the owner serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"

namespace netlayer::rpc {

class PeerSession {
 public:
  enum class Role { kClient, kServer };
  enum class Phase { kHandshaking, kReady, kClosed };

  struct Options {
    Role role = Role::kClient;
    std::string protocol = "netlayer-rpc";  // 1..255 bytes (asserted)
    uint16_t min_version = 1;               // <= max_version (asserted)
    uint16_t max_version = 1;
    const EnvelopeCodec* codec = &BinaryCodec();
    // The peer's hello must arrive within this of Start (kTimeout close).
    absl::Duration handshake_timeout = absl::Seconds(30);
    // Client only, off when zero: a ping every ping_interval once ready.
    absl::Duration ping_interval = absl::ZeroDuration();
    // Off when zero: once ready, a close (kTimeout) when nothing at all arrived for this long.
    // Checked exactly then: the timer is armed for the earlier of the next ping and
    // last_received + silence_limit, so the close comes at last_received + silence_limit (in
    // the owner's clock) if nothing arrives before it, with no ping-interval granularity.
    absl::Duration silence_limit = absl::ZeroDuration();
  };

  // What the owner does, in this order: send `send` (in order), then handle `message`, report
  // `ready`, and close the connection with `close`.
  struct Step {
    std::vector<std::string> send;     // encoded control messages: hellos, pongs, pings
    std::optional<uint16_t> ready;     // the handshake completed with this version
    std::optional<Envelope> message;   // kCall, kOneWay, kReply or kErrorReply; its views
                                       // point into the input message
    std::optional<CloseReason> close;  // close the connection (then the phase is kClosed)
  };

  explicit PeerSession(Options options);

  // The connection is up at `now`: starts the handshake deadline; a server sends its hello.
  Step Start(absl::Time now);
  // One whole message from the peer.
  Step OnMessage(absl::Time now, std::string_view message);
  // The owner's timer fired (at or after NextTimer()). `ping_id` is the id a ping sent now gets
  // (a client's heartbeat ids share the call counter); it is used only when PingDue(now), and
  // must then be non-zero.
  Step OnTimer(absl::Time now, uint64_t ping_id);
  // Whether OnTimer(now, ...) would send a ping (so the owner draws an id only then).
  bool PingDue(absl::Time now) const;
  // The connection closed (for any reason): nothing more happens.
  void OnClosed() { phase_ = Phase::kClosed; }

  // When OnTimer must run next; InfiniteFuture when nothing is due. Changes only in Start,
  // OnMessage (when the handshake completes), OnTimer and OnClosed.
  absl::Time NextTimer() const;
  Phase phase() const { return phase_; }
  // The version agreed (0 before the handshake completed).
  uint16_t version() const { return version_; }
  const Options& options() const { return options_; }

 private:
  Step Handshake(absl::Time now, std::string_view message);
  Step Close(CloseReason reason);
  // next_check_ = min(next_ping_, last_received_ + silence_limit).
  void ScheduleCheck();
  bool SilenceExceeded(absl::Time now) const;
  std::string Control(MessageKind kind, uint64_t id) const;
  const char* peer_name() const { return options_.role == Role::kClient ? "server" : "client"; }

  const Options options_;
  Phase phase_ = Phase::kHandshaking;
  uint16_t version_ = 0;
  absl::Time handshake_deadline_ = absl::InfiniteFuture();
  absl::Time next_check_ = absl::InfiniteFuture();  // kReady: the next ping / silence check
  absl::Time next_ping_ = absl::InfiniteFuture();   // kReady, client: the next ping
  absl::Time last_received_ = absl::InfinitePast();
};

}  // namespace netlayer::rpc
