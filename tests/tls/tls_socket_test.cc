// TLS over the real backends (posix and asio) on loopback: what docs/TLS.md promises a peer
// sees, checked where a client written from the docs would meet it.
//   - A client that offers no ALPN gets the alert "no application protocol" (docs/TLS.md §4),
//     on both backends, and the server's reason says what it offered.
//   - A 40 MB rpc message goes over TLS with every default (issue 29: limits that agree).
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "netlayer/asio/asio.h"
#include "netlayer/posix/runtime.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/context.h"
#include "netlayer/tls/factory.h"
#include "netlayer/tls/test_pki.h"

namespace netlayer::tls {
namespace {

struct Backend {
  std::string name;
  std::function<std::unique_ptr<Host>()> make;
};

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

class TlsSocketTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    host_ = GetParam().make();
    ca_ = std::make_unique<TestPki>(*TestPki::Create("socket-ca", absl::Now()));
    IssueOptions o;
    o.common_name = "server";
    o.dns_names = {"localhost"};
    o.ip_addresses = {"127.0.0.1"};
    server_cert_ = *ca_->Issue(o);
  }

  std::shared_ptr<TlsContext> ServerContext() {
    TlsOptions o;
    o.certificate_chain_pem = server_cert_.certificate_pem;
    o.private_key_pem = server_cert_.private_key_pem;
    return *TlsContext::Create(Role::kServer, o);
  }
  std::shared_ptr<TlsContext> ClientContext(std::vector<std::string> alpn) {
    TlsOptions o;
    o.ca_pem = ca_->ca_certificate_pem();
    o.alpn = std::move(alpn);
    return *TlsContext::Create(Role::kClient, o);
  }

  // A one-attempt connect offering `alpn` to a server that speaks only netlayer-rpc: it fails
  // with the alert "no application protocol", and the server never hands the connection over.
  void ExpectNoApplicationProtocolAlert(std::vector<std::string> alpn) {
    TlsServerFactory servers(host_->server_factory(), host_->env(), ServerContext());
    auto listener = *servers.Listen(*Address::Parse("127.0.0.1:0"));
    TlsClientFactory clients(host_->client_factory(), host_->env(), ClientContext(std::move(alpn)));
    ConnectOptions connect;
    connect.max_attempts = 1;
    absl::StatusOr<std::shared_ptr<Connection>> c =
        clients.ConnectBlocking({listener->address()}, connect);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find(
                  "tls alpn-mismatch: the peer sent the alert 'no application protocol'"),
              std::string::npos)
        << c.status();
    EXPECT_EQ(listener->Accept(absl::Now() + absl::Milliseconds(200)), nullptr);
    listener->Close();
  }

  std::unique_ptr<Host> host_;
  std::unique_ptr<TestPki> ca_;
  TestCertificate server_cert_;
};

TEST_P(TlsSocketTest, AClientOfferingNoAlpnGetsTheNoApplicationProtocolAlert) {
  ExpectNoApplicationProtocolAlert({});
}

TEST_P(TlsSocketTest, AClientOfferingOnlyOtherProtocolsGetsTheSameAlert) {
  ExpectNoApplicationProtocolAlert({"h2"});
}

TEST_P(TlsSocketTest, AFortyMegabyteRpcMessageGoesOverTlsWithDefaultOptions) {
  TlsServerFactory servers(host_->server_factory(), host_->env(), ServerContext());
  auto server = rpc::Server::Create(host_->env());
  server->Register("echo", [](const rpc::Request& request, rpc::Responder responder) {
    EXPECT_TRUE(responder.Reply(request.payload).ok());
  });
  auto listener =
      *servers.Listen(*Address::Parse("127.0.0.1:0"),
                      [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  TlsClientFactory clients(host_->client_factory(), host_->env(), ClientContext({"netlayer-rpc"}));
  auto client = *rpc::Client::CreateReconnecting(host_->env(), clients, {listener->address()}, {});
  std::string big(40'000'000, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  absl::StatusOr<std::string> reply = client->Call("echo", big, absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(*reply == big);
  client->Close();
  server->Close();
  listener->Close();
}

INSTANTIATE_TEST_SUITE_P(
    Backends, TlsSocketTest,
    ::testing::Values(Backend{"posix", [] { return std::make_unique<posix::Runtime>(); }},
                      Backend{"asio", [] { return std::make_unique<asio::Runtime>(2); }}),
    BackendName);

}  // namespace
}  // namespace netlayer::tls
