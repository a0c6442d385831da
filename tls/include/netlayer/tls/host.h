// TlsHost: a netlayer::Host whose connections are TLS. It keeps the Env of the Host it wraps and
// wraps that Host's factories in TlsClientFactory / TlsServerFactory, so an application written
// against Host (apps/objstore, examples/echo) gets TLS by being given a TlsHost, nothing else:
//
//   posix::Runtime runtime;
//   auto host = *tls::TlsHost::Create(runtime, client_context, /*server_context=*/nullptr);
//   auto client = objstore::Client::Create(*host, {address});
//
// A side without a context is refused, never plaintext: with no client context, Connect and
// ConnectBlocking fail FailedPrecondition; with no server context, Listen does.
//
// Thread rules and lifetimes as Host (core/host.h); `inner` must outlive the TlsHost, and the
// TlsHost everything made on it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "netlayer/core/host.h"
#include "netlayer/tls/context.h"
#include "netlayer/tls/factory.h"

namespace netlayer::tls {

class TlsHost final : public Host {
 public:
  // InvalidArgument if a context has the wrong role, or neither is given.
  static absl::StatusOr<std::unique_ptr<TlsHost>> Create(
      Host& inner, std::shared_ptr<TlsContext> client_context,
      std::shared_ptr<TlsContext> server_context);
  ~TlsHost() override;

  Env& env() override { return inner_.env(); }
  ClientConnectionFactory& client_factory() override;
  ServerConnectionFactory& server_factory() override;
  // The wrapped host's name with "+tls": "posix+tls".
  std::string name() const override { return inner_.name() + "+tls"; }

  // Reload (docs/TLS.md §10): TlsContext::Reload() on the server context, then the client
  // context (those given); connections made from now on use the files' new credentials,
  // connections already made are kept. The first failure (each context that fails keeps its old
  // credentials; the other one still reloads); OK otherwise. Thread-safe.
  absl::Status Reload();
  const std::shared_ptr<TlsContext>& client_context() const { return client_context_; }
  const std::shared_ptr<TlsContext>& server_context() const { return server_context_; }

 private:
  class Refusing;
  TlsHost(Host& inner, std::shared_ptr<TlsContext> client_context,
          std::shared_ptr<TlsContext> server_context);

  Host& inner_;
  const std::shared_ptr<TlsContext> client_context_;  // null: none
  const std::shared_ptr<TlsContext> server_context_;  // null: none
  std::optional<TlsClientFactory> clients_;
  std::optional<TlsServerFactory> servers_;
  std::unique_ptr<Refusing> refusing_;  // stands in for a side without a context
};

}  // namespace netlayer::tls
