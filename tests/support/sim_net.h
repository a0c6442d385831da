// SimNet: a two-host sim::World for the smac, rpc and tls unit tests and the fuzz targets (the one
// simulator; there is no separate fake backend). The world runs a calm profile: no random faults,
// the default small latency, and optionally chunking (every write and read takes 1..max_chunk
// bytes, drawn from the seed) so tests see input split at arbitrary points.
//
// What a test does to the network maps to World features: a frozen peer is a two-way partition
// (Freeze), a broken stream is World::Reset, chunked delivery is the profile's segment sizes.
//
// Thread rules: one thread (the test's), like the World it owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/sim/world.h"

namespace netlayer::testing {

// A fault-free profile whose segments are 1..max_chunk bytes (with max_chunk at 64 KiB or more,
// writes and reads go whole, as on the default profile).
inline sim::FaultProfile CalmProfile(size_t max_chunk = size_t{64} << 10) {
  sim::FaultProfile p;
  if (max_chunk < (size_t{64} << 10)) {
    p.max_write_chunk = max_chunk;
    p.max_read_chunk = max_chunk;
    p.full_write_probability = 0.5;
    p.full_read_probability = 0.5;
  }
  return p;
}

class SimNet {
 public:
  struct Pair {
    std::shared_ptr<Connection> client;
    std::shared_ptr<Connection> server;
  };

  // REQUIRES: options.profile has no random faults (asserted): unit tests want a calm network.
  explicit SimNet(sim::WorldOptions options) : world_(std::make_unique<sim::World>(options)) {
    NETLAYER_ASSERT(!options.profile.HasRandomFaults(), "SimNet runs a calm network");
    client_host_ = *world_->AddHost("client");
    server_host_ = *world_->AddHost("server");
  }
  explicit SimNet(uint64_t seed = 1, size_t max_chunk = size_t{64} << 10)
      : SimNet(Options(seed, max_chunk)) {}

  static sim::WorldOptions Options(uint64_t seed = 1, size_t max_chunk = size_t{64} << 10) {
    sim::WorldOptions o;
    o.seed = seed;
    o.profile = CalmProfile(max_chunk);
    return o;
  }

  sim::World& world() { return *world_; }
  sim::HostId client_host() const { return client_host_; }
  sim::HostId server_host() const { return server_host_; }
  Env& client_env() { return world_->env(client_host_); }
  Env& server_env() { return world_->env(server_host_); }
  ClientConnectionFactory& client_factory() { return world_->client_factory(client_host_); }
  ServerConnectionFactory& server_factory() { return world_->server_factory(server_host_); }
  absl::Time Now() const { return world_->Now(); }
  absl::Time In(absl::Duration d) const { return world_->Now() + d; }

  // A connected pair: the client end on the client host, the server end on the server host.
  // Not from inside a callback (it runs the world).
  Pair NewPair() {
    if (pair_listener_ == nullptr) {
      pair_listener_ = *server_factory().Listen(Address::HostName("server", kPairPort));
    }
    auto client = client_factory().ConnectBlocking({Address::HostName("server", kPairPort)},
                                                   ConnectOptions{});
    NETLAYER_ASSERT(client.ok(), "a calm world connects");
    std::shared_ptr<Connection> server = pair_listener_->Accept(In(absl::Seconds(10)));
    NETLAYER_ASSERT(server != nullptr, "a calm world accepts");
    return {*client, std::move(server)};
  }

  // Runs the world for `d` of virtual time: long enough, on a calm network, for every byte in
  // flight to arrive and every handler it wakes to run.
  void Settle(absl::Duration d = absl::Milliseconds(200)) { (void)world_->RunFor(d); }
  // Runs until done() or `d` passes; returns done().
  bool RunFor(const std::function<bool()>& done, absl::Duration d) {
    return world_->RunUntil(done, In(d));
  }

  // A silent dead peer: nothing moves between the hosts (both directions) until unfrozen.
  void Freeze(bool frozen) {
    if (frozen) {
      NETLAYER_ASSERT(world_->Partition({client_host_}, {server_host_}).ok(), "partition");
    } else {
      NETLAYER_ASSERT(world_->Heal({client_host_}, {server_host_}).ok(), "heal");
    }
  }

 private:
  static constexpr uint16_t kPairPort = 7000;
  std::unique_ptr<sim::World> world_;
  sim::HostId client_host_, server_host_;
  std::shared_ptr<Listener> pair_listener_;
};

}  // namespace netlayer::testing
