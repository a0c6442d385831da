// rpc figures (built when netlayer::rpc and netlayer::posix exist).
#pragma once

#include <memory>

#include "harness.h"
#include "netlayer/posix/posix.h"

namespace netlayer::bench {

// Calls per second: `threads` threads making blocking calls of a 16-byte echo method at once
// through one rpc::Client (one connection) to an rpc::Server, both on the posix backend.
std::unique_ptr<Runner> MakeRpcCalls(int threads, posix::PosixOptions options);

}  // namespace netlayer::bench
