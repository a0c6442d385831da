// gRPC figures (built when Debian's libgrpc++-dev and protobuf-compiler-grpc are installed).
#pragma once

#include <cstddef>
#include <memory>

#include "harness.h"

namespace netlayer::bench {

// Calls per second: a synchronous gRPC C++ echo service (echo.proto) on 127.0.0.1 over TCP,
// with the library's default server and channel settings; `threads` threads making blocking
// unary calls with a payload of `payload_size` bytes through one stub on one channel. Times
// every call (Runner::latency). The same workload as MakeRpcCalls.
std::unique_ptr<Runner> MakeGrpcCalls(int threads, size_t payload_size);

}  // namespace netlayer::bench
