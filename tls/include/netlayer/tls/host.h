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

 private:
  class Refusing;
  TlsHost(Host& inner, std::shared_ptr<TlsContext> client_context,
          std::shared_ptr<TlsContext> server_context);

  Host& inner_;
  std::optional<TlsClientFactory> clients_;
  std::optional<TlsServerFactory> servers_;
  std::unique_ptr<Refusing> refusing_;  // stands in for a side without a context
};

}  // namespace netlayer::tls
