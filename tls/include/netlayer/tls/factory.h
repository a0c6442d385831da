// TLS over any backend's factories: wrap a ClientConnectionFactory or ServerConnectionFactory
// and every connection it makes is a TlsConnection. An rpc client or server gets TLS by being
// given the wrapped factory, nothing else changes:
//
//   tls::TlsClientFactory tls_factory(world.client_factory(host), world.env(host), client_context);
//   auto client = rpc::Client::CreateReconnecting(env, tls_factory, {address}, connect_options);
//
//   tls::TlsServerFactory tls_servers(posix_server_factory, env, server_context);
//   auto listener = tls_servers.Listen(address, [server](auto c) { server->Serve(std::move(c)); });
//
// Client: Connect hands the TlsConnection to Connected as soon as the wrapped connection is
// made, its handshake under way (writes wait for it); a failed handshake closes it with a
// "tls <error>: ..." reason, so a reconnecting client reconnects as after any close.
// ConnectBlocking also waits for the handshake and returns its failure as kUnavailable.
// The server name to verify is TlsOptions::server_name, else the host of the addresses (which
// must then all name the same host, and not be unix paths).
//
// Server: a connection reaches the application (Accept, or the accept callback) only after its
// handshake completed, so with ClientAuth::kRequired every accepted connection carries a
// verified client certificate (TlsConnection::peer_identity). Failed handshakes are logged and
// closed; at most TlsOptions::max_pending_handshakes run at once per listener, each bounded by
// handshake_timeout.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/context.h"

namespace netlayer::tls {

class TlsClientFactory final : public ClientConnectionFactory {
 public:
  // `inner` and `env` must outlive the factory and its connections. `context` has Role::kClient.
  TlsClientFactory(ClientConnectionFactory& inner, Env& env, std::shared_ptr<TlsContext> context);

  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override;
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override;

  // The name verified for these addresses (see above); InvalidArgument if there is none.
  absl::StatusOr<std::string> ServerNameFor(const std::vector<Address>& addresses) const;

 private:
  ClientConnectionFactory& inner_;
  Env& env_;
  const std::shared_ptr<TlsContext> context_;
};

class TlsServerFactory final : public ServerConnectionFactory {
 public:
  // A handshake that failed at a listener of this factory: the peer and the failure
  // (kUnavailable, its message carrying the close reason: "tls <error>: ..." or, for a stream
  // that ended mid-handshake, "tls handshake interrupted: ..."). For metrics, audits and checks;
  // the connection is already closed. Runs on the thread that drove the handshake, no lock held.
  using HandshakeFailedCallback =
      std::function<void(const Address& peer, const absl::Status& failure)>;

  // `inner` and `env` must outlive the factory and its listeners. `context` has Role::kServer.
  TlsServerFactory(ServerConnectionFactory& inner, Env& env, std::shared_ptr<TlsContext> context);
  // Reports each failed handshake of the listeners made from now on (empty: none).
  void set_on_handshake_failed(HandshakeFailedCallback callback) {
    on_handshake_failed_ = std::move(callback);
  }

  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override;
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override;

 private:
  ServerConnectionFactory& inner_;
  Env& env_;
  const std::shared_ptr<TlsContext> context_;
  HandshakeFailedCallback on_handshake_failed_;
};

}  // namespace netlayer::tls
