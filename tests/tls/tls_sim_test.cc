// The TLS adapter over the simulator: handshakes, mutual authentication, every handshake
// failure's CloseReason (and its log line on both sides), garbage and truncation, close_notify,
// timeouts, back-pressure through the adapter, rpc over TLS by wrapping factories, and
// determinism (same seed, same trace hash).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_join.h"
#include "netlayer/core/log.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/host.h"
#include "netlayer/tls/host.h"
#include "spdlog/sinks/ostream_sink.h"
#include "tls_test_util.h"

namespace netlayer::tls::testing {
namespace {

constexpr uint16_t kPort = 8100;
const Address kServerAddress = Address::HostName("server", kPort);

// Every netlayer log line of this process, to check that failures are logged on both sides.
std::string& LogText() {
  static std::ostringstream* out = [] {
    auto* o = new std::ostringstream();
    AddLogSink(std::make_shared<spdlog::sinks::ostream_sink_st>(*o));
    return o;
  }();
  static std::string text;
  text = out->str();
  return text;
}

class TlsSimTest : public ::testing::Test {
 protected:
  void SetUp() override { Init(1); }

  void Init(uint64_t seed, ConnectionLimits limits = {}) {
    sim::WorldOptions options;
    options.seed = seed;
    options.profile = sim::DrawNetworkProfile(seed);
    options.connection_limits = limits;
    world_ = *sim::World::Create(options);
    client_ = *world_->AddHost("client");
    server_ = *world_->AddHost("server");
    pki_ = std::make_unique<Pki>(world_->Now(), &world_->generator());
    log_mark_ = LogText().size();
  }

  std::shared_ptr<Listener> ListenTls(TlsOptions options) {
    server_factory_ =
        std::make_unique<TlsServerFactory>(world_->server_factory(server_), world_->env(server_),
                                           MakeContext(Role::kServer, std::move(options)));
    return *server_factory_->Listen(kServerAddress);
  }

  absl::StatusOr<std::shared_ptr<Connection>> ConnectTls(TlsOptions options) {
    client_factory_ =
        std::make_unique<TlsClientFactory>(world_->client_factory(client_), world_->env(client_),
                                           MakeContext(Role::kClient, std::move(options)));
    ConnectOptions connect;
    connect.max_attempts = 1;
    return client_factory_->ConnectBlocking({kServerAddress}, connect);
  }

  // Log lines written since the test started.
  std::string NewLogs() { return LogText().substr(log_mark_); }

  Generator* random() { return &world_->generator(); }

