// PeerOptions: what both ends of an rpc connection configure alike (ClientOptions and
// ServerOptions extend it): the protocol they speak, the framing, the envelope codec, and the
// bound on the peer's first frame (its hello). docs/OPERATIONS.md lists every default.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "netlayer/core/connection_state.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc {

struct PeerOptions {
  std::string protocol = "netlayer-rpc";
  uint16_t min_version = 1;
  uint16_t max_version = 1;
  // Frame limits of the connection (max_message_size, 64 MiB by default). Its
  // max_first_message_size is replaced by max_hello_size.
  smac::MessageOptions message_options;
  const EnvelopeCodec* codec = &BinaryCodec();
  // The peer's first frame (its hello) may be at most this large, checked on its header, so a
  // peer cannot make this end buffer a whole max_message_size frame before the handshake. Past
  // it the connection closes (kProtocolError, "smac: frame of N bytes exceeds the limit of 265
  // bytes"). 0 turns it off (the first frame then has max_message_size). Otherwise it must be
  // at least the hello this protocol name needs (10 + protocol.size()).
  size_t max_hello_size = kMaxHelloSize;
  // Limits that agree: the output bound of the connections this end runs on (the backend
  // factory's ConnectionLimits::max_output_bytes; over TLS, TlsOptions::limits.max_output_bytes).
  // Validate{Server,Client}Options refuse a message_options.max_message_size whose frame could
  // never be written to it (smac::ValidateMessageOptions). 0: not checked.
  size_t connection_max_output_bytes = ConnectionLimits{}.max_output_bytes;
};

}  // namespace netlayer::rpc
