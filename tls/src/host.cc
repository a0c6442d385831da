#include "netlayer/tls/host.h"

#include <utility>

namespace netlayer::tls {

// The factories of a side that has no TLS context: every call fails, so nothing ever goes out
// (or is accepted) in plaintext by mistake.
class TlsHost::Refusing final : public ClientConnectionFactory, public ServerConnectionFactory {
 public:
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address>, ConnectOptions, std::shared_ptr<ConnectHandler>) override {
    return NoClient();
  }
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address>,
                                                              ConnectOptions) override {
    return NoClient();
  }
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address&) override { return NoServer(); }
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address&, AcceptCallback) override {
    return NoServer();
  }

 private:
  static absl::Status NoClient() {
    return absl::FailedPreconditionError("tls host: no client TLS context, so no connections");
  }
  static absl::Status NoServer() {
    return absl::FailedPreconditionError("tls host: no server TLS context, so no listeners");
  }
};

absl::StatusOr<std::unique_ptr<TlsHost>> TlsHost::Create(
    Host& inner, std::shared_ptr<TlsContext> client_context,
    std::shared_ptr<TlsContext> server_context) {
  if (client_context == nullptr && server_context == nullptr) {
    return absl::InvalidArgumentError("tls host: give a client context, a server context or both");
  }
  if (client_context != nullptr && client_context->role() != Role::kClient) {
    return absl::InvalidArgumentError("tls host: the client context has the server role");
  }
  if (server_context != nullptr && server_context->role() != Role::kServer) {
    return absl::InvalidArgumentError("tls host: the server context has the client role");
  }
  return std::unique_ptr<TlsHost>(
      new TlsHost(inner, std::move(client_context), std::move(server_context)));
}

TlsHost::TlsHost(Host& inner, std::shared_ptr<TlsContext> client_context,
                 std::shared_ptr<TlsContext> server_context)
    : inner_(inner),
      client_context_(client_context),
      server_context_(server_context),
      refusing_(std::make_unique<Refusing>()) {
  if (client_context != nullptr) {
    clients_.emplace(inner.client_factory(), inner.env(), std::move(client_context));
  }
  if (server_context != nullptr) {
    servers_.emplace(inner.server_factory(), inner.env(), std::move(server_context));
  }
}

absl::Status TlsHost::Reload() {
  absl::Status first;
  for (const std::shared_ptr<TlsContext>& context : {server_context_, client_context_}) {
    if (context == nullptr) continue;
    absl::Status s = context->Reload();
    if (first.ok()) first = std::move(s);
  }
  return first;
}

TlsHost::~TlsHost() = default;

ClientConnectionFactory& TlsHost::client_factory() {
  if (clients_) return *clients_;
  return *refusing_;
}

ServerConnectionFactory& TlsHost::server_factory() {
  if (servers_) return *servers_;
  return *refusing_;
}

}  // namespace netlayer::tls