  std::unique_ptr<sim::World> world_;
  sim::HostId client_, server_;
  std::unique_ptr<Pki> pki_;
  std::unique_ptr<TlsServerFactory> server_factory_;
  std::unique_ptr<TlsClientFactory> client_factory_;
  size_t log_mark_ = 0;
};

TEST_F(TlsSimTest, MutualHandshakeCarriesDataAndIdentities) {
  auto listener = ListenTls(ServerOptions(*pki_, random()));
  auto client = ConnectTls(ClientOptions(*pki_, random(), &pki_->client));
  ASSERT_TRUE(client.ok()) << client.status();
  auto server = listener->Accept(world_->Now() + absl::Seconds(10));
  ASSERT_NE(server, nullptr);

  auto* c = dynamic_cast<TlsConnection*>(client->get());
  auto* s = dynamic_cast<TlsConnection*>(server.get());
  ASSERT_NE(c, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(c->protocol_version(), "TLSv1.3");
  EXPECT_EQ(c->alpn_protocol(), "netlayer-rpc");
  EXPECT_EQ(s->alpn_protocol(), "netlayer-rpc");
  ASSERT_TRUE(c->peer_identity().has_value());
  EXPECT_EQ(c->peer_identity()->common_name, "server");
  EXPECT_TRUE(c->peer_identity()->verified);
  EXPECT_EQ(c->peer_identity()->dns_names, (std::vector<std::string>{"server", "localhost"}));
  EXPECT_EQ(c->peer_identity()->ip_addresses,
            (std::vector<std::string>{"127.0.0.1", "0:0:0:0:0:0:0:1"}));
  ASSERT_TRUE(s->peer_identity().has_value());
  EXPECT_EQ(s->peer_identity()->common_name, "client-1");
  EXPECT_EQ(s->peer_identity()->subject, "CN=client-1,O=netlayer test");
  EXPECT_EQ(s->peer_identity()->issuer, "CN=netlayer-test-ca,O=netlayer test");
  EXPECT_EQ(s->peer_identity()->dns_names, (std::vector<std::string>{"client-1.example"}));
  EXPECT_TRUE(s->peer_identity()->verified);

  auto client_rec = std::make_shared<Recorder>();
  auto server_rec = std::make_shared<Recorder>();
  (*client)->SetHandler(client_rec);
  server->SetHandler(server_rec);
  ASSERT_TRUE((*client)->Write("hello over tls").ok());
  ASSERT_TRUE(server->Write("and back").ok());
  ASSERT_TRUE(world_->RunUntil(
      [&] {
        return server_rec->Received() == "hello over tls" && client_rec->Received() == "and back";
      },
      world_->Now() + absl::Seconds(10)));

  // Close flushes, then close_notify: the peer sees everything, then kPeerClosed.
  const std::string big(1 << 20, 'x');
  ASSERT_TRUE((*client)->Write(big).ok());
  (*client)->Close();
  EXPECT_FALSE((*client)->IsOpen());
  ASSERT_TRUE(world_->RunUntil([&] { return server_rec->CloseCount() == 1; },
                               world_->Now() + absl::Seconds(30)));
  EXPECT_EQ(server_rec->Received().size(), 14 + big.size());
  EXPECT_EQ(server_rec->FirstClose().kind(), CloseReason::Kind::kPeerClosed)
      << server_rec->FirstClose();
  EXPECT_EQ(s->error(), TlsError::kNone);
  world_->RunFor(absl::Seconds(1)).IgnoreError();
  EXPECT_EQ(client_rec->CloseCount(), 0u) << "a local Close() is not notified";
}

TEST_F(TlsSimTest, WritesMadeBeforeTheHandshakeAreSentAfterIt) {
  auto listener = ListenTls(ServerOptions(*pki_, random(), ClientAuth::kNone));
  client_factory_ = std::make_unique<TlsClientFactory>(
      world_->client_factory(client_), world_->env(client_),
      MakeContext(Role::kClient, ClientOptions(*pki_, random(), nullptr)));
  struct Handler : ConnectHandler {
    void Connected(std::shared_ptr<Connection> c) override {
      EXPECT_FALSE(dynamic_cast<TlsConnection&>(*c).handshake_complete());
      EXPECT_TRUE(c->Write("early ").ok());
      EXPECT_TRUE(c->Write("bytes").ok());
      c->Close();  // flushes after the handshake, then close_notify
      connection = c;
    }
    void FailedConnection(const absl::Status& s) override { ADD_FAILURE() << s; }
    std::shared_ptr<Connection> connection;
  };
  auto handler = std::make_shared<Handler>();
  ASSERT_TRUE(client_factory_->Connect({kServerAddress}, {}, handler).ok());
  auto server = listener->Accept(world_->Now() + absl::Seconds(10));
  ASSERT_NE(server, nullptr);
  auto rec = std::make_shared<Recorder>();
  server->SetHandler(rec);
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(10)));
  EXPECT_EQ(rec->Received(), "early bytes");
  EXPECT_EQ(rec->FirstClose().kind(), CloseReason::Kind::kPeerClosed);
}

// A client the server rejects: the client's connection closes with `client_error`, the server
// never hands the connection to the application and logs `server_error`.
struct Rejection {
  const char* name;
  TlsError client_error;
  TlsError server_error;
};

class TlsRejectionTest : public TlsSimTest {
 protected:
  void ExpectRejected(TlsOptions server, TlsOptions client, Rejection r) {
    auto listener = ListenTls(std::move(server));
    auto connection = ConnectTls(std::move(client));
    std::string client_reason;
    if (connection.ok()) {
      // TLS 1.3: the client finishes its side first; the server's verdict arrives as an alert.
      auto rec = std::make_shared<Recorder>();
      (*connection)->SetHandler(rec);
      ASSERT_TRUE(world_->RunUntil([&] { return rec->CloseCount() == 1; },
                                   world_->Now() + absl::Seconds(15)))
          << r.name;
      EXPECT_EQ(rec->FirstClose().kind(), CloseReason::Kind::kProtocolError);
      client_reason = rec->FirstClose().ToString();
      EXPECT_EQ(dynamic_cast<TlsConnection&>(**connection).error(), r.client_error)
          << client_reason;
    } else {
      client_reason = connection.status().ToString();
    }
    EXPECT_NE(client_reason.find(absl::StrCat("tls ", TlsErrorName(r.client_error), ":")),
              std::string::npos)
        << r.name << ": " << client_reason;
    EXPECT_EQ(listener->Accept(world_->Now() + absl::Seconds(15)), nullptr)
        << r.name << ": a rejected client reached the application";
    const std::string logs = NewLogs();
    EXPECT_NE(logs.find(absl::StrCat("tls server handshake failed")), std::string::npos) << logs;
    EXPECT_NE(logs.find(absl::StrCat("tls ", TlsErrorName(r.server_error), ":")), std::string::npos)
        << r.name << " server side: " << logs;
    EXPECT_NE(logs.find("tls client"), std::string::npos) << r.name << ": " << logs;
  }
};

TEST_F(TlsRejectionTest, ClientWithoutCertificate) {
  ExpectRejected(ServerOptions(*pki_, random()), ClientOptions(*pki_, random(), nullptr),
                 {"no cert", TlsError::kNoPeerCertificate, TlsError::kNoPeerCertificate});
}

TEST_F(TlsRejectionTest, ClientCertificateFromAnotherCa) {
  ExpectRejected(ServerOptions(*pki_, random()), ClientOptions(*pki_, random(), &pki_->foreign),
                 {"other CA", TlsError::kUnknownCa, TlsError::kUnknownCa});
}

TEST_F(TlsRejectionTest, ExpiredClientCertificate) {
  ExpectRejected(ServerOptions(*pki_, random()), ClientOptions(*pki_, random(), &pki_->expired),
                 {"expired", TlsError::kExpired, TlsError::kExpired});
}

TEST_F(TlsRejectionTest, ServerCertificateForAnotherName) {
  TlsOptions server = ServerOptions(*pki_, random(), ClientAuth::kNone);
  server.certificate_chain_pem = pki_->wrong_name.certificate_pem;
  server.private_key_pem = pki_->wrong_name.private_key_pem;
  ExpectRejected(server, ClientOptions(*pki_, random(), nullptr),
                 {"bad name", TlsError::kBadName, TlsError::kBadCertificate});
}

TEST_F(TlsRejectionTest, ServerCertificateFromUnknownCa) {
  TlsOptions server = ServerOptions(*pki_, random(), ClientAuth::kNone);
  server.certificate_chain_pem = pki_->foreign.certificate_pem;
  server.private_key_pem = pki_->foreign.private_key_pem;
  ExpectRejected(server, ClientOptions(*pki_, random(), nullptr),
                 {"server unknown CA", TlsError::kUnknownCa, TlsError::kUnknownCa});
}

TEST_F(TlsRejectionTest, ExpiredServerCertificate) {
  TlsOptions server = ServerOptions(*pki_, random(), ClientAuth::kNone);
  server.certificate_chain_pem = pki_->expired.certificate_pem;
  server.private_key_pem = pki_->expired.private_key_pem;
  ExpectRejected(server, ClientOptions(*pki_, random(), nullptr),
                 {"server expired", TlsError::kExpired, TlsError::kExpired});
}

TEST_F(TlsRejectionTest, NoCommonProtocolVersion) {
  TlsOptions client = ClientOptions(*pki_, random(), &pki_->client);
  client.min_version = client.max_version = TlsVersion::kTls12;
  ExpectRejected(ServerOptions(*pki_, random()), client,
                 {"version", TlsError::kProtocolVersion, TlsError::kProtocolVersion});
}

TEST_F(TlsRejectionTest, NoCommonApplicationProtocol) {
  TlsOptions client = ClientOptions(*pki_, random(), &pki_->client);
  client.alpn = {"something-else"};
  ExpectRejected(ServerOptions(*pki_, random()), client,
                 {"alpn", TlsError::kAlpnMismatch, TlsError::kAlpnMismatch});
}

// docs/TLS.md §4: a client that offers no ALPN at all gets the alert too (OpenSSL calls the
// server's ALPN selection only when the extension is present).
TEST_F(TlsRejectionTest, NoApplicationProtocolOffered) {
  TlsOptions client = ClientOptions(*pki_, random(), &pki_->client);
  client.alpn.clear();
  ExpectRejected(ServerOptions(*pki_, random()), client,
                 {"no alpn", TlsError::kAlpnMismatch, TlsError::kAlpnMismatch});
  EXPECT_NE(NewLogs().find("the client offered no application protocol (ALPN)"),
            std::string::npos);
}

TEST_F(TlsSimTest, Tls12ByOptionWithMutualAuth) {
  TlsOptions server = ServerOptions(*pki_, random());
  server.min_version = TlsVersion::kTls12;
  TlsOptions client = ClientOptions(*pki_, random(), &pki_->client);
  client.min_version = client.max_version = TlsVersion::kTls12;
  auto listener = ListenTls(server);
  auto connection = ConnectTls(client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ(dynamic_cast<TlsConnection&>(**connection).protocol_version(), "TLSv1.2");
  auto accepted = listener->Accept(world_->Now() + absl::Seconds(10));
  ASSERT_NE(accepted, nullptr);
  EXPECT_EQ(dynamic_cast<TlsConnection&>(*accepted).peer_identity()->common_name, "client-1");
}

TEST_F(TlsSimTest, GarbageFromAPlainClientClosesWithoutReachingTheApplication) {
  auto listener = ListenTls(ServerOptions(*pki_, random()));
  auto raw = world_->client_factory(client_).ConnectBlocking({kServerAddress}, {});
  ASSERT_TRUE(raw.ok());
  auto rec = std::make_shared<Recorder>();
  (*raw)->SetHandler(rec);
  ASSERT_TRUE((*raw)->Write("GET / HTTP/1.0\r\n\r\n").ok());
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(15)));
  EXPECT_EQ(listener->Accept(world_->Now() + absl::Seconds(1)), nullptr);
  EXPECT_NE(NewLogs().find("tls protocol-error"), std::string::npos) << NewLogs();
}

