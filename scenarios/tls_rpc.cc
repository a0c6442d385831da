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
// The adapter's promises (docs/TLS.md), also as each event happens:
//   - identities, both ways: every session a good client gets carries the server's verified
//     certificate (CN "server"), ALPN netlayer-rpc, TLS 1.3, no error;
//   - every way a stream ends is reported as docs/TLS.md §3-§4 says. The server's application
//     ends streams on purpose, every second or so during the fault phase, each of three ways: a
//     clean TLS close (Session::Close: close_notify), a close of the transport under TLS (a FIN
//     without close_notify, as from a process that died without closing: a truncation) and an
//     abort of the transport (a reset); a crash of the server host ends its streams without TLS
//     too. For the stream a good client was using when it reports the loss: a clean close is
//     reported as kPeerClosed "tls close_notify" (unless the transport was reset first), a
//     stream ended without close_notify never as a clean close but as "tls truncated", a reset
//     as kReset and only when the transport was reset;
//   - a bad client's rejection names its own certificate's problem (never another TLS error).
// Liveness, after faults stop: each good client completes new calls; each bad client is
// rejected again by TLS (its connection closes with the TLS reason of its certificate).
#include <functional>
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

// A factory that reports every connection it makes (then hands it on unchanged).
class RecordingClientFactory final : public ClientConnectionFactory {
 public:
  using Observer = std::function<void(const std::shared_ptr<Connection>&)>;
  RecordingClientFactory(ClientConnectionFactory& inner, Observer observer)
      : inner_(inner), observer_(std::move(observer)) {}
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override {
    return inner_.Connect(std::move(addresses), options,
                          std::make_shared<Handler>(observer_, std::move(handler)));
  }
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override {
    auto c = inner_.ConnectBlocking(std::move(addresses), options);
    if (c.ok()) observer_(*c);
    return c;
  }

 private:
  struct Handler final : ConnectHandler {
    Handler(Observer o, std::shared_ptr<ConnectHandler> h)
        : observer(std::move(o)), inner(std::move(h)) {}
    void Connected(std::shared_ptr<Connection> c) override {
      observer(c);
      inner->Connected(std::move(c));
    }
    void FailedConnection(const absl::Status& s) override { inner->FailedConnection(s); }
    Observer observer;
    std::shared_ptr<ConnectHandler> inner;
  };
  ClientConnectionFactory& inner_;
  Observer observer_;
};

// A server factory that reports every connection its callback listeners accept.
class RecordingServerFactory final : public ServerConnectionFactory {
 public:
  using Observer = std::function<void(const std::shared_ptr<Connection>&)>;
  RecordingServerFactory(ServerConnectionFactory& inner, Observer observer)
      : inner_(inner), observer_(std::move(observer)) {}
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override {
    return inner_.Listen(address);
  }
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override {
    return inner_.Listen(address, [observer = observer_, on_accept = std::move(on_accept)](
                                      std::shared_ptr<Connection> c) {
      observer(c);
      on_accept(std::move(c));
    });
  }

 private:
  ServerConnectionFactory& inner_;
  Observer observer_;
};

tls::IssueOptions Named(std::string name) {
  tls::IssueOptions o;
  o.common_name = name;
  o.dns_names = {std::move(name)};
  return o;
}

