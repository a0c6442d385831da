// Host: what application code needs from the machine it runs on: the clock, timers and blocking
// waits (Env) and the two connection factories. One interface, provided by every backend:
//   - posix::Runtime (netlayer/posix/runtime.h) owns a PosixEnv and both factories;
//   - sim::SimHost (netlayer/sim/host.h) is one simulated host of a World.
// So an application written against Host runs in a `main` and in a scenario with only the line
// that makes the Host changed (examples/echo, apps/objstore).
//
// Thread rules: the accessors may be called from any thread; what they return follows its own
// rules (env.h, factory.h). Lifetimes: everything obtained from a Host is valid while the Host
// lives; the owner of the Host outlives the application objects made on it.
#pragma once

#include <string>

#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"

namespace netlayer {

class Host {
 public:
  virtual ~Host() = default;
  virtual Env& env() = 0;
  virtual ClientConnectionFactory& client_factory() = 0;
  virtual ServerConnectionFactory& server_factory() = 0;
  // For logs: "posix", "asio" or the simulated host's name.
  virtual std::string name() const = 0;
};

}  // namespace netlayer