TEST_F(TlsSimTest, GarbageFromAPlainServerClosesTheClientWithAReason) {
  auto listener =
      *world_->server_factory(server_).Listen(kServerAddress, [](std::shared_ptr<Connection> c) {
        // Answers the ClientHello with something that is not TLS.
        struct Garbage : ConnectionHandler {
          void InputData(Connection& c, std::string_view) override {
            (void)c.Write(std::string(100, '\x17') + "not tls at all");
            c.Close();
          }
          void ConnectionClosed(Connection&, const CloseReason&) override {}
        };
        c->SetHandler(std::make_shared<Garbage>());
      });
  auto connection = ConnectTls(ClientOptions(*pki_, random(), nullptr));
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.status().ToString().find("tls protocol-error"), std::string::npos)
      << connection.status();
}

TEST_F(TlsSimTest, AStreamCutAfterTheHandshakeIsTruncatedNotAPeerClose) {
  // The server side is a TlsConnection built by hand so the test can close its transport
  // under it (as a peer that crashed between records would).
  std::shared_ptr<Connection> server_transport;
  auto server_context =
      MakeContext(Role::kServer, ServerOptions(*pki_, random(), ClientAuth::kNone));
  std::shared_ptr<TlsConnection> server_tls;
  auto listener =
      *world_->server_factory(server_).Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
        server_transport = c;
        server_tls = TlsConnection::Create(server_context, world_->env(server_), c);
        server_tls->Start();
      });
  auto connection = ConnectTls(ClientOptions(*pki_, random(), nullptr));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto rec = std::make_shared<Recorder>();
  (*connection)->SetHandler(rec);
  ASSERT_TRUE(server_tls->Write("some data").ok());
  ASSERT_TRUE(world_->RunUntil([&] { return rec->Received() == "some data"; },
                               world_->Now() + absl::Seconds(10)));
  server_transport->Close();  // FIN without close_notify
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(10)));
  EXPECT_EQ(rec->FirstClose().kind(), CloseReason::Kind::kProtocolError);
  EXPECT_NE(rec->FirstClose().detail().find("tls truncated"), std::string::npos)
      << rec->FirstClose();
}

