// Shared by the TLS tests: a simulated world with a "client" and a "server" host, a throwaway
// PKI made from the world's generator (so every run of a seed has the same certificates), TLS
// contexts for either side, and a watched wrapped connection.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "netlayer/core/assert.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/context.h"
#include "netlayer/tls/factory.h"
#include "netlayer/tls/test_pki.h"

namespace netlayer::tls::testing {

// The certificates every test needs, issued at `now`.
struct Pki {
  Pki(absl::Time now, Generator* random)
      : ca(*TestPki::Create("netlayer-test-ca", now, random)),
        other_ca(*TestPki::Create("other-ca", now, random)) {
    server = *ca.Issue(Named("server", {"server", "localhost"}, {"127.0.0.1", "::1"}));
    client = *ca.Issue(Named("client-1", {"client-1.example"}));
    IssueOptions expired_options = Named("expired", {"server", "localhost"}, {"127.0.0.1"});
    expired_options.not_before = now - absl::Hours(48);
    expired_options.not_after = now - absl::Hours(24);
    expired = *ca.Issue(expired_options);
    foreign = *other_ca.Issue(Named("foreign", {"server", "localhost"}, {"127.0.0.1"}));
    wrong_name = *ca.Issue(Named("elsewhere", {"elsewhere.example"}));
  }
  static IssueOptions Named(std::string cn, std::vector<std::string> dns,
                            std::vector<std::string> ips = {}) {
    IssueOptions o;
    o.common_name = std::move(cn);
    o.dns_names = std::move(dns);
    o.ip_addresses = std::move(ips);
    return o;
  }
  TestPki ca;
  TestPki other_ca;
  TestCertificate server, client, expired, foreign, wrong_name;
};

inline TlsOptions ServerOptions(const Pki& pki, Generator* random,
                                ClientAuth auth = ClientAuth::kRequired) {
  TlsOptions o;
  o.certificate_chain_pem = pki.server.certificate_pem;
  o.private_key_pem = pki.server.private_key_pem;
  o.ca_pem = pki.ca.ca_certificate_pem();
  o.client_auth = auth;
  o.random = random;
  return o;
}

inline TlsOptions ClientOptions(const Pki& pki, Generator* random, const TestCertificate* cert) {
  TlsOptions o;
  if (cert != nullptr) {
    o.certificate_chain_pem = cert->certificate_pem;
    o.private_key_pem = cert->private_key_pem;
  }
  o.ca_pem = pki.ca.ca_certificate_pem();
  o.random = random;
  return o;
}

inline std::shared_ptr<TlsContext> MakeContext(Role role, TlsOptions options) {
  absl::StatusOr<std::shared_ptr<TlsContext>> c = TlsContext::Create(role, std::move(options));
  NETLAYER_ASSERT(c.ok(), "test TLS options are valid");
  return *c;
}

// Records a connection's events. Single-threaded (the simulator) or guarded (posix).
struct Recorder : public ConnectionHandler {
  void InputData(Connection&, std::string_view data) override {
    std::lock_guard<std::mutex> lock(mu);
    received.append(data);
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    std::lock_guard<std::mutex> lock(mu);
    closes.push_back(reason);
  }
  std::string Received() {
    std::lock_guard<std::mutex> lock(mu);
    return received;
  }
  size_t CloseCount() {
    std::lock_guard<std::mutex> lock(mu);
    return closes.size();
  }
  CloseReason FirstClose() {
    std::lock_guard<std::mutex> lock(mu);
    NETLAYER_ASSERT(!closes.empty(), "a close was recorded");
    return closes[0];
  }
  std::mutex mu;
  std::string received;
  std::vector<CloseReason> closes;
};

// A TLS connection's wrapped connection, watched: how much ciphertext it hands the adapter and
// in how many deliveries, and whether the adapter is its handler (reading it) or has removed
// itself (paused). `around_delivery`, if set, is called with true right before each delivery to
// the adapter and with false right after it. Single-threaded (the simulator).
class WatchedTransport final : public Connection {
 public:
  explicit WatchedTransport(std::shared_ptr<Connection> inner) : inner_(std::move(inner)) {}

  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override {
    std::shared_ptr<ConnectionHandler> old = std::exchange(handler_, handler);
    (handler != nullptr ? installs : removals)++;
    inner_->SetHandler(handler != nullptr ? std::make_shared<Tap>(this, std::move(handler))
                                          : nullptr);
    return old;
  }
  bool IsOpen() const override { return inner_->IsOpen(); }
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override {
    return inner_->WriteV(pieces);
  }
  void Close() override { inner_->Close(); }
  void Abort() override { inner_->Abort(); }
  size_t QueuedOutputBytes() const override { return inner_->QueuedOutputBytes(); }
  Address local_address() const override { return inner_->local_address(); }
  Address peer_address() const override { return inner_->peer_address(); }

  bool reading() const { return handler_ != nullptr; }
  size_t delivered = 0;   // ciphertext bytes handed to the adapter
  size_t deliveries = 0;  // and in how many InputData calls
  int installs = 0;
  int removals = 0;
  std::function<void(bool inside)> around_delivery;

 private:
  struct Tap final : ConnectionHandler {
    Tap(WatchedTransport* t, std::shared_ptr<ConnectionHandler> h)
        : transport(t), target(std::move(h)) {}
    void InputData(Connection&, std::string_view data) override {
      transport->delivered += data.size();
      ++transport->deliveries;
      if (transport->around_delivery) transport->around_delivery(true);
      target->InputData(*transport, data);
      if (transport->around_delivery) transport->around_delivery(false);
    }
    void ConnectionClosed(Connection&, const CloseReason& reason) override {
      target->ConnectionClosed(*transport, reason);
    }
    WatchedTransport* transport;
    std::shared_ptr<ConnectionHandler> target;
  };
  std::shared_ptr<Connection> inner_;
  std::shared_ptr<ConnectionHandler> handler_;
};

}  // namespace netlayer::tls::testing
