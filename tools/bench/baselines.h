// The baselines every netlayer figure is compared with, from the same run.
#pragma once

#include <cstddef>
#include <memory>

#include "harness.h"

namespace netlayer::bench {

// Raw blocking sockets, one client thread and one server thread, 4-byte big-endian length
// framing, TCP_NODELAY, 127.0.0.1: round trips per second for messages of `size` bytes.
std::unique_ptr<Runner> MakeRawPingPong(size_t size);

// Standalone Asio: an echo server on one io_context thread and a client on another, the same
// framing: round trips per second.
std::unique_ptr<Runner> MakeAsioPingPong(size_t size);

// Bulk, one direction: a sender thread writes [length][payload] with one writev per message
// (blocking, so the socket gives back-pressure), a receiver thread reads each payload straight
// into its buffer. MB/s (10^6 bytes of payload per second, until the receiver acknowledged the
// last byte).
std::unique_ptr<Runner> MakeRawBulk(size_t size);

}  // namespace netlayer::bench
