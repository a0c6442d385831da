// posix::Runtime: everything a posix application needs, as one object: the PosixEnv (clock,
// timer thread), the client and server factories, and the system calls they use. It is a
// netlayer::Host (core/host.h), so the same application code runs on a sim::SimHost.
//
//   netlayer::posix::Runtime runtime;
//   auto server = netlayer::rpc::Server::Create(runtime.env());
//   auto listener = runtime.server_factory().Listen(address, ...);
//
// Lifetimes, enforced rather than documented: the Runtime owns the Env and both factories (and
// the Sys, when given one), so they live exactly as long as it does. Its destructor waits (up to
// RuntimeOptions::shutdown_wait) for the threads of every posix connection to end, so a Sys or an
// Env is never used by a connection thread after the Runtime is gone. Destroy application
// objects (clients, servers, listeners) before the Runtime: declare the Runtime first.
//
// Thread rules: every method may be called from any thread; it must not be destroyed from one of
// its own threads (a timer callback, an accept or connection thread).
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "netlayer/core/host.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/posix/sys.h"

namespace netlayer::posix {

struct RuntimeOptions {
  // Connection limits, buffers and accept settings of both factories. Its `sys` is ignored: pass
  // the Sys to the constructor instead (so the Runtime can own it).
  PosixOptions posix;
  // How long the destructor waits for connection threads to finish flushing.
  absl::Duration shutdown_wait = absl::Seconds(10);
};

class Runtime final : public Host {
 public:
  // Real system calls.
  explicit Runtime(RuntimeOptions options = {});
  // The factories make their system calls through `sys` (e.g. a FaultSys in tests); the Runtime
  // owns it, so it outlives every connection made here.
  Runtime(RuntimeOptions options, std::unique_ptr<Sys> sys);
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Env& env() override { return env_; }
  ClientConnectionFactory& client_factory() override { return *clients_; }
  ServerConnectionFactory& server_factory() override { return *servers_; }
  std::string name() const override { return "posix"; }
  Sys& sys() { return sys_ ? *sys_ : RealSys(); }

 private:
  const RuntimeOptions options_;
  // Destroyed last (declared first): the factories and connections use it.
  std::unique_ptr<Sys> sys_;
  PosixEnv env_;
  std::unique_ptr<PosixClientFactory> clients_;
  std::unique_ptr<PosixServerFactory> servers_;
};

}  // namespace netlayer::posix
