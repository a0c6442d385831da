#include "netlayer/posix/runtime.h"

#include <utility>

#include "absl/time/clock.h"
#include "netlayer/core/log.h"

namespace netlayer::posix {

Runtime::Runtime(RuntimeOptions options) : Runtime(std::move(options), nullptr) {}

Runtime::Runtime(RuntimeOptions options, std::unique_ptr<Sys> sys)
    : options_(std::move(options)), sys_(std::move(sys)) {
  PosixOptions posix = options_.posix;
  posix.sys = sys_.get();  // nullptr: RealSys()
  clients_ = std::make_unique<PosixClientFactory>(posix);
  servers_ = std::make_unique<PosixServerFactory>(posix);
}

Runtime::~Runtime() {
  // Connections outlive their last reference while they flush; they use sys_.
  if (!WaitForConnectionThreads(absl::Now() + options_.shutdown_wait)) {
    Log(LogLayer::kPosix)
        .warn("posix runtime: connection threads still running after {}",
              absl::FormatDuration(options_.shutdown_wait));
  }
}

}  // namespace netlayer::posix
