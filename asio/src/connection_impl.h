// Internal: the asio Connection.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "endpoint.h"
#include "netlayer/asio/asio.h"
#include "netlayer/core/connection.h"
#include "runtime_impl.h"

namespace netlayer::asio::internal {

// Starts a connection on a connected socket of `runtime`'s io_context: non-blocking mode,
// TCP_NODELAY for TCP, and its reader. Takes the socket (closed on failure). kAborted: the peer
// reset the connection already (getpeername: not connected); any other error is the socket's.
absl::StatusOr<std::shared_ptr<Connection>> StartConnection(
    const std::shared_ptr<RuntimeImpl>& runtime, Socket socket, const AsioOptions& options);

}  // namespace netlayer::asio::internal
