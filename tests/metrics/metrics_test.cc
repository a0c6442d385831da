// metrics::RpcMetrics on the simulator (guarded: no sockets, no threads): an rpc server's and a
// reconnecting client's stats and a TLS context's counters in a prometheus::Registry, in the
// text exposition a scrape returns; counters advance by what the stats advanced, once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "netlayer/metrics/rpc_metrics.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/world.h"
#include "netlayer/tls/test_pki.h"
#include "prometheus/text_serializer.h"

namespace netlayer::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint16_t kPort = 9000;

// "name{labels} value" lines of the exposition, by "name{labels}".
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

std::string Scrape(const RpcMetrics& metrics) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, metrics.Collect());
  return out.str();
}

TEST(RpcMetricsTest, ServerClientAndTlsStatsInTheRegistry) {
  sim::World world(sim::WorldOptions{});
  const sim::HostId server_host = *world.AddHost("server");
  const sim::HostId client_host = *world.AddHost("client");
  auto server = rpc::Server::Create(world.env(server_host));
  server->Register("echo",
                   [](const rpc::Request& r, rpc::Responder resp) { (void)resp.Reply(r.payload); });
  auto listener = world.server_factory(server_host)
                      .Listen(Address::HostName("server", kPort),
                              [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  ASSERT_TRUE(listener.ok());
  auto client =
      *rpc::Client::CreateReconnecting(world.env(client_host), world.client_factory(client_host),
                                       {Address::HostName("server", kPort)}, {});
  auto pki = *tls::TestPki::Create("metrics-ca", world.Now(), &world.generator());
  tls::TestCertificate cert =
      *pki.Issue({.common_name = "server", .dns_names = {"server"}, .ip_addresses = {}});
  tls::TlsOptions tls_options;
  tls_options.certificate_chain_pem = cert.certificate_pem;
  tls_options.private_key_pem = cert.private_key_pem;
  tls_options.random = &world.generator();
  auto context = *tls::TlsContext::Create(tls::Role::kServer, tls_options);
  tls::TlsCredentials bad = context->credentials();
  bad.private_key_pem = "not a key";
  ASSERT_FALSE(context->ReplaceCredentials(bad).ok());

  auto metrics = std::make_shared<RpcMetrics>();
  metrics->AddServer("s", server);
  metrics->AddClient("c", client);
  metrics->AddTls("t", context);
  int updates = 0;
  metrics->AddUpdater([&updates] { ++updates; });

  const absl::Time deadline = world.Now() + absl::Seconds(5);
  ASSERT_TRUE(client->Call("echo", "x", deadline).ok());
  ASSERT_TRUE(client->Call("echo", "y", deadline).ok());
  EXPECT_EQ(client->Call("nope", "", deadline).status().code(), absl::StatusCode::kUnimplemented);

  std::map<std::string, std::string> m = Samples(Scrape(*metrics));
  EXPECT_EQ(updates, 1);
  EXPECT_EQ(m[R"(netlayer_rpc_server_calls_total{code="OK",method="echo",server="s"})"], "2");
  EXPECT_EQ(
      m[R"m(netlayer_rpc_server_calls_total{code="UNIMPLEMENTED",method="(unknown)",server="s"})m"],
      "1");
  EXPECT_EQ(m[R"(netlayer_rpc_server_calls_started_total{method="echo",server="s"})"], "2");
  EXPECT_EQ(m[R"(netlayer_rpc_server_call_duration_seconds_count{method="echo",server="s"})"], "2");
  EXPECT_EQ(
      m[R"(netlayer_rpc_server_call_duration_seconds_bucket{method="echo",server="s",le="0.0001"})"],
      "2");
  EXPECT_EQ(m[R"(netlayer_rpc_server_sessions{server="s"})"], "1");
  EXPECT_EQ(m[R"(netlayer_rpc_server_refusals_total{kind="max_sessions",server="s"})"], "0");
  EXPECT_EQ(m[R"(netlayer_rpc_client_calls_total{client="c",code="OK",method="echo"})"], "2");
  EXPECT_EQ(m[R"(netlayer_rpc_client_calls_total{client="c",code="UNIMPLEMENTED",method="nope"})"],
            "1");
  EXPECT_EQ(m[R"(netlayer_rpc_client_call_duration_seconds_count{client="c",method="echo"})"], "2");
  EXPECT_EQ(m[R"(netlayer_rpc_client_connections_total{client="c"})"], "1");
  EXPECT_EQ(m[R"(netlayer_rpc_client_reconnects_total{client="c"})"], "0");
  EXPECT_EQ(m[R"(netlayer_rpc_client_ready{client="c"})"], "1");
  EXPECT_EQ(m[R"(netlayer_tls_credential_reload_failures_total{context="t"})"], "1");
  EXPECT_EQ(m[R"(netlayer_tls_handshake_failures_total{context="t",reason="unknown-ca"})"], "0");
  EXPECT_NE(m[R"(netlayer_rpc_server_received_bytes_total{server="s"})"], "0");

  // A second scrape adds only what happened since: one more call.
  ASSERT_TRUE(client->Call("echo", "z", deadline).ok());
  m = Samples(Scrape(*metrics));
  EXPECT_EQ(updates, 2);
  EXPECT_EQ(m[R"(netlayer_rpc_server_calls_total{code="OK",method="echo",server="s"})"], "3");
  EXPECT_EQ(m[R"(netlayer_rpc_server_call_duration_seconds_count{method="echo",server="s"})"], "3");
  EXPECT_EQ(m[R"(netlayer_rpc_client_call_duration_seconds_count{client="c",method="echo"})"], "3");

  // A method name that is not printable ASCII becomes a valid label value.
  EXPECT_EQ(client->Call("bad\nname\xff", "", deadline).status().code(),
            absl::StatusCode::kUnimplemented);
  const std::string text = Scrape(*metrics);
  EXPECT_THAT(text, HasSubstr(R"(method="bad?name?")"));
  EXPECT_THAT(text, Not(HasSubstr("\xff")));

  client->Close();
  server->Close();
  // Sources gone: their last values stay, nothing is read from them.
  client.reset();
  server.reset();
  m = Samples(Scrape(*metrics));
  EXPECT_EQ(m[R"(netlayer_rpc_server_calls_total{code="OK",method="echo",server="s"})"], "3");
}

TEST(RpcMetricsTest, SetCounterNeverGoesBack) {
  prometheus::Registry registry;
  prometheus::Counter& c =
      prometheus::BuildCounter().Name("x_total").Help("x").Register(registry).Add({});
  SetCounter(c, 5);
  SetCounter(c, 3);
  EXPECT_EQ(c.Value(), 5);
  SetCounter(c, 7);
  EXPECT_EQ(c.Value(), 7);
}

}  // namespace
}  // namespace netlayer::metrics
