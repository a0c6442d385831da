// The one "encode and send" of rpc (internal): an envelope goes out as one smac message whose head
// and payload are two pieces of one WriteV, so the payload is never copied into the head.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc::internal {

// The connection's SendV errors: InvalidArgument over the frame limit, ResourceExhausted when its
// output queue is full, FailedPrecondition once closed (nothing is sent then).
inline absl::Status SendEnvelope(smac::MessageConnection& conn, const EnvelopeCodec& codec,
                                 const Envelope& e) {
  const std::string head = codec.EncodeHead(e);
  const std::array<std::string_view, 2> pieces = {head, e.payload};
  return conn.SendV(pieces);
}

// Control messages a PeerSession step says to send (hellos, pings, pongs), in order. A failure
// means the connection is closing; its close is reported to the handler separately.
inline void SendControl(smac::MessageConnection& conn, const std::vector<std::string>& messages) {
  for (const std::string& m : messages) (void)conn.Send(m);
}

}  // namespace netlayer::rpc::internal
