// The connection-contract suite's view of a backend. Every promise of netlayer/core/connection.h
// is tested against this interface, once, and instantiated for each backend: the simulator over
// many seeds (contract_sim_test, guarded) and posix over loopback TCP and unix sockets
// (contract_posix_test).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/env.h"

namespace netlayer::contract {

class ContractBackend {
 public:
  virtual ~ContractBackend() = default;

  // A connected pair: `client` from the backend's ClientConnectionFactory (ConnectBlocking),
  // `server` from its Listener (Accept). Neither has a handler yet.
  struct Pair {
    std::shared_ptr<Connection> client;
    std::shared_ptr<Connection> server;
  };
  virtual Pair Connect() = 0;

  // Until `done()` is true or `timeout` passes (virtual time in the simulator, which runs the
  // world meanwhile; real time on posix, polling `done` while backend threads work). Returns
  // done(). `done` must be cheap and thread-safe. Never call from inside a handler.
  virtual bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) = 0;

  // Lets in-flight work finish: the simulator runs until no event is pending before now +
  // `quiet`; posix waits `quiet` of real time. Used only before asserting that something did NOT
  // happen (no second close notification, no delivery after a local close).
  virtual void Quiesce(absl::Duration quiet) = 0;

  // The close kind a peer sees when the other end calls Abort(): kReset, except on transports
  // that carry no reset (unix-domain streams: the peer of an abortive close sees end of stream).
  virtual CloseReason::Kind AbortSeenAs() const { return CloseReason::Kind::kReset; }

  // Whether a receiver with no handler stops reading its transport once its pending input is at
  // the bound (back-pressure reaching the sender). Every backend here does (the TLS adapter by
  // pausing its wrapped connection); a backend that cannot says so to skip the test that needs it.
  virtual bool BackPressureReachesTheSender() const { return true; }

  // Whether handler callbacks run on threads other than the test's (posix: yes).
  virtual bool threaded() const = 0;

  virtual Env& env() = 0;
};

// The connection limits every contract backend uses: a short close linger (the suite closes to
// peers that never read) and a small pending-input bound (back-pressure is reached quickly).
inline ConnectionLimits ContractLimits() {
  ConnectionLimits limits;
  limits.close_linger = absl::Seconds(2);
  limits.close_drain = absl::Milliseconds(500);
  limits.max_pending_input_bytes = size_t{1} << 20;
  return limits;
}

// A named way to make a backend, for INSTANTIATE_TEST_SUITE_P.
struct BackendMaker {
  std::string name;  // a gtest-safe name, e.g. "sim_seed_17" or "posix_tcp"
  std::function<std::unique_ptr<ContractBackend>()> make;
};

inline std::string BackendMakerName(const testing::TestParamInfo<BackendMaker>& info) {
  return info.param.name;
}

}  // namespace netlayer::contract