class TlsRpc final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kTlsServerSkipsClientAuth, "the server does not ask for client certificates"}};
  }

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
    recording_servers_ = std::make_unique<RecordingServerFactory>(
        world_->server_factory(server_host_), [this](const std::shared_ptr<Connection>& raw) {
          auto id = world_->ConnectionId(*raw);
          if (!id.ok()) return;
          server_transports_[raw->peer_address().ToString()] = {*id, raw};
          streams_[*id];  // known, open at the server
        });
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
    ctx.ObserveTrace([this](const sim::TraceEvent& e) { OnTrace(e); });
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    const uint64_t failures_at_heal = server_handshake_failures_;
    ctx.Eventually(
        "the server reports the bad clients' failed handshakes again",
        [this, failures_at_heal] { return server_handshake_failures_ > failures_at_heal; },
        [this] { return absl::StrCat(server_handshake_failures_, " in all"); });
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
    world_->Note(server_host_,
                 absl::StrCat("server: failed handshakes=", server_handshake_failures_));
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
    // Good clients: the connection in use (from on_ready to on_disconnected) and its transport.
    bool ready = false;
    uint64_t stream = 0;       // the transport's stream id
    uint64_t last_stream = 0;  // of the last transport connected
    std::weak_ptr<tls::TlsConnection> tls, last_tls;
    std::unique_ptr<RecordingClientFactory> transports;
    std::unique_ptr<RecordingClientFactory> sessions;
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
    Client* client = c.get();
    c->transports = std::make_unique<RecordingClientFactory>(
        world_->client_factory(c->host), [this, client](const std::shared_ptr<Connection>& raw) {
          auto id = world_->ConnectionId(*raw);
          if (id.ok()) client->last_stream = *id;
        });
    c->factory = std::make_unique<tls::TlsClientFactory>(
        *c->transports, world_->env(c->host), *tls::TlsContext::Create(tls::Role::kClient, o));
    c->sessions = std::make_unique<RecordingClientFactory>(
        *c->factory, [client](const std::shared_ptr<Connection>& tls) {
          client->last_tls = std::dynamic_pointer_cast<tls::TlsConnection>(tls);
        });
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
    tls_servers_ =
        std::make_unique<tls::TlsServerFactory>(*recording_servers_, env, server_context_);
    tls_servers_->set_on_handshake_failed([this](const Address& peer, const absl::Status& failure) {
      OnServerHandshakeFailed(peer, failure);
    });
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
    ScheduleEnding(env, ++incarnation_);
  }

  // ---- The ways a stream ends (docs/TLS.md) -------------------------------------------------

  enum class ServerEnd { kOpen, kClean, kWithoutTls, kAborted };
  struct Stream {
    ServerEnd server_end = ServerEnd::kOpen;  // the first way the server's end ended
    bool reset = false;                       // the transport was reset (either end)
  };

  static const char* EndName(ServerEnd end) {
    switch (end) {
      case ServerEnd::kOpen:
        return "open";
      case ServerEnd::kClean:
        return "closed with close_notify";
      case ServerEnd::kWithoutTls:
        return "closed without close_notify";
      case ServerEnd::kAborted:
        return "aborted";
    }
    return "?";
  }

  void EndServerSide(uint64_t stream, ServerEnd how) {
    Stream& s = streams_[stream];
    if (s.server_end == ServerEnd::kOpen) s.server_end = how;
  }

  // During the fault phase, every 0.3..1.5 s the server ends one ready session: cleanly, under
  // TLS (a FIN without close_notify) or with a reset of the transport.
  void ScheduleEnding(Env& env, uint64_t incarnation) {
    env.RunAt(env.Now() + absl::Milliseconds(UniformInt(world_->generator(), 300, 1500)),
              [this, &env, incarnation] {
                if (incarnation != incarnation_ || stopping_ || world_->faults_stopped()) return;
                ScheduleEnding(env, incarnation);
                std::vector<std::shared_ptr<rpc::Session>> ready;
                for (auto& session : server_->Sessions()) {
                  if (session->ready()) ready.push_back(session);
                }
                if (ready.empty()) return;
                auto& session = ready[UniformInt(world_->generator(), 0, ready.size() - 1)];
                auto it = server_transports_.find(session->peer_address().ToString());
                if (it == server_transports_.end()) return;
                auto raw = it->second.second.lock();
                const uint64_t stream = it->second.first;
                switch (UniformInt(world_->generator(), 0, 2)) {
                  case 0:
                    EndServerSide(stream, ServerEnd::kClean);
                    session->Close();
                    break;
                  case 1:
                    if (raw == nullptr) return;
                    EndServerSide(stream, ServerEnd::kWithoutTls);
                    raw->Close();  // what is queued, then a FIN: no close_notify
                    break;
                  default:
                    if (raw == nullptr) return;
                    EndServerSide(stream, ServerEnd::kAborted);
                    raw->Abort();
                    break;
                }
              });
  }

  void OnTrace(const sim::TraceEvent& e) {
    if (e.kind == sim::TraceKind::kReset && e.conn != 0) {
      auto it = streams_.find(e.conn);
      if (it != streams_.end()) it->second.reset = true;
    }
    // The server's process ends: its streams end without TLS (a FIN or a reset from its
    // kernel, or nothing at all if the machine lost power).
    if (e.kind == sim::TraceKind::kHost && e.host == "server" &&
        (absl::StrContains(e.detail, "crash") || absl::StrContains(e.detail, "power"))) {
      for (auto& [id, raw] : server_transports_) EndServerSide(raw.first, ServerEnd::kWithoutTls);
      server_transports_.clear();
    }
  }

  // Every handshake failure the server sees carries its reason (docs/TLS.md §4): a TLS error
  // by name, or the interrupted stream's own; a bad client's is its certificate's problem.
  void OnServerHandshakeFailed(const Address& peer, const absl::Status& failure) {
    ++server_handshake_failures_;
    const std::string message(failure.message());
    const Client* from = nullptr;
    for (auto& c : clients_) {
      if (world_->HostName(c->host) == peer.host()) from = c.get();
    }
    bool named = absl::StrContains(message, "tls handshake interrupted: ");
    for (int e = static_cast<int>(tls::TlsError::kUnknownCa);
         e <= static_cast<int>(tls::TlsError::kProtocolError); ++e) {
      const char* name = tls::TlsErrorName(static_cast<tls::TlsError>(e));
      named = named || absl::StrContains(message, absl::StrCat("tls ", name, ": "));
    }
    ctx_->Check(failure.code() == absl::StatusCode::kUnavailable && named,
                "every handshake failure carries its reason", [&] {
                  return absl::StrCat("the handshake with ", peer.ToString(), " failed with ",
                                      failure.ToString());
                });
    if (from == nullptr || from->good) return;
    bool verdict = false;
    for (const char* v : {"no-peer-certificate", "unknown-ca", "expired", "bad-certificate"}) {
      verdict = verdict || absl::StrContains(message, absl::StrCat("tls ", v, ": "));
    }
    ctx_->Check(
        !verdict || absl::StrContains(message, absl::StrCat("tls ", from->expected_error, ": ")),
        "the server rejects a bad client for its own certificate's problem", [&] {
          return absl::StrCat(from->name, " (", from->expected_error, ") failed with ",
                              failure.ToString());
        });
  }

  void OnGoodReady(Client& c) {
    c.ready = true;
    c.stream = c.last_stream;
    c.tls = c.last_tls;
    auto tls = c.tls.lock();
    ctx_->Check(tls != nullptr && tls->handshake_complete(),
                "a good client's rpc runs over a completed TLS handshake", [&] {
                  return absl::StrCat(c.name, ": no TLS connection, or its handshake is on");
                });
    if (tls == nullptr) return;
    const std::optional<tls::PeerIdentity> id = tls->peer_identity();
    ctx_->Check(id && id->verified && id->common_name == "server" &&
                    tls->alpn_protocol() == "netlayer-rpc" &&
                    tls->protocol_version() == "TLSv1.3" && tls->error() == tls::TlsError::kNone,
                "a good client talks only to the verified server", [&] {
                  return absl::StrCat(
                      c.name, " connected to ", id ? id->subject : std::string("no certificate"),
                      id && !id->verified ? " (not verified)" : "", " alpn '", tls->alpn_protocol(),
                      "' ", tls->protocol_version(), " error ", tls::TlsErrorName(tls->error()));
                });
  }

  void OnGoodClosed(Client& c, const CloseReason& reason) {
    if (!c.ready) return;
    c.ready = false;
    // The rpc layer's own verdicts (heartbeat, handshake deadline) are not TLS's to report.
    if (reason.kind() == CloseReason::Kind::kTimeout) return;
    const Stream& s = streams_[c.stream];
    const bool close_notify =
        reason.kind() == CloseReason::Kind::kPeerClosed && reason.detail() == "tls close_notify";
    const bool truncated = reason.kind() == CloseReason::Kind::kProtocolError &&
                           absl::StartsWith(reason.detail(), "tls truncated:");
    const bool reset = reason.kind() == CloseReason::Kind::kReset;
    auto detail = [&] {
      return absl::StrCat(c.name, " conn#", c.stream, " reported ", reason.ToString(),
                          "; the server's end was ", EndName(s.server_end),
                          s.reset ? ", the transport was reset" : "");
    };
    ctx_->Check(!reset || s.reset, "a TLS stream reports a reset only when its transport was reset",
                detail);
    ctx_->Check(
        !close_notify || s.server_end == ServerEnd::kOpen || s.server_end == ServerEnd::kClean,
        "a stream ended without close_notify is never reported as a clean close", detail);
    if (s.reset) {
      // A reset of a stream the server had not ended otherwise is what the client sees. (After
      // a close by the server, what was still in the network is lost: either report may come.)
      if (s.server_end == ServerEnd::kOpen || s.server_end == ServerEnd::kAborted) {
        ctx_->Check(reset, "a reset of the transport is reported as a reset", detail);
      }
      return;
    }
    switch (s.server_end) {
      case ServerEnd::kClean:
        ctx_->Check(close_notify, "a clean TLS close is reported as close_notify", detail);
        break;
      case ServerEnd::kWithoutTls:
        ctx_->Check(truncated, "a TLS stream that ends without close_notify is reported truncated",
                    detail);
        break;
      case ServerEnd::kAborted:
        ctx_->Check(false, "an aborted transport is seen as a reset", detail);
        break;
      case ServerEnd::kOpen:
        break;
    }
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
    options.on_ready = [this, &c](uint16_t) { OnGoodReady(c); };
    options.on_disconnected = [this, &c](const CloseReason& reason) { OnGoodClosed(c, reason); };
    auto client = rpc::Client::CreateReconnecting(
        world_->env(c.host), *c.sessions, {Address::HostName("server", kPort)}, connect, options);
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
      // A certificate verdict names this certificate's problem, never another one.
      for (const char* verdict :
           {"unknown-ca", "bad-name", "expired", "no-peer-certificate", "bad-certificate"}) {
        if (!absl::StrContains(reason.detail(), absl::StrCat("tls ", verdict, ":"))) continue;
        ctx_->Check(c.expected_error == verdict,
                    "a rejected client is told its own certificate's problem", [&] {
                      return absl::StrCat(c.name, " (", c.expected_error, ") closed with ",
                                          reason.ToString());
                    });
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
  std::unique_ptr<RecordingServerFactory> recording_servers_;
  std::unique_ptr<tls::TlsServerFactory> tls_servers_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::map<std::string, std::string> authenticated_;  // peer address -> certificate's name
  // The server's transports by peer address (stream id, connection), this incarnation's.
  std::map<std::string, std::pair<uint64_t, std::weak_ptr<Connection>>> server_transports_;
  std::map<uint64_t, Stream> streams_;  // by stream id
  uint64_t incarnation_ = 0;
  uint64_t server_handshake_failures_ = 0;
  std::vector<std::unique_ptr<Client>> clients_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeTlsRpc() { return std::make_unique<TlsRpc>(); }

}  // namespace netlayer::scenarios
