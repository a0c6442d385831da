// Internal: the posix Connection.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "netlayer/core/connection.h"
#include "netlayer/posix/posix.h"

namespace netlayer::posix::internal {

// Starts a connection on a connected stream socket: TCP_NODELAY for TCP, blocking mode, and the
// input and output threads. Takes `fd` (closed on failure).
absl::StatusOr<std::shared_ptr<Connection>> StartConnection(int fd, const PosixOptions& options);

}  // namespace netlayer::posix::internal
