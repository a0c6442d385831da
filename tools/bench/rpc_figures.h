// rpc figures (built when netlayer::rpc and netlayer::posix exist).
#pragma once

#include <cstddef>
#include <memory>

#include "harness.h"
#include "netlayer/posix/posix.h"

namespace netlayer::bench {

// Calls per second: `threads` threads making blocking calls of an echo method with a payload of
// `payload_size` bytes at once through one rpc::Client (one connection) to an rpc::Server, both
// on the posix backend. Times every call (Runner::latency).
std::unique_ptr<Runner> MakeRpcCalls(int threads, size_t payload_size, posix::PosixOptions options);

}  // namespace netlayer::bench
