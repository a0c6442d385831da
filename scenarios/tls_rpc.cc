// tls-rpc: an rpc server that requires client certificates (TLS 1.3, mutual authentication)
// under the seed's faults (partitions, clogs, resets, server crash and restart). Two clients
// with good certificates make calls through a reconnecting rpc client given a TlsClientFactory;
// three clients with bad certificates (none, one from another CA, an expired one) try a call
// every 300 ms on a fresh connection. Every certificate, key and TLS random byte comes from the
// world's generator, and certificates are checked against virtual time, so a seed replays.
//
// Safety, as each event happens:
//   - every connection the server's application sees carries a verified certificate of a good
//     client (the TLS listener hands over only handshaken connections);
//   - no call from an unauthenticated client is ever served: every call the server runs comes
//     over such a connection, and names the client of that certificate;
//   - every reply a good client gets answers its own call; a bad client's call never succeeds.
// Liveness, after faults stop: each good client completes new calls; each bad client is
// rejected again by TLS (its connection closes with the TLS reason of its certificate).
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "builtin.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/tls/connection.h"
#include "netlayer/tls/factory.h"
#include "netlayer/tls/test_pki.h"

namespace netlayer::scenarios {
namespace {

using sim::HostId;
using sim::ScenarioContext;

constexpr uint16_t kPort = 8443;
const char* const kGood[] = {"good1", "good2"};

tls::IssueOptions Named(std::string name) {
  tls::IssueOptions o;
  o.common_name = name;
  o.dns_names = {std::move(name)};
  return o;
}

class TlsRpc final : public sim::Scenario {
 public:
  absl::Duration LivenessBound() const override { return absl::Seconds(20); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    Generator* random = &world_->generator();
    const absl::Time now = world_->Now();
    auto ca = tls::TestPki::Create("tls-rpc-ca", now, random);
    auto other_ca = tls::TestPki::Create("impostor-ca", now, random);
    ctx.Check(ca.ok() && other_ca.ok(), "test CAs can be made", [] { return ""; });
    if (!ca.ok() || !other_ca.ok()) return;

    server_host_ = *world_->AddHost("server");
    world_->SetCrashable(server_host_, true);
    // Every host may stop for a while and has its own clock (offsets only run ahead, so
    // certificates issued at the start are valid on every host).
    world_->SetFreezable(server_host_, true);
    world_->SetClockSkewable(server_host_, true);
    tls::TlsOptions server_options;
    auto server_cert = ca->Issue(Named("server"));
    server_options.certificate_chain_pem = server_cert->certificate_pem;
    server_options.private_key_pem = server_cert->private_key_pem;
    server_options.ca_pem = ca->ca_certificate_pem();
    // The planted bug: a server that forgets to require client certificates.
    server_options.client_auth = ctx.planted(kTlsServerSkipsClientAuth)
                                     ? tls::ClientAuth::kNone
                                     : tls::ClientAuth::kRequired;
    server_options.random = random;
    server_context_ = *tls::TlsContext::Create(tls::Role::kServer, server_options);
    world_->SetRestartHook(server_host_, [this] { StartServer(); });
    StartServer();

    // Good clients, then the bad ones: no certificate, another CA's, an expired one.
    for (const char* name : kGood) {
      auto cert = ca->Issue(Named(name));
      AddClient(name, /*good=*/true, &*cert, ca->ca_certificate_pem(), "");
    }
    AddClient("nocert", false, nullptr, ca->ca_certificate_pem(), "no-peer-certificate");
    auto foreign = other_ca->Issue(Named("impostor"));
    AddClient("impostor", false, &*foreign, ca->ca_certificate_pem(), "unknown-ca");
    tls::IssueOptions expired_options = Named("expired");
    expired_options.not_before = now - absl::Hours(48);
    expired_options.not_after = now - absl::Hours(1);
    auto expired = ca->Issue(expired_options);
    AddClient("expired", false, &*expired, ca->ca_certificate_pem(), "expired");
    for (auto& c : clients_) StartClient(*c);
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& c : clients_) {
      Client* client = c.get();
      if (client->good) {
        const uint64_t at_heal = client->ok;
        ctx.Eventually(
            absl::StrCat(client->name, " completes calls again"),
            [client, at_heal] { return client->ok > at_heal + 5; },
            [client] {
              return absl::StrCat("ok=", client->ok,
                                  " last error: ", client->rpc->last_error().ToString());
            });
      } else {
        const uint64_t at_heal = client->rejections;
        ctx.Eventually(
            absl::StrCat(client->name, " is rejected by TLS again"),
            [client, at_heal] { return client->rejections > at_heal; },
            [client] { return absl::StrCat("last close: ", client->last_close); });
      }
    }
  }

