// Listeners: SimListener (a host's listening address and its accept queue), the server
// factory, and the part of the world that opens and closes them (Listeners).
//
// A stream made at a listener (Connector::SynArrive) is queued for Accept, or handed to the
// accept callback at once. Closing a listener (or its host crashing) resets the streams not yet
// accepted.
//
// Thread rules: the world's single thread.
#pragma once

#include <deque>
#include <memory>

#include "absl/status/statusor.h"
#include "netlayer/core/factory.h"
#include "sim_types.h"

namespace netlayer::sim {

class SimListener final : public Listener, public std::enable_shared_from_this<SimListener> {
 public:
  SimListener(WorldRef world, HostId host, Address address, AcceptCallback callback)
      : world_(std::move(world)),
        host_(host),
        address_(std::move(address)),
        callback_(std::move(callback)) {}
  ~SimListener() override { Close(); }

  Address address() const override { return address_; }
  std::shared_ptr<Connection> Accept(absl::Time deadline) override;
  void Close() override;
  bool IsOpen() const override { return open_; }

  HostId host() const { return host_; }
  const AcceptCallback& callback() const { return callback_; }
  std::deque<std::shared_ptr<SimConnection>>& queue() { return queue_; }
  const std::deque<std::shared_ptr<SimConnection>>& queue() const { return queue_; }
  void MarkClosed() { open_ = false; }

 private:
  WorldRef world_;
  HostId host_;
  Address address_;
  AcceptCallback callback_;
  bool open_ = true;
  std::deque<std::shared_ptr<SimConnection>> queue_;
};

class SimServerFactory final : public ServerConnectionFactory {
 public:
  SimServerFactory(WorldParts* world, HostId host) : world_(world), host_(host) {}
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override;
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override;

 private:
  WorldParts* world_;
  HostId host_;
};

class Listeners {
 public:
  explicit Listeners(WorldParts& w) : w_(w) {}
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;

  absl::StatusOr<std::shared_ptr<Listener>> Listen(HostId host, const Address& address,
                                                   AcceptCallback on_accept);
  // A new stream's accepting end arrives at `l`: queued for Accept or given to the callback.
  void Arrive(SimListener& l, const std::shared_ptr<SimConnection>& end);
  void Close(SimListener& l, const char* why);
  // The host died: its listeners vanish. The streams in their accept queues are not reset here:
  // they died with the host's other streams (Network::BreakHost), as its kernel said.
  void DropHost(HostId host, const char* why);
  // The listener model, asserted at each change of a listener: it is in its host's table (at
  // its port) exactly while it is open; a closed listener and a callback listener queue
  // nothing; the accept queue holds at most accept_backlog streams, each an accepting end
  // (side 1) on the listener's host.
  void CheckInvariants(const SimListener& l) const;

 private:
  WorldParts& w_;
};

}  // namespace netlayer::sim
