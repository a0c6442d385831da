// What the contract backends on real sockets (posix, asio) share: a connected pair from a
// client factory and a listener, waits in real time, and whether IPv6 loopback works here.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "backend.h"
#include "netlayer/core/factory.h"

namespace netlayer::contract {

class SocketContractBackend : public ContractBackend {
 public:
  Pair Connect() override {
    Pair pair;
    if (!listener_) return pair;
    ConnectOptions options;
    options.max_attempts = 3;
    options.min_delay = absl::Milliseconds(10);
    options.max_delay = absl::Milliseconds(10);
    options.attempt_timeout = absl::Seconds(5);
    absl::StatusOr<std::shared_ptr<Connection>> client =
        client_factory().ConnectBlocking({listener_->address()}, options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return pair;
    pair.client = *client;
    pair.server = listener_->Accept(absl::Now() + absl::Seconds(10));
    EXPECT_NE(pair.server, nullptr) << "no connection accepted";
    return pair;
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      if (absl::Now() >= deadline) return done();
      std::this_thread::sleep_for(std::chrono::microseconds(500));  // backend threads work
    }
    return true;
  }

  void Quiesce(absl::Duration quiet) override {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(quiet));
  }

  CloseReason::Kind AbortSeenAs() const override {
    return is_unix_ ? CloseReason::Kind::kPeerClosed : CloseReason::Kind::kReset;
  }

  bool threaded() const override { return true; }

 protected:
  // Listens at `listen_at` (port 0 for TCP) with `server`; call from the derived constructor.
  void StartListening(ServerConnectionFactory& server, const Address& listen_at) {
    is_unix_ = listen_at.kind() == Address::Kind::kUnix;
    absl::StatusOr<std::shared_ptr<Listener>> listener = server.Listen(listen_at);
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (listener.ok()) listener_ = *listener;
  }
  void StopListening() {
    if (listener_) listener_->Close();
    listener_.reset();
  }
  virtual ClientConnectionFactory& client_factory() = 0;

 private:
  std::shared_ptr<Listener> listener_;
  bool is_unix_ = false;
};

// Whether a socket can bind to ::1 on this machine.
bool Ipv6LoopbackWorks();

// A fresh directory for a unix socket ("/tmp/netlayer-contract-XXXXXX"), or "" on failure.
std::string MakeUnixSocketDir();

}  // namespace netlayer::contract