  void Finish(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      world_->Note(c->host, absl::StrCat(c->name, ": ok=", c->ok, " failed=", c->failed,
                                         " tls rejections=", c->rejections));
    }
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->rpc) c->rpc->Close();
      if (c->attempt) c->attempt->Close();
    }
    if (listener_) listener_->Close();
    if (server_) server_->Close();
  }

 private:
  struct Client {
    std::string name;
    HostId host;
    bool good = false;
    std::string expected_error;  // bad clients: the TlsError their connections close with
    std::unique_ptr<tls::TlsClientFactory> factory;
    uint64_t next_call = 1;
    uint64_t ok = 0, failed = 0, rejections = 0;
    std::string last_close;
    std::shared_ptr<rpc::Client> attempt;  // bad clients: the current try
    std::shared_ptr<rpc::Client> rpc;      // good clients (last: destroyed first)
  };

  void AddClient(const char* name, bool good, const tls::TestCertificate* cert,
                 const std::string& ca_pem, const char* expected_error) {
    auto c = std::make_unique<Client>();
    c->name = name;
    c->good = good;
    c->expected_error = expected_error;
    c->host = *world_->AddHost(name);
    world_->SetFreezable(c->host, true);
    world_->SetClockSkewable(c->host, true);
    tls::TlsOptions o;
    if (cert != nullptr) {
      o.certificate_chain_pem = cert->certificate_pem;
      o.private_key_pem = cert->private_key_pem;
    }
    o.ca_pem = ca_pem;
    o.random = &world_->generator();
    c->factory = std::make_unique<tls::TlsClientFactory>(
        world_->client_factory(c->host), world_->env(c->host),
        *tls::TlsContext::Create(tls::Role::kClient, o));
    clients_.push_back(std::move(c));
  }

  void StartServer() {
    Env& env = world_->env(server_host_);
    server_ = rpc::Server::Create(env);
    authenticated_.clear();
    server_->Register("work", [this](const rpc::Request& request, rpc::Responder responder) {
      const std::string peer = request.session.peer_address().ToString();
      auto it = authenticated_.find(peer);
      ctx_->Check(it != authenticated_.end(), "no call from an unauthenticated client is served",
                  [&] { return absl::StrCat("a call from ", peer, " which never authenticated"); });
      if (it == authenticated_.end()) return;
      const std::string payload(request.payload);
      ctx_->Check(absl::StartsWith(payload, it->second + "#"),
                  "a call comes from the client its certificate names", [&] {
                    return absl::StrCat("connection of ", it->second, " sent '", payload, "'");
                  });
      (void)responder.Reply(payload);
    });
    tls_servers_ = std::make_unique<tls::TlsServerFactory>(world_->server_factory(server_host_),
                                                           env, server_context_);
    auto listener = tls_servers_->Listen(
        Address::HostName("server", kPort), [this](std::shared_ptr<Connection> c) {
          auto& tls = dynamic_cast<tls::TlsConnection&>(*c);
          std::optional<tls::PeerIdentity> id = tls.peer_identity();
          const bool good =
              id && id->verified && (id->common_name == kGood[0] || id->common_name == kGood[1]);
          ctx_->Check(good, "the server sees only verified good clients", [&] {
            return absl::StrCat("accepted ", c->peer_address().ToString(), " with ",
                                id ? id->subject : std::string("no certificate"));
          });
          if (!good) return;
          authenticated_[c->peer_address().ToString()] = id->common_name;
          server_->Serve(std::move(c));
        });
    ctx_->Check(listener.ok(), "the server can listen after a (re)start",
                [&] { return listener.status().ToString(); });
    if (listener.ok()) listener_ = *listener;
  }

  void StartClient(Client& c) {
    if (!c.good) {
      Try(c);
      return;
    }
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Seconds(1);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(1);
    rpc::ClientOptions options;
    options.handshake_timeout = absl::Seconds(5);
    auto client = rpc::Client::CreateReconnecting(
        world_->env(c.host), *c.factory, {Address::HostName("server", kPort)}, connect, options);
    ctx_->Check(client.ok(), "the client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    c.rpc = *client;
    for (int i = 0; i < 3; ++i) Call(c);
  }

  void Call(Client& c) {
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(c.host);
    const std::string payload = absl::StrCat(c.name, "#", c.next_call++);
    c.rpc->CallAsync("work", payload, env.Now() + absl::Seconds(2),
                     [this, &c, payload](rpc::CallResult r) {
                       ctx_->Check(!r.ok() || *r == payload, "each reply answers its own call",
                                   [&] { return absl::StrCat("got ", *r, " for ", payload); });
                       if (r.ok()) {
                         ++c.ok;
                       } else {
                         ++c.failed;
                       }
                       Env& env = world_->env(c.host);
                       env.RunAt(env.Now() + absl::Milliseconds(10), [this, &c] { Call(c); });
                     });
  }

  // A bad client: a fresh connection and one call every 300 ms; the call must never succeed,
  // and a connection that TLS rejects must say why.
  void Try(Client& c) {
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(c.host);
    env.RunAt(env.Now() + absl::Milliseconds(300), [this, &c] { Try(c); });
    if (c.attempt != nullptr) return;  // the previous try is still running
    struct Handler : ConnectHandler {
      Handler(TlsRpc* s, Client* c) : scenario(s), client(c) {}
      void Connected(std::shared_ptr<Connection> connection) override {
        scenario->OnBadConnected(*client, std::move(connection));
      }
      void FailedConnection(const absl::Status&) override {}
      TlsRpc* scenario;
      Client* client;
    };
    ConnectOptions once;
    once.max_attempts = 1;
    once.attempt_timeout = absl::Seconds(1);
    (void)c.factory->Connect({Address::HostName("server", kPort)}, once,
                             std::make_shared<Handler>(this, &c));
  }

  void OnBadConnected(Client& c, std::shared_ptr<Connection> connection) {
    if (stopping_ || c.attempt != nullptr) {
      connection->Close();
      return;
    }
    Env& env = world_->env(c.host);
    rpc::ClientOptions options;
    options.handshake_timeout = absl::Seconds(3);
    options.on_disconnected = [this, &c](const CloseReason& reason) {
      c.last_close = reason.ToString();
      if (absl::StrContains(reason.detail(), absl::StrCat("tls ", c.expected_error, ":"))) {
        ++c.rejections;
      }
    };
    c.attempt = rpc::Client::Create(env, std::move(connection), options);
    const std::string payload = absl::StrCat(c.name, "#", c.next_call++);
    c.attempt->CallAsync("work", payload, env.Now() + absl::Seconds(2),
                         [this, &c, payload](rpc::CallResult r) {
                           ctx_->Check(!r.ok(), "no call from an unauthenticated client succeeds",
                                       [&] { return absl::StrCat(payload, " got ", *r); });
                           ++c.failed;
                           // Closed from a timer: not from inside the client's own callback.
                           Env& env = world_->env(c.host);
                           env.RunAt(env.Now(), [&c] {
                             if (c.attempt) c.attempt->Close();
                             c.attempt.reset();
                           });
                         });
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  HostId server_host_;
  std::shared_ptr<tls::TlsContext> server_context_;
  std::unique_ptr<tls::TlsServerFactory> tls_servers_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::map<std::string, std::string> authenticated_;  // peer address -> certificate's name
  std::vector<std::unique_ptr<Client>> clients_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeTlsRpc() { return std::make_unique<TlsRpc>(); }

}  // namespace netlayer::scenarios
