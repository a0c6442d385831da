// rpc figures (built when netlayer::rpc and netlayer::posix exist).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "harness.h"
#include "netlayer/core/host.h"
#include "netlayer/posix/posix.h"

namespace netlayer::bench {

// Calls per second: `threads` threads making blocking calls of an echo method with a payload of
// `payload_size` bytes at once through one rpc::Client (one connection) to an rpc::Server, both
// on the posix backend. Times every call (Runner::latency).
std::unique_ptr<Runner> MakeRpcCalls(int threads, size_t payload_size, posix::PosixOptions options);
// The same over the client and server factories of a Host made by `make_host` at Start (both
// ends on it; asio::Runtime: one io_context for both). The Host outlives the client and server.
std::unique_ptr<Runner> MakeRpcCallsOn(int threads, size_t payload_size,
                                       std::function<std::unique_ptr<Host>()> make_host);

}  // namespace netlayer::bench
