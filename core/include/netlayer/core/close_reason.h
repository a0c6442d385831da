// CloseReason: why a connection closed, as given to ConnectionHandler::ConnectionClosed.
// It prints for logs (the seed: "can be converted to a string for logging purposes").
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace netlayer {

class CloseReason {
 public:
  enum class Kind {
    kPeerClosed,     // the peer closed its side gracefully (EOF after all its data)
    kReset,          // the connection was reset (RST); unread data may be lost
    kError,          // an I/O error (detail names it)
    kProtocolError,  // a layer above (smac, rpc) found bytes it cannot accept
    kTimeout,        // a liveness check (heartbeat) expired
    kHostDown,       // the simulated host crashed
  };

  CloseReason(Kind kind, std::string detail) : kind_(kind), detail_(std::move(detail)) {}

  Kind kind() const { return kind_; }
  const std::string& detail() const { return detail_; }
  // Retrying the same peer with the same settings would fail the same way: an authentication
  // failure (a certificate rejected, an unknown CA, no TLS or rpc protocol or version in
  // common). Set by the layer that found it (tls, rpc's handshake); a reconnecting rpc::Client
  // stops at it unless ClientOptions::retry_permanent_failures. Not part of ToString().
  bool permanent() const { return permanent_; }
  CloseReason& set_permanent(bool permanent = true) {
    permanent_ = permanent;
    return *this;
  }
  // "peer closed", "reset: connection reset by peer", ...
  std::string ToString() const;
  // kUnavailable carrying ToString(): what pending operations fail with.
  absl::Status ToStatus() const;

  friend bool operator==(const CloseReason&, const CloseReason&) = default;
  friend std::ostream& operator<<(std::ostream& os, const CloseReason& r) {
    return os << r.ToString();
  }

 private:
  Kind kind_;
  std::string detail_;
  bool permanent_ = false;
};

const char* KindName(CloseReason::Kind kind);

}  // namespace netlayer
