#include "netlayer/rpc/peer_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"

namespace netlayer::rpc {

PeerSession::PeerSession(Options options) : options_(std::move(options)) {
  NETLAYER_ASSERT(options_.codec != nullptr, "a peer session needs a codec");
  NETLAYER_ASSERT(!options_.protocol.empty() && options_.protocol.size() <= kMaxProtocolNameLength,
                  "protocol name must be 1..255 bytes");
  NETLAYER_ASSERT(options_.min_version <= options_.max_version, "min_version <= max_version");
  NETLAYER_ASSERT(options_.role == Role::kClient || options_.ping_interval == absl::ZeroDuration(),
                  "only a client pings");
}

PeerSession::Step PeerSession::Start(absl::Time now) {
  NETLAYER_ASSERT(phase_ == Phase::kHandshaking && handshake_deadline_ == absl::InfiniteFuture(),
                  "a peer session starts once");
  Step step;
  last_received_ = now;
  handshake_deadline_ = now + options_.handshake_timeout;
  if (options_.role == Role::kServer) {
    step.send.push_back(EncodeServerHello(
        ServerHello{options_.protocol, options_.min_version, options_.max_version}));
  }
  return step;
}

PeerSession::Step PeerSession::Close(CloseReason reason) {
  phase_ = Phase::kClosed;
  Step step;
  step.close = std::move(reason);
  return step;
}

std::string PeerSession::Control(MessageKind kind, uint64_t id) const {
  Envelope e;
  e.kind = kind;
  e.id = id;
  return options_.codec->EncodeHead(e);  // no payload: the head is the whole message
}

PeerSession::Step PeerSession::Handshake(absl::Time now, std::string_view message) {
  absl::Status ok;
  bool hello_decoded = false;  // a well-formed hello that did not match: permanent
  if (options_.role == Role::kClient) {
    absl::StatusOr<ServerHello> hello = DecodeServerHello(message);
    absl::StatusOr<uint16_t> version =
        hello.ok()
            ? ChooseVersion(*hello, options_.protocol, options_.min_version, options_.max_version)
            : absl::StatusOr<uint16_t>(hello.status());
    if (version.ok()) version_ = *version;
    ok = version.status();
    hello_decoded = hello.ok();
  } else {
    absl::StatusOr<ClientHello> hello = DecodeClientHello(message);
    ok = hello.ok() ? CheckClientHello(*hello, ServerHello{options_.protocol, options_.min_version,
                                                           options_.max_version})
                    : hello.status();
    if (ok.ok()) version_ = hello->version;
    hello_decoded = hello.ok();
  }
  if (!ok.ok()) {
    Log(LogLayer::kRpc)
        .warn("rpc {}: {}", options_.role == Role::kClient ? "client" : "session", ok.ToString());
    // Another protocol or no version in common: retrying would meet the same server.
    return Close(CloseReason(CloseReason::Kind::kProtocolError, std::string(ok.message()))
                     .set_permanent(hello_decoded));
  }
  Step step;
  if (options_.role == Role::kClient) {
    step.send.push_back(EncodeClientHello(ClientHello{options_.protocol, version_}));
  }
  phase_ = Phase::kReady;
  step.ready = version_;
  if (options_.ping_interval > absl::ZeroDuration()) next_ping_ = now + options_.ping_interval;
  ScheduleCheck();
  return step;
}

void PeerSession::ScheduleCheck() {
  // The next ping, or the moment the silence limit runs out if nothing arrives before it,
  // whichever comes first. last_received_ only grows until the timer fires, so a check armed
  // here is never late; one that finds a message arrived meanwhile just re-arms.
  next_check_ = next_ping_;
  if (options_.silence_limit > absl::ZeroDuration()) {
    next_check_ = std::min(next_check_, last_received_ + options_.silence_limit);
  }
}

bool PeerSession::PingDue(absl::Time now) const {
  return phase_ == Phase::kReady && now >= next_check_ && now >= next_ping_ &&
         !SilenceExceeded(now);
}

bool PeerSession::SilenceExceeded(absl::Time now) const {
  return options_.silence_limit > absl::ZeroDuration() &&
         now - last_received_ >= options_.silence_limit;
}

PeerSession::Step PeerSession::OnMessage(absl::Time now, std::string_view message) {
  if (phase_ == Phase::kClosed) return {};
  last_received_ = now;
  if (phase_ == Phase::kHandshaking) return Handshake(now, message);
  absl::StatusOr<Envelope> e = options_.codec->Decode(message);
  if (!e.ok()) {
    Log(LogLayer::kRpc)
        .warn("rpc: malformed message from the {}: {}", peer_name(), e.status().ToString());
    return Close(CloseReason(
        CloseReason::Kind::kProtocolError,
        absl::StrCat("rpc: malformed message from the ", peer_name(), ": ", e.status().message())));
  }
  Step step;
  switch (e->kind) {
    case MessageKind::kPing:
      step.send.push_back(Control(MessageKind::kPong, e->id));
      return step;
    case MessageKind::kPong:
      return step;  // last_received_ is all a pong is for
    case MessageKind::kOneWay:
      step.message = *e;
      return step;
    case MessageKind::kCall:
      if (options_.role == Role::kClient) {
        // Protocol version 1 has no calls to the client: say so rather than leave it waiting.
        step.send.push_back(EncodeEnvelope(
            *options_.codec,
            ErrorEnvelope(e->id, absl::UnimplementedError("this rpc client serves no calls"))));
      } else if (e->id == 0) {
        // Ids start at 1 (docs/PROTOCOL.md §5): 0 is never a call's.
        Log(LogLayer::kRpc).warn("rpc: the client sent a call with id 0");
        return Close(CloseReason(CloseReason::Kind::kProtocolError,
                                 "rpc: the client sent a call with id 0 (call ids start at 1)"));
      } else {
        step.message = *e;
      }
      return step;
    case MessageKind::kReply:
    case MessageKind::kErrorReply:
      if (options_.role == Role::kServer) {
        return Close(CloseReason(CloseReason::Kind::kProtocolError,
                                 absl::StrCat("rpc: the client sent a ", KindName(e->kind), " (id ",
                                              e->id, ") but the server makes no calls")));
      }
      step.message = *e;
      return step;
  }
  return step;
}

PeerSession::Step PeerSession::OnTimer(absl::Time now, uint64_t ping_id) {
  if (phase_ == Phase::kClosed) return {};
  if (phase_ == Phase::kHandshaking) {
    if (now < handshake_deadline_) return {};
    if (options_.role == Role::kServer) {
      NETLAYER_REACHABLE("rpc.server.handshake-deadline");
    } else {
      NETLAYER_REACHABLE("rpc.client.handshake-deadline");
    }
    return Close(CloseReason(CloseReason::Kind::kTimeout,
                             absl::StrCat("rpc handshake: no ", peer_name(), " hello within ",
                                          absl::FormatDuration(options_.handshake_timeout))));
  }
  if (now < next_check_) return {};
  if (SilenceExceeded(now)) {
    const absl::Duration silent = now - last_received_;
    if (options_.role == Role::kServer) {
      NETLAYER_REACHABLE("rpc.server.idle-timeout");
    } else {
      NETLAYER_REACHABLE("rpc.client.heartbeat-timeout");
    }
    return Close(
        CloseReason(CloseReason::Kind::kTimeout,
                    options_.role == Role::kClient
                        ? absl::StrCat("rpc heartbeat: nothing received from the server for ",
                                       absl::FormatDuration(silent), " (limit ",
                                       absl::FormatDuration(options_.silence_limit), ")")
                        : absl::StrCat("rpc: nothing received from the client for ",
                                       absl::FormatDuration(silent), " (idle_timeout ",
                                       absl::FormatDuration(options_.silence_limit), ")")));
  }
  Step step;
  if (now >= next_ping_) {
    NETLAYER_ASSERT(ping_id != 0, "a ping needs an id (PingDue said so)");
    // BUGGIFY: a heartbeat skipped (as if lost): the peer's silence limit must allow for it.
    if (!NETLAYER_BUGGIFY("rpc.buggify.skip-heartbeat")) {
      step.send.push_back(Control(MessageKind::kPing, ping_id));
    }
    next_ping_ = now + options_.ping_interval;
  }
  ScheduleCheck();
  NETLAYER_ASSERT(next_check_ > now, "a liveness check is always armed for later");
  return step;
}

absl::Time PeerSession::NextTimer() const {
  switch (phase_) {
    case Phase::kHandshaking:
      return handshake_deadline_;
    case Phase::kReady:
      return next_check_;
    case Phase::kClosed:
      return absl::InfiniteFuture();
  }
  return absl::InfiniteFuture();
}

}  // namespace netlayer::rpc
