#include <memory>
#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/test_pki.h"
#include "sim_net.h"

namespace netlayer::fuzz {
namespace {

// Contexts made once per process, deterministically (the same certificates every run).
struct Contexts {
  Contexts() {
    Xoshiro256 gen(2024);
    auto pki = *tls::TestPki::Create("fuzz-ca", absl::UnixEpoch(), &gen);
    tls::IssueOptions o;
    o.common_name = "server";
    o.dns_names = {"server"};
    auto server_cert = *pki.Issue(o);
    o.common_name = o.dns_names[0] = "client";
    auto client_cert = *pki.Issue(o);
    tls::TlsOptions so;
    so.certificate_chain_pem = server_cert.certificate_pem;
    so.private_key_pem = server_cert.private_key_pem;
    so.ca_pem = pki.ca_certificate_pem();
    so.client_auth = tls::ClientAuth::kOptional;
    so.min_version = tls::TlsVersion::kTls12;
    so.random = &gen;
    server = *tls::TlsContext::Create(tls::Role::kServer, so);
    tls::TlsOptions co = so;
    co.certificate_chain_pem = client_cert.certificate_pem;
    co.private_key_pem = client_cert.private_key_pem;
    co.client_auth = tls::ClientAuth::kNone;
    client = *tls::TlsContext::Create(tls::Role::kClient, co);
  }
  std::shared_ptr<tls::TlsContext> server, client;
};

// Counts what the application side of the target sees: at most one close, nothing after it.
struct Watch : ConnectionHandler {
  void InputData(Connection&, std::string_view data) override {
    NETLAYER_ASSERT(closes == 0, "no input after ConnectionClosed");
    NETLAYER_ASSERT(!data.empty(), "input is never empty");
  }
  void ConnectionClosed(Connection&, const CloseReason&) override {
    NETLAYER_ASSERT(++closes == 1, "ConnectionClosed fires once");
  }
  int closes = 0;
};

}  // namespace

int FuzzTls(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const bool quiet = [] {
    SetLogLevel(spdlog::level::off);  // failures are the point
    return true;
  }();
  (void)quiet;
  static Contexts* contexts = new Contexts();
  const bool target_server = data[0] & 1;
  const bool after_handshake = data[0] & 2;
  const size_t chunk = 1 + data[1] % 200;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  testing::SimNet world(/*seed=*/size, chunk);
  auto pair = world.NewPair();
  // The target wraps one end; the fuzz bytes arrive on it as if from the peer.
  std::shared_ptr<Connection> target_transport = target_server ? pair.server : pair.client;
  std::shared_ptr<Connection> peer_transport = target_server ? pair.client : pair.server;
  auto target = tls::TlsConnection::Create(target_server ? contexts->server : contexts->client,
                                           target_server ? world.server_env() : world.client_env(),
                                           target_transport, "server");
  auto watch = std::make_shared<Watch>();
  target->SetHandler(watch);
  target->Start();
  std::shared_ptr<tls::TlsConnection> peer;
  if (after_handshake) {
    // A genuine peer first: the fuzz bytes then follow its records on the same stream.
    peer = tls::TlsConnection::Create(target_server ? contexts->client : contexts->server,
                                      target_server ? world.client_env() : world.server_env(),
                                      peer_transport, "server");
    peer->Start();
    world.RunFor([&] { return target->handshake_complete() || !target->IsOpen(); },
                 absl::Seconds(5));
    (void)peer->Write("some genuine application data");
    world.Settle();
  }
  (void)peer_transport->Write(input);
  (void)target->Write("the target's own output");
  world.Settle(absl::Seconds(15));  // past the handshake deadline
  // Nothing closed it locally: if it is not open, its handler heard why, once.
  NETLAYER_ASSERT(target->IsOpen() || watch->closes == 1, "a failed connection is reported");
  target->Close();
  if (peer) peer->Close();
  world.Settle();
  return 0;
}

}  // namespace netlayer::fuzz
