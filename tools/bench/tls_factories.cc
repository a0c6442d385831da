// TLS over another backend's factories, for netlayer-bench (issue 15): the smac ping-pong and
// bulk runners take these in place of the plain factories, so the TLS figures differ from the
// plain ones only by the adapter. Mutual authentication with TLS 1.3, as deployed: a throwaway
// CA (made at run time, no key on disk), a server and a client certificate, OpenSSL's own
// randomness and clock.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netlayer/posix/env.h"
#include "netlayer/tls/context.h"
#include "netlayer/tls/factory.h"
#include "netlayer/tls/test_pki.h"
#include "tls_figures.h"

namespace netlayer::bench {
namespace {

constexpr const char* kServerName = "bench-server";

// What the two TLS factories need to outlive them: the plain factories, an Env (the
// handshake timers run on it) and the contexts. Held through the factories' shared_ptrs.
struct TlsStack {
  Factories plain;
  posix::PosixEnv env;
  std::shared_ptr<tls::TlsClientFactory> client;
  std::shared_ptr<tls::TlsServerFactory> server;
};

absl::StatusOr<std::shared_ptr<tls::TlsContext>> MakeContext(tls::Role role, tls::TestPki& pki,
                                                             const char* name) {
  tls::IssueOptions issue;
  issue.common_name = name;
  issue.dns_names = {name};
  absl::StatusOr<tls::TestCertificate> cert = pki.Issue(issue);
  if (!cert.ok()) return cert.status();
  tls::TlsOptions options;
  options.certificate_chain_pem = cert->certificate_pem;
  options.private_key_pem = cert->private_key_pem;
  options.ca_pem = pki.ca_certificate_pem();
  options.client_auth = tls::ClientAuth::kRequired;
  options.server_name = kServerName;
  return tls::TlsContext::Create(role, std::move(options));
}

}  // namespace

FactoriesMaker TlsOver(FactoriesMaker plain) {
  return [plain = std::move(plain)]() -> absl::StatusOr<Factories> {
    absl::StatusOr<Factories> inner = plain();
    if (!inner.ok()) return inner.status();
    absl::StatusOr<tls::TestPki> pki = tls::TestPki::Create("bench-ca", absl::Now());
    if (!pki.ok()) return pki.status();
    absl::StatusOr<std::shared_ptr<tls::TlsContext>> client_context =
        MakeContext(tls::Role::kClient, *pki, "bench-client");
    if (!client_context.ok()) return client_context.status();
    absl::StatusOr<std::shared_ptr<tls::TlsContext>> server_context =
        MakeContext(tls::Role::kServer, *pki, kServerName);
    if (!server_context.ok()) return server_context.status();

    auto stack = std::make_shared<TlsStack>();
    stack->plain = std::move(*inner);
    stack->client = std::make_shared<tls::TlsClientFactory>(*stack->plain.client, stack->env,
                                                            std::move(*client_context));
    stack->server = std::make_shared<tls::TlsServerFactory>(*stack->plain.server, stack->env,
                                                            std::move(*server_context));
    Factories f;
    // Aliasing pointers: each factory keeps the whole stack (plain factories, env) alive.
    f.client = std::shared_ptr<ClientConnectionFactory>(stack, stack->client.get());
    f.server = std::shared_ptr<ServerConnectionFactory>(stack, stack->server.get());
    f.listen_address = stack->plain.listen_address;
    return f;
  };
}

}  // namespace netlayer::bench
