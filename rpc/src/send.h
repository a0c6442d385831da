// The one "encode and send" of rpc (internal): an envelope goes out as one smac message whose head
// and payload are two pieces of one WriteV, so the payload is never copied into the head.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/stats.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc::internal {

// The connection's SendV errors: InvalidArgument over the frame limit, ResourceExhausted when its
// output queue is full, FailedPrecondition once closed (nothing is sent then).
// `stats` (optional) counts the bytes of a message that was sent.
inline absl::Status SendEnvelope(smac::MessageConnection& conn, const EnvelopeCodec& codec,
                                 const Envelope& e, StatsCounters* stats = nullptr) {
  const std::string head = codec.EncodeHead(e);
  const std::array<std::string_view, 2> pieces = {head, e.payload};
  absl::Status s = conn.SendV(pieces);
  if (s.ok() && stats != nullptr) stats->AddBytesOut(head.size() + e.payload.size());
  return s;
}

// Control messages a PeerSession step says to send (hellos, pings, pongs), in order. A failure
// means the connection is closing; its close is reported to the handler separately.
inline void SendControl(smac::MessageConnection& conn, const std::vector<std::string>& messages,
                        StatsCounters* stats = nullptr) {
  for (const std::string& m : messages) {
    if (conn.Send(m).ok() && stats != nullptr) stats->AddBytesOut(m.size());
  }
}

}  // namespace netlayer::rpc::internal