TEST_F(TlsSimTest, ResetPassesThroughAsAReset) {
  auto listener = ListenTls(ServerOptions(*pki_, random(), ClientAuth::kNone));
  auto connection = ConnectTls(ClientOptions(*pki_, random(), nullptr));
  ASSERT_TRUE(connection.ok());
  auto server = listener->Accept(world_->Now() + absl::Seconds(5));
  ASSERT_NE(server, nullptr);
  auto rec = std::make_shared<Recorder>();
  (*connection)->SetHandler(rec);
  ASSERT_EQ(world_->LiveConnections(), 1u);
  // Reset the one stream (its ends are the wrapped connections) as the network does: the server
  // machine loses power and comes back, and its new kernel answers the client's next record
  // with an RST (DESIGN.md §12: a crash would send a FIN, which TLS reports as a truncation).
  ASSERT_TRUE(world_->PowerOff(server_).ok());
  ASSERT_TRUE(world_->Restart(server_).ok());
  ASSERT_TRUE((*connection)->Write("anyone there?").ok());
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(10)));
  EXPECT_EQ(rec->FirstClose().kind(), CloseReason::Kind::kReset) << rec->FirstClose();
}

// Back-pressure passes through the adapter: while the server's application sets no handler, the
// adapter decrypts up to its input bound, then stops taking ciphertext from the wrapped
// connection (which queues up to its own bound and stops reading), so the client's output backs
// up. The data and the close_notify sent meanwhile wait, and arrive whole and in order once the
// application reads.
class TlsBackPressureTest : public TlsSimTest {
 protected:
  void PauseAndResume(uint64_t seed);
};

TEST_F(TlsBackPressureTest, AnApplicationThatDoesNotReadPausesTheWrappedConnection) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    PauseAndResume(seed);
    if (HasFailure()) return;
  }
}

