// The closed loop shared by the rpc figures (netlayer and gRPC): `threads` threads each make
// blocking calls back to back for the measured duration, every call timed.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness.h"
#include "histogram.h"

namespace netlayer::bench {

// One blocking echo call: sends `payload` and checks that the reply equals it (an error status
// otherwise). Called from several threads at once.
using EchoCall = std::function<absl::Status(const std::string& payload)>;
// The same, told which calling thread it runs on (0..threads-1): for workloads whose threads
// each use their own client or object.
using ThreadCall = std::function<absl::Status(int thread, const std::string& payload)>;

// Runs `threads` threads, each calling `call` with a payload of `payload_size` bytes (its first
// byte changes from call to call) until `duration` has passed; every call's wall time goes into
// `latency` (reset first). Calls per second, or the first call's error.
absl::StatusOr<double> RunCallLoop(int threads, size_t payload_size, Seconds duration,
                                   const EchoCall& call, LatencyHistogram& latency);
absl::StatusOr<double> RunCallLoop(int threads, size_t payload_size, Seconds duration,
                                   const ThreadCall& call, LatencyHistogram& latency);

}  // namespace netlayer::bench
