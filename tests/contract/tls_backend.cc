// TLS over another backend, for the contract suite: each pair of the inner backend (the
// simulator or posix) is wrapped in a TlsConnection on each end (mutual authentication, TLS 1.3)
// and handed to the tests once both handshakes completed, so every promise of connection.h is
// checked through the adapter. Over the simulator the TLS randomness is drawn from a generator
// seeded per instantiation, so a failing case replays exactly.
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/generator.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/context.h"
#include "netlayer/tls/test_pki.h"

namespace netlayer::contract {
namespace {

tls::TestCertificate Issue(tls::TestPki& pki, const char* name) {
  tls::IssueOptions o;
  o.common_name = name;
  o.dns_names = {name};
  absl::StatusOr<tls::TestCertificate> cert = pki.Issue(o);
  NETLAYER_ASSERT(cert.ok(), "issuing a test certificate works");
  return *cert;
}

std::shared_ptr<tls::TlsContext> Context(tls::Role role, const tls::TestCertificate& cert,
                                         const std::string& ca, Generator* random) {
  tls::TlsOptions o;
  o.certificate_chain_pem = cert.certificate_pem;
  o.private_key_pem = cert.private_key_pem;
  o.ca_pem = ca;
  o.client_auth = tls::ClientAuth::kRequired;
  o.random = random;
  // The suite's bounds on the application side too. With TLS's default 16 MiB of pending input,
  // a server that never reads held 16 MiB plus the transport's bound plus the kernel's buffers:
  // over loopback TCP with autotuning that came to the whole 32 MiB a test writes to prove that
  // a peer that never reads makes the close linger expire, and the test saw an orderly close.
  o.limits.max_pending_input_bytes = ContractLimits().max_pending_input_bytes;
  absl::StatusOr<std::shared_ptr<tls::TlsContext>> c = tls::TlsContext::Create(role, o);
  NETLAYER_ASSERT(c.ok(), "the contract suite's TLS options are valid");
  return *c;
}

class TlsContractBackend final : public ContractBackend {
 public:
  TlsContractBackend(std::unique_ptr<ContractBackend> inner, std::optional<uint64_t> seed)
      : inner_(std::move(inner)) {
    if (seed) generator_ = std::make_unique<Xoshiro256>(*seed);
    Generator* random = generator_.get();
    absl::StatusOr<tls::TestPki> pki =
        tls::TestPki::Create("contract-ca", inner_->env().Now(), random);
    NETLAYER_ASSERT(pki.ok(), "a test CA can be made");
    client_ = Context(tls::Role::kClient, Issue(*pki, "client"), pki->ca_certificate_pem(), random);
    server_ = Context(tls::Role::kServer, Issue(*pki, "server"), pki->ca_certificate_pem(), random);
  }

  Pair Connect() override {
    Pair raw = inner_->Connect();
    if (raw.client == nullptr || raw.server == nullptr) return {};
    auto client = tls::TlsConnection::Create(client_, inner_->env(), raw.client, "server");
    auto server = tls::TlsConnection::Create(server_, inner_->env(), raw.server);
    client->Start();
    server->Start();
    const bool done = inner_->WaitFor(
        [&] { return client->handshake_complete() && server->handshake_complete(); },
        absl::Seconds(20));
    EXPECT_TRUE(done) << "TLS handshake over the contract backend";
    return {client, server};
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) override {
    return inner_->WaitFor(done, timeout);
  }
  void Quiesce(absl::Duration quiet) override { inner_->Quiesce(quiet); }

  // A TLS Abort() aborts the wrapped connection: the peer sees what the transport shows.
  // Over a transport without resets (unix), the stream just ends, without close_notify: TLS
  // reports a truncation.
  CloseReason::Kind AbortSeenAs() const override {
    return inner_->AbortSeenAs() == CloseReason::Kind::kReset ? CloseReason::Kind::kReset
                                                              : CloseReason::Kind::kProtocolError;
  }

  bool threaded() const override { return inner_->threaded(); }
  Env& env() override { return inner_->env(); }

 private:
  std::unique_ptr<ContractBackend> inner_;
  std::unique_ptr<Xoshiro256> generator_;
  std::shared_ptr<tls::TlsContext> client_;
  std::shared_ptr<tls::TlsContext> server_;
};

}  // namespace

// TLS over each of `inner`; `deterministic`: TLS randomness from a per-instantiation seed.
std::vector<BackendMaker> TlsBackendMakers(std::vector<BackendMaker> inner, bool deterministic) {
  std::vector<BackendMaker> makers;
  uint64_t seed = 0;
  for (BackendMaker& m : inner) {
    std::optional<uint64_t> tls_seed;
    if (deterministic) tls_seed = ++seed;
    makers.push_back(
        BackendMaker{"tls_" + m.name,
                     [make = std::move(m.make), tls_seed]() -> std::unique_ptr<ContractBackend> {
                       std::unique_ptr<ContractBackend> b = make();
                       if (b == nullptr) return nullptr;
                       return std::make_unique<TlsContractBackend>(std::move(b), tls_seed);
                     }});
  }
  return makers;
}

}  // namespace netlayer::contract