void TlsBackPressureTest::PauseAndResume(uint64_t seed) {
  server_factory_.reset();
  client_factory_.reset();
  ConnectionLimits limits;
  limits.max_pending_input_bytes = size_t{128} << 10;  // the wrapped connections' bound
  limits.close_linger = absl::Seconds(120);            // the client's flush waits for the reader
  Init(seed, limits);
  TlsOptions server_options = ServerOptions(*pki_, random(), ClientAuth::kNone);
  constexpr size_t kTlsBound = size_t{64} << 10;
  server_options.limits.max_pending_input_bytes = kTlsBound;
  auto server_context = MakeContext(Role::kServer, std::move(server_options));
  std::shared_ptr<WatchedTransport> transport;
  std::shared_ptr<TlsConnection> server;
  auto listener =
      *world_->server_factory(server_).Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
        transport = std::make_shared<WatchedTransport>(std::move(c));
        server = TlsConnection::Create(server_context, world_->env(server_), transport);
        server->Start();
      });
  auto client = ConnectTls(ClientOptions(*pki_, random(), nullptr));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(world_->RunUntil([&] { return server && server->handshake_complete(); },
                               world_->Now() + absl::Seconds(10)));
  EXPECT_TRUE(transport->reading());
  const size_t handshake_bytes = transport->delivered;

  std::string data(size_t{4} << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
  ASSERT_TRUE((*client)->Write(data).ok());
  (*client)->Close();  // close_notify follows the data, while the server is paused
  ASSERT_TRUE(world_->RunFor(absl::Seconds(5)).ok());

  // Paused: the adapter took about its bound of ciphertext (a delivery or two past it, plus
  // record overhead), and the rest waits upstream.
  EXPECT_FALSE(transport->reading());
  EXPECT_GE(transport->removals, 1);
  const size_t taken = transport->delivered - handshake_bytes;
  EXPECT_GE(taken, kTlsBound);
  EXPECT_LE(taken, 4 * kTlsBound) << "ciphertext accepted while the application reads nothing";
  EXPECT_GT((*client)->QueuedOutputBytes(), size_t{1} << 20) << "the sender sees back-pressure";
  // And it stays so.
  ASSERT_TRUE(world_->RunFor(absl::Seconds(5)).ok());
  EXPECT_EQ(transport->delivered - handshake_bytes, taken);

  // The application reads: the adapter reads its transport again; everything arrives, then the
  // close_notify that waited behind it.
  auto rec = std::make_shared<Recorder>();
  const int installs = transport->installs;
  server->SetHandler(rec);
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(60)));
  EXPECT_GT(transport->installs, installs);
  EXPECT_TRUE(rec->Received() == data) << rec->Received().size() << " bytes of " << data.size();
  EXPECT_EQ(rec->FirstClose().kind(), CloseReason::Kind::kPeerClosed) << rec->FirstClose();
  EXPECT_EQ(rec->FirstClose().detail(), "tls close_notify");
  EXPECT_EQ(server->error(), TlsError::kNone);
}

TEST_F(TlsSimTest, ASilentPeerTimesTheHandshakeOut) {
  // A plain client that connects and says nothing: the server gives up at its deadline.
  auto listener = ListenTls(ServerOptions(*pki_, random()));
  auto raw = world_->client_factory(client_).ConnectBlocking({kServerAddress}, {});
  ASSERT_TRUE(raw.ok());
  auto rec = std::make_shared<Recorder>();
  (*raw)->SetHandler(rec);
  ASSERT_TRUE(
      world_->RunUntil([&] { return rec->CloseCount() == 1; }, world_->Now() + absl::Seconds(30)));
  EXPECT_NE(NewLogs().find("tls handshake-timeout"), std::string::npos) << NewLogs();

  // A silent server: the client's ConnectBlocking fails at its deadline.
  auto silent = *world_->server_factory(server_).Listen(Address::HostName("server", 9000));
  client_factory_ = std::make_unique<TlsClientFactory>(
      world_->client_factory(client_), world_->env(client_),
      MakeContext(Role::kClient, ClientOptions(*pki_, random(), nullptr)));
  auto c = client_factory_->ConnectBlocking({Address::HostName("server", 9000)}, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().ToString().find("tls handshake-timeout"), std::string::npos) << c.status();
}

