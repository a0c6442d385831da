// SimHost: one simulated host of a World as a netlayer::Host (core/host.h), so application code
// written against Host runs in a scenario unchanged.
//
// Thread rules: the World's (single-threaded). Lifetimes: the World must outlive the SimHost and
// everything made through it; a host that crashes and restarts keeps its SimHost.
#pragma once

#include <string>

#include "netlayer/core/host.h"
#include "netlayer/sim/world.h"

namespace netlayer::sim {

class SimHost final : public Host {
 public:
  SimHost(World& world, HostId host) : world_(world), host_(host) {}
  Env& env() override { return world_.env(host_); }
  ClientConnectionFactory& client_factory() override { return world_.client_factory(host_); }
  ServerConnectionFactory& server_factory() override { return world_.server_factory(host_); }
  std::string name() const override { return world_.HostName(host_); }
  HostId id() const { return host_; }
  World& world() { return world_; }

 private:
  World& world_;
  const HostId host_;
};

}  // namespace netlayer::sim
