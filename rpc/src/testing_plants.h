// TEST HOOK, not API: deliberately broken behaviours ("planted bugs") of the rpc client and
// server, so the simulator's scenarios can prove that their invariants catch each one
// (docs/SCENARIOS.md, "Planted bugs"). This header is internal (rpc/src, not installed); only
// the built-in scenarios and tests put it on their include path. Every plant is off unless
// SetPlants is called; production code never calls it.
#pragma once

#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace netlayer::rpc::testing {

struct Plants {
  // Client: calls sent on a connection that closes are not failed then; they end only at their
  // deadline (breaks "a call whose connection closed fails at once").
  bool keep_calls_on_close = false;
  // Client: a call made while not connected (connecting, handshaking, reconnecting) gets no
  // deadline timer; it waits for a connection and its reply, past its deadline.
  bool no_deadline_while_connecting = false;
  // Client: every drop restarts the reconnect schedule from min_delay, even a connection that
  // closed before its handshake completed (breaks "back-off survives flapping").
  bool restart_schedule_on_drop = false;
  // Server: a reply (or error reply) that cannot be sent is dropped silently: no error reply
  // instead, no close (breaks "a reply that cannot be sent is never silence").
  bool lose_reply_on_send_failure = false;
};

// Sets the plants of a client (any time; they apply to what happens next) or of a server (the
// sessions it serves afterwards). Thread-safe.
void SetPlants(Client& client, const Plants& plants);
void SetPlants(Server& server, const Plants& plants);

}  // namespace netlayer::rpc::testing