TEST_F(TlsSimTest, BadOptionsAreInvalidArgument) {
  TlsOptions o;
  EXPECT_EQ(TlsContext::Create(Role::kServer, o).status().code(),
            absl::StatusCode::kInvalidArgument);  // no certificate
  o = ClientOptions(*pki_, nullptr, nullptr);
  o.ca_pem.clear();
  EXPECT_EQ(TlsContext::Create(Role::kClient, o).status().code(),
            absl::StatusCode::kInvalidArgument);  // verification without a CA
  o = ServerOptions(*pki_, nullptr);
  o.private_key_pem = pki_->client.private_key_pem;
  EXPECT_EQ(TlsContext::Create(Role::kServer, o).status().code(),
            absl::StatusCode::kInvalidArgument);  // key does not match
  o = ServerOptions(*pki_, nullptr);
  o.certificate_chain_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(TlsContext::Create(Role::kServer, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  TlsClientFactory factory(world_->client_factory(client_), world_->env(client_),
                           MakeContext(Role::kClient, ClientOptions(*pki_, nullptr, nullptr)));
  EXPECT_EQ(
      factory.ConnectBlocking({Address::HostName("server", 1), Address::HostName("client", 1)}, {})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsSimTest, RpcOverTlsByWrappingTheFactories) {
  TlsServerFactory servers(world_->server_factory(server_), world_->env(server_),
                           MakeContext(Role::kServer, ServerOptions(*pki_, random())));
  auto rpc_server = rpc::Server::Create(world_->env(server_));
  rpc_server->Register("whoami", [](const rpc::Request&, rpc::Responder responder) {
    (void)responder.Reply("served");
  });
  auto listener = *servers.Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
    auto& tls = dynamic_cast<TlsConnection&>(*c);
    EXPECT_EQ(tls.peer_identity()->common_name, "client-1");
    rpc_server->Serve(std::move(c));
  });
  TlsClientFactory clients(
      world_->client_factory(client_), world_->env(client_),
      MakeContext(Role::kClient, ClientOptions(*pki_, random(), &pki_->client)));
  auto rpc_client =
      *rpc::Client::CreateReconnecting(world_->env(client_), clients, {kServerAddress}, {});
  auto reply = rpc_client->Call("whoami", "", world_->Now() + absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "served");
  rpc_client->Close();
  rpc_server->Close();
  listener->Close();
}

// Limits that agree (issue 29): a message the frame limit allows goes over TLS with every
// default: rpc's 64 MiB frames, TLS's output bound, the wrapped connection's bound.
TEST_F(TlsSimTest, AFortyMegabyteRpcMessageGoesOverTlsWithDefaultOptions) {
  TlsServerFactory servers(world_->server_factory(server_), world_->env(server_),
                           MakeContext(Role::kServer, ServerOptions(*pki_, random())));
  auto rpc_server = rpc::Server::Create(world_->env(server_));
  rpc_server->Register("echo", [](const rpc::Request& request, rpc::Responder responder) {
    EXPECT_TRUE(responder.Reply(request.payload).ok());
  });
  auto listener = *servers.Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
    rpc_server->Serve(std::move(c));
  });
  TlsClientFactory clients(
      world_->client_factory(client_), world_->env(client_),
      MakeContext(Role::kClient, ClientOptions(*pki_, random(), &pki_->client)));
  auto rpc_client =
      *rpc::Client::CreateReconnecting(world_->env(client_), clients, {kServerAddress}, {});
  std::string big(40'000'000, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  auto reply = rpc_client->Call("echo", big, world_->Now() + absl::Seconds(60));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(*reply == big);
  rpc_client->Close();
  rpc_server->Close();
  listener->Close();
}

TEST_F(TlsSimTest, ValidateRefusesLimitsThatCannotCarryALargestFrame) {
  EXPECT_TRUE(ValidateTlsLimits(TlsOptions{}).ok());
  TlsOptions o = ServerOptions(*pki_, nullptr);
  o.limits.max_output_bytes = size_t{32} << 20;  // the old default: a 64 MiB frame never fits
  absl::Status s = ValidateTlsLimits(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cannot hold the largest write"), std::string::npos) << s;
  EXPECT_EQ(TlsContext::Create(Role::kServer, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.largest_write_bytes = (size_t{16} << 20) + 4;  // an application with 16 MiB frames: fine
  EXPECT_TRUE(ValidateTlsLimits(o).ok());
  o = ServerOptions(*pki_, nullptr);
  o.transport_max_output_bytes = size_t{64} << 20;  // the encrypted bound does not fit below
  s = ValidateTlsLimits(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("wrapped connection's output bound"), std::string::npos) << s;
  // Exactly at the bound is enough.
  o.transport_max_output_bytes = CiphertextBound(o.limits.max_output_bytes);
  EXPECT_TRUE(ValidateTlsLimits(o).ok());
  // rpc's side of the same rule: a frame limit the connection's bound cannot carry.
  rpc::ServerOptions server_options;
  EXPECT_TRUE(rpc::ValidateServerOptions(server_options).ok());
  server_options.connection_max_output_bytes = TlsOptions{}.limits.max_output_bytes;
  EXPECT_TRUE(rpc::ValidateServerOptions(server_options).ok());
  server_options.connection_max_output_bytes = size_t{64} << 20;  // 4 bytes short
  s = rpc::ValidateServerOptions(server_options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cannot hold one frame"), std::string::npos) << s;
  rpc::ClientOptions client_options;
  client_options.message_options.max_queued_bytes = size_t{1} << 20;
  EXPECT_EQ(rpc::ValidateClientOptions(client_options).code(), absl::StatusCode::kInvalidArgument);
}

// tls::TlsHost: application code written against Host gets TLS by being given one.
TEST_F(TlsSimTest, RpcOverATlsHost) {
  sim::SimHost server_sim(*world_, server_);
  sim::SimHost client_sim(*world_, client_);
  auto server_host = *TlsHost::Create(server_sim, nullptr,
                                      MakeContext(Role::kServer, ServerOptions(*pki_, random())));
  auto client_host = *TlsHost::Create(
      client_sim, MakeContext(Role::kClient, ClientOptions(*pki_, random(), &pki_->client)),
      nullptr);
  EXPECT_EQ(&server_host->env(), &server_sim.env());
  EXPECT_EQ(server_host->name(), server_sim.name() + "+tls");
  Host& server = *server_host;
  Host& client = *client_host;
  auto rpc_server = rpc::Server::Create(server.env());
  rpc_server->Register("whoami", [](const rpc::Request&, rpc::Responder responder) {
    (void)responder.Reply("served");
  });
  std::string peer;
  auto listener =
      *server.server_factory().Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
        peer = dynamic_cast<TlsConnection&>(*c).peer_identity()->common_name;
        rpc_server->Serve(std::move(c));
      });
  auto rpc_client =
      *rpc::Client::CreateReconnecting(client.env(), client.client_factory(), {kServerAddress}, {});
  auto reply = rpc_client->Call("whoami", "", world_->Now() + absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "served");
  EXPECT_EQ(peer, "client-1");
  // A side without a context refuses rather than going out in plaintext.
  EXPECT_EQ(client.server_factory().Listen(Address::HostName("client", kPort)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server.client_factory().ConnectBlocking({kServerAddress}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  rpc_client->Close();
  rpc_server->Close();
  listener->Close();
}

TEST_F(TlsSimTest, ATlsHostChecksItsContexts) {
  sim::SimHost host(*world_, client_);
  auto server_context = MakeContext(Role::kServer, ServerOptions(*pki_, random()));
  auto client_context = MakeContext(Role::kClient, ClientOptions(*pki_, random(), nullptr));
  EXPECT_EQ(TlsHost::Create(host, nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsHost::Create(host, server_context, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsHost::Create(host, nullptr, client_context).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(TlsHost::Create(host, client_context, server_context).ok());
}

// The whole exchange of a seed, as a hash of the world's trace.
std::string RunExchange(uint64_t seed) {
  sim::WorldOptions options;
  options.seed = seed;
  options.profile = sim::DrawNetworkProfile(seed);
  auto world = *sim::World::Create(options);
  auto client_host = *world->AddHost("client");
  auto server_host = *world->AddHost("server");
  Pki pki(world->Now(), &world->generator());
  TlsServerFactory servers(world->server_factory(server_host), world->env(server_host),
                           MakeContext(Role::kServer, ServerOptions(pki, &world->generator())));
  TlsClientFactory clients(
      world->client_factory(client_host), world->env(client_host),
      MakeContext(Role::kClient, ClientOptions(pki, &world->generator(), &pki.client)));
  auto listener = *servers.Listen(kServerAddress);
  auto c = *clients.ConnectBlocking({kServerAddress}, {});
  auto s = listener->Accept(world->Now() + absl::Seconds(5));
  NETLAYER_ASSERT(s != nullptr, "accepted");
  auto rec = std::make_shared<Recorder>();
  s->SetHandler(rec);
  (void)c->Write(std::string(100000, 'd'));
  c->Close();
  world->RunUntil([&] { return rec->CloseCount() == 1; }, world->Now() + absl::Seconds(30));
  NETLAYER_ASSERT(rec->Received().size() == 100000, "all data arrived");
  return world->trace().HashHex();
}

TEST(TlsDeterminism, SameSeedSameTraceHash) {
  for (uint64_t seed : {1, 2, 3}) {
    EXPECT_EQ(RunExchange(seed), RunExchange(seed)) << "seed " << seed;
  }
  EXPECT_NE(RunExchange(1), RunExchange(2));
}

// A rejected certificate is permanent: a reconnecting rpc client makes one attempt, ends, and
// names the reason once; with retry_permanent_failures it keeps trying on its schedule.
TEST_F(TlsSimTest, RpcClientStopsAtARejectedCertificateUnlessToldToRetry) {
  TlsServerFactory servers(world_->server_factory(server_), world_->env(server_),
                           MakeContext(Role::kServer, ServerOptions(*pki_, random())));
  auto rpc_server = rpc::Server::Create(world_->env(server_));
  int accepted = 0;
  auto listener = *servers.Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
    ++accepted;
    rpc_server->Serve(std::move(c));
  });
  for (const bool retry : {false, true}) {
    // No client certificate: the server requires one.
    TlsClientFactory clients(world_->client_factory(client_), world_->env(client_),
                             MakeContext(Role::kClient, ClientOptions(*pki_, random(), nullptr)));
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Milliseconds(500);
    rpc::ClientOptions options;
    options.retry_permanent_failures = retry;
    auto rpc_client = *rpc::Client::CreateReconnecting(world_->env(client_), clients,
                                                       {kServerAddress}, connect, options);
    EXPECT_FALSE(rpc_client->WaitReady(world_->Now() + absl::Seconds(5)));
    const absl::Status why = rpc_client->last_error();
    const std::string text(why.message());
    EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(text, ::testing::HasSubstr("tls no-peer-certificate")) << text;
    if (!retry) {
      EXPECT_THAT(text, ::testing::HasSubstr("rpc client gave up connecting: server:8100: protocol "
                                             "error: tls no-peer-certificate"));
      EXPECT_THAT(text, ::testing::HasSubstr("(a permanent failure: not retried; "
                                             "ClientOptions::retry_permanent_failures)"));
      EXPECT_EQ(text.find("no-peer-certificate"), text.rfind("no-peer-certificate")) << text;
      EXPECT_EQ(rpc_client->stats().connect_failures, 0u);
      auto call = rpc_client->Call("x", "", world_->Now() + absl::Seconds(1));
      EXPECT_EQ(call.status(), why);
    } else {
      EXPECT_GE(rpc_client->stats().connect_failures, 3u);
    }
    rpc_client->Close();
  }
  EXPECT_GE(accepted, 0);
  rpc_server->Close();
  listener->Close();
}

// The verified client identity reaches rpc handlers (Request, Session) and the session hooks;
// a handler authorizes per identity. A plaintext session has none.
TEST_F(TlsSimTest, RpcHandlersSeeTheClientsVerifiedIdentity) {
  TlsServerFactory servers(world_->server_factory(server_), world_->env(server_),
                           MakeContext(Role::kServer, ServerOptions(*pki_, random())));
  std::vector<std::string> ready_names;
  rpc::ServerOptions options;
  options.on_session_ready = [&](rpc::Session& s) {
    ready_names.push_back(s.peer_identity() ? s.peer_identity()->common_name : "none");
  };
  auto rpc_server = rpc::Server::Create(world_->env(server_), options);
  // Per-identity authorization in a handler (docs/TLS.md).
  rpc_server->Register("secret", [](const rpc::Request& request, rpc::Responder responder) {
    const std::optional<PeerIdentity>& who = request.peer_identity();
    if (!who || !who->verified || who->common_name != "client-1") {
      (void)responder.Fail(absl::PermissionDeniedError(
          absl::StrCat("not for ", who ? who->subject : "an anonymous client")));
      return;
    }
    (void)responder.Reply(absl::StrCat(who->subject, " ", absl::StrJoin(who->dns_names, ",")));
  });
  auto listener = *servers.Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
    rpc_server->Serve(std::move(c));
  });
  for (const TestCertificate* cert : {&pki_->client, &pki_->wrong_name}) {
    TlsClientFactory clients(world_->client_factory(client_), world_->env(client_),
                             MakeContext(Role::kClient, ClientOptions(*pki_, random(), cert)));
    auto rpc_client =
        *rpc::Client::CreateReconnecting(world_->env(client_), clients, {kServerAddress}, {});
    auto reply = rpc_client->Call("secret", "", world_->Now() + absl::Seconds(10));
    if (cert == &pki_->client) {
      ASSERT_TRUE(reply.ok()) << reply.status();
      EXPECT_EQ(*reply, "CN=client-1,O=netlayer test client-1.example");
    } else {
      EXPECT_EQ(reply.status().code(), absl::StatusCode::kPermissionDenied) << reply.status();
      EXPECT_EQ(reply.status().message(), "not for CN=elsewhere,O=netlayer test");
    }
    rpc_client->Close();
  }
  EXPECT_EQ(ready_names, (std::vector<std::string>{"client-1", "elsewhere"}));
  // Plaintext: no identity.
  auto plain_listener =
      *world_->server_factory(server_).Listen(Address::HostName("server", kPort + 1),
                                              [&](std::shared_ptr<Connection> c) {
                                                EXPECT_FALSE(c->peer_identity().has_value());
                                                rpc_server->Serve(std::move(c));
                                              });
  auto plain = *rpc::Client::CreateReconnecting(world_->env(client_), world_->client_factory(client_),
                                                {Address::HostName("server", kPort + 1)}, {});
  auto refused = plain->Call("secret", "", world_->Now() + absl::Seconds(10));
  EXPECT_EQ(refused.status().message(), "not for an anonymous client") << refused.status();
  EXPECT_EQ(ready_names.back(), "none");
  plain->Close();
  rpc_server->Close();
  listener->Close();
  plain_listener->Close();
}

}  // namespace
}  // namespace netlayer::tls::testing
