// netlayer-objstore: the object store's server and client commands, on posix.
//
//   netlayer-objstore serve --listen 127.0.0.1:8100 [limits and timeouts]
//   netlayer-objstore get   --server 127.0.0.1:8100 OID
//   netlayer-objstore put   --server 127.0.0.1:8100 OID DATA
//   netlayer-objstore watch --server 127.0.0.1:8100 [--count N]
//   netlayer-objstore stats --server 127.0.0.1:8100
//
// Every command takes --tls-cert FILE --tls-key FILE --tls-ca FILE (docs/OBJSTORE.md §1): the
// server then speaks only TLS and, with --tls-ca, requires client certificates from that CA; a
// client with --tls-ca verifies the server and presents its own certificate if given one.
//
// Exit codes: 0 success; 1 failure (network, server); 2 usage; 3 no such object; 4 conflict.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "netlayer/core/log.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#include "netlayer/posix/runtime.h"
#include "netlayer/tls/host.h"
#include "spdlog/spdlog.h"

namespace {

using namespace netlayer;  // NOLINT: a program's main file

enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kNotFound = 3, kConflict = 4 };

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "netlayer-objstore: %s\n", status.ToString().c_str());
  if (status.code() == absl::StatusCode::kNotFound) return kNotFound;
  if (status.code() == absl::StatusCode::kAborted) return kConflict;
  if (status.code() == absl::StatusCode::kInvalidArgument) return kUsage;
  return kFailed;
}

// --tls-cert, --tls-key, --tls-ca: none given means plaintext.
struct TlsFlags {
  std::string cert;
  std::string key;
  std::string ca;
  std::string server_name;  // client: the name to verify; default the host of --server
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

// The Host the application runs on: the posix runtime itself, or a TlsHost over it when any
// --tls-* flag is given (server: certificate and key required, client certificates required
// when --tls-ca is given; client: --tls-ca required to verify the server).
class AppHost {
 public:
  absl::Status Init(const TlsFlags& flags, tls::Role role) {
    if (!flags.enabled()) return absl::OkStatus();
    if (flags.cert.empty() != flags.key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    tls::TlsOptions options;
    options.certificate_chain_file = flags.cert;
    options.private_key_file = flags.key;
    options.ca_file = flags.ca;
    std::shared_ptr<tls::TlsContext> client, server;
    if (role == tls::Role::kServer) {
      if (flags.cert.empty()) {
        return absl::InvalidArgumentError("serve with TLS needs --tls-cert and --tls-key");
      }
      if (!flags.ca.empty()) options.client_auth = tls::ClientAuth::kRequired;
      auto context = tls::TlsContext::Create(role, std::move(options));
      if (!context.ok()) return context.status();
      server = std::move(*context);
    } else {
      if (flags.ca.empty()) {
        return absl::InvalidArgumentError(
            "a TLS client needs --tls-ca, the CA bundle to verify the server with");
      }
      options.server_name = flags.server_name;
      auto context = tls::TlsContext::Create(role, std::move(options));
      if (!context.ok()) return context.status();
      client = std::move(*context);
    }
    auto host = tls::TlsHost::Create(runtime_, std::move(client), std::move(server));
    if (!host.ok()) return host.status();
    tls_ = std::move(*host);
    return absl::OkStatus();
  }
  Host& host() { return tls_ ? static_cast<Host&>(*tls_) : runtime_; }

 private:
  posix::Runtime runtime_;  // outlives the TlsHost (declared first)
  std::unique_ptr<tls::TlsHost> tls_;
};

void AddTlsFlags(CLI::App* command, TlsFlags& flags, bool client) {
  command->add_option("--tls-cert", flags.cert, "TLS: our certificate chain (PEM, leaf first)");
  command->add_option("--tls-key", flags.key, "TLS: our private key (PEM)");
  command->add_option("--tls-ca", flags.ca,
                      client ? "TLS: the CA bundle (PEM) to verify the server with"
                             : "TLS: require client certificates from this CA bundle (PEM)");
  if (client) {
    command->add_option("--tls-server-name", flags.server_name,
                        "TLS: the name the server's certificate must carry (default: the host "
                        "of --server)");
  }
}

struct ServeFlags {
  std::string listen = "127.0.0.1:8100";
  size_t max_sessions = 1024;
  double idle_timeout_s = 60;
  double handshake_timeout_s = 10;
  size_t max_inflight = 4096;
  size_t max_log = 1000;
  size_t max_objects = size_t{1} << 20;
  size_t max_object_bytes = size_t{1} << 20;
  double shutdown_grace_s = 10;
  TlsFlags tls;
};

int Serve(const ServeFlags& f) {
  // The stop and stats signals are taken by sigwait below, in main's thread; blocked before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto address = Address::Parse(f.listen);
  if (!address.ok()) return Fail(address.status());
  AppHost app;
  if (absl::Status s = app.Init(f.tls, tls::Role::kServer); !s.ok()) return Fail(s);
  objstore::ServerOptions options;
  options.storage.epoch = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  options.storage.max_log = f.max_log;
  options.storage.max_objects = f.max_objects;
  options.storage.max_object_bytes = f.max_object_bytes;
  options.rpc.max_sessions = f.max_sessions;
  options.rpc.idle_timeout = absl::Seconds(f.idle_timeout_s);
  options.rpc.handshake_timeout = absl::Seconds(f.handshake_timeout_s);
  options.rpc.max_inflight_calls = f.max_inflight;
  options.on_commit = [](uint64_t, uint64_t tid, const std::vector<objstore::Store>& stores) {
    spdlog::debug("commit tid={} stores={}", tid, stores.size());
  };
  auto server = objstore::ObjectServer::Start(app.host(), *address, std::move(options));
  if (!server.ok()) return Fail(server.status());
  spdlog::info("objstore serving on {} (epoch {}{})", (*server)->address().ToString(),
               (*server)->epoch(),
               !f.tls.enabled()   ? ""
               : f.tls.ca.empty() ? ", TLS"
                                  : ", TLS with client certificates");
  std::printf("listening on %s\n", (*server)->address().ToString().c_str());
  std::fflush(stdout);

  for (;;) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal == SIGUSR1) {
      spdlog::info("stats {}", (*server)->stats().ToJson());
      continue;
    }
    break;
  }
  spdlog::info("stopping: answering calls in flight (grace {} s)", f.shutdown_grace_s);
  const absl::Status done = (*server)->Shutdown(absl::Now() + absl::Seconds(f.shutdown_grace_s));
  spdlog::info("stopped: {} final stats {}", done.ToString(), (*server)->stats().ToJson());
  std::printf("stopped: %s\n", done.ToString().c_str());
  return done.ok() ? kOk : kFailed;
}

struct ClientFlags {
  std::string server = "127.0.0.1:8100";
  double timeout_s = 10;
  std::string oid;
  std::string data;
  int count = 0;
  TlsFlags tls;
};

// Why the client's connections were lost, for the error a command ends with. A TLS rejection
// (the server refused our certificate, or we refused the server's) will not go away by retrying:
// it closes the client at once, so the command fails now with the reason instead of at its
// timeout.
struct Disconnects {
  std::mutex mu;
  std::optional<CloseReason> last;
  bool tls_failed = false;
  std::weak_ptr<objstore::Client> client;

  static bool IsTls(const CloseReason& reason) {
    return reason.kind() == CloseReason::Kind::kProtocolError &&
           absl::StartsWith(reason.detail(), "tls ");
  }
  void Record(const CloseReason& reason) {
    std::shared_ptr<objstore::Client> to_close;
    {
      std::lock_guard lock(mu);
      last = reason;
      if (IsTls(reason)) {
        tls_failed = true;
        to_close = client.lock();
      }
    }
    if (to_close) to_close->Close();  // wakes WaitSynced
  }
  // Set once the client exists; closes it at once if TLS already failed.
  void Attach(const std::shared_ptr<objstore::Client>& c) {
    bool failed;
    {
      std::lock_guard lock(mu);
      client = c;
      failed = tls_failed;
    }
    if (failed) c->Close();
  }
  // The error for a client that did not sync: the TLS failure, else the last loss if any.
  absl::Status Error(const std::string& server) {
    std::lock_guard lock(mu);
    if (tls_failed) {
      return absl::UnavailableError(
          absl::StrCat("TLS with the objstore server at ", server, " failed: ", last->detail()));
    }
    std::string why = last ? absl::StrCat(" (last connection: ", last->ToString(), ")") : "";
    return absl::UnavailableError(
        absl::StrCat("cannot reach the objstore server at ", server, why));
  }
};

absl::StatusOr<std::shared_ptr<objstore::Client>> Connect(Host& host, const ClientFlags& f) {
  auto address = Address::Parse(f.server);
  if (!address.ok()) return address.status();
  auto disconnects = std::make_shared<Disconnects>();
  objstore::ClientOptions options;
  options.connect.max_attempts = 3;
  options.on_disconnected = [disconnects](const CloseReason& r) { disconnects->Record(r); };
  auto client = objstore::Client::Create(host, {*address}, options);
  if (!client.ok()) return client.status();
  disconnects->Attach(*client);
  if (!(*client)->WaitSynced(absl::Now() + absl::Seconds(f.timeout_s))) {
    (*client)->Close();
    return disconnects->Error(f.server);
  }
  return client;
}

// A client command: the host (TLS or not), then the command itself.
template <typename Command>
int RunClient(const ClientFlags& f, Command command) {
  AppHost app;
  if (absl::Status s = app.Init(f.tls, tls::Role::kClient); !s.ok()) return Fail(s);
  return command(app.host());
}

int Get(const ClientFlags& f) {
  return RunClient(f, [&f](Host& host) {
    auto client = Connect(host, f);
    if (!client.ok()) return Fail(client.status());
    auto loaded = (*client)->Load(f.oid, absl::Now() + absl::Seconds(f.timeout_s));
    (*client)->Close();
    if (!loaded.ok()) return Fail(loaded.status());
    std::printf("%s\n", loaded->data.c_str());
    std::fprintf(stderr, "serial %llu\n", static_cast<unsigned long long>(loaded->serial));
    return static_cast<int>(kOk);
  });
}

int Put(const ClientFlags& f) {
  return RunClient(f, [&f](Host& host) {
    auto client = Connect(host, f);
    if (!client.ok()) return Fail(client.status());
    const absl::Time deadline = absl::Now() + absl::Seconds(f.timeout_s);
    uint64_t serial = 0;
    auto loaded = (*client)->Load(f.oid, deadline);
    if (loaded.ok()) {
      serial = loaded->serial;
    } else if (loaded.status().code() != absl::StatusCode::kNotFound) {
      return Fail(loaded.status());
    }
    auto tid = (*client)->Commit({{f.oid, serial, f.data}}, deadline);
    (*client)->Close();
    if (!tid.ok()) return Fail(tid.status());
    std::printf("committed tid %llu\n", static_cast<unsigned long long>(*tid));
    return static_cast<int>(kOk);
  });
}

int Watch(const ClientFlags& f) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return RunClient(f, [&f, &signals](Host& host) {
    auto address = Address::Parse(f.server);
    if (!address.ok()) return Fail(address.status());
    auto seen = std::make_shared<std::atomic<int>>(0);
    auto disconnects = std::make_shared<Disconnects>();
    objstore::ClientOptions options;
    options.on_invalidation = [seen, count = f.count](const objstore::Invalidation& inv) {
      std::printf("invalidate epoch %llu tid %llu: %s\n",
                  static_cast<unsigned long long>(inv.epoch),
                  static_cast<unsigned long long>(inv.tid), absl::StrJoin(inv.oids, " ").c_str());
      std::fflush(stdout);
      if (++*seen == count) kill(getpid(), SIGTERM);  // --count reached: stop like a signal
    };
    options.on_synced = [](uint64_t epoch, uint64_t tid) {
      std::printf("watching epoch %llu from tid %llu\n", static_cast<unsigned long long>(epoch),
                  static_cast<unsigned long long>(tid));
      std::fflush(stdout);
    };
    // A TLS rejection ends the watch with its reason; other losses reconnect.
    options.on_disconnected = [disconnects](const CloseReason& r) {
      disconnects->Record(r);
      if (Disconnects::IsTls(r)) kill(getpid(), SIGTERM);
    };
    auto client = objstore::Client::Create(host, {*address}, options);
    if (!client.ok()) return Fail(client.status());
    disconnects->Attach(*client);
    int signal = 0;
    sigwait(&signals, &signal);
    (*client)->Close();
    {
      std::lock_guard lock(disconnects->mu);
      if (!disconnects->tls_failed) return static_cast<int>(kOk);
    }
    return Fail(disconnects->Error(f.server));
  });
}

int Stats(const ClientFlags& f) {
  return RunClient(f, [&f](Host& host) {
    auto client = Connect(host, f);
    if (!client.ok()) return Fail(client.status());
    auto json = (*client)->ServerStats(absl::Now() + absl::Seconds(f.timeout_s));
    (*client)->Close();
    if (!json.ok()) return Fail(json.status());
    std::printf("%s\n", json->c_str());
    return static_cast<int>(kOk);
  });
}

}  // namespace

int main(int argc, char** argv) {
  // spdlog's default logger is made on first use, inside libspdlog. Making it here, before any
  // thread starts, gives every later thread a happens-before edge to it (a first use from main
  // while session threads already log would be ordered only by the static guard's inline fast
  // path, which ThreadSanitizer cannot see into the uninstrumented library).
  spdlog::set_level(spdlog::level::info);
  if (const char* level = std::getenv("NETLAYER_LOG_LEVEL")) {
    SetLogLevel(spdlog::level::from_str(level));
    spdlog::set_level(spdlog::level::from_str(level));
  }
  CLI::App app{"netlayer-objstore: a ZEO-like object store on netlayer (docs/OBJSTORE.md)"};
  app.require_subcommand(1);
  ServeFlags serve;
  CLI::App* s = app.add_subcommand("serve",
                                   "run the server until SIGTERM or SIGINT "
                                   "(SIGUSR1 logs the stats)");
  s->add_option("--listen", serve.listen, "address to listen on (port 0: ephemeral)");
  s->add_option("--max-sessions", serve.max_sessions, "open connections at most");
  s->add_option("--idle-timeout", serve.idle_timeout_s, "seconds a silent client is kept");
  s->add_option("--handshake-timeout", serve.handshake_timeout_s, "seconds for a client's hello");
  s->add_option("--max-inflight", serve.max_inflight, "calls in flight per connection");
  s->add_option("--max-log", serve.max_log, "transactions remembered for reconnecting clients");
  s->add_option("--max-objects", serve.max_objects, "objects held at most");
  s->add_option("--max-object-bytes", serve.max_object_bytes, "bytes per object at most");
  s->add_option("--shutdown-grace", serve.shutdown_grace_s,
                "seconds calls in flight may take to finish on SIGTERM");
  AddTlsFlags(s, serve.tls, /*client=*/false);

  ClientFlags client;
  auto add_common = [&](CLI::App* c) {
    c->add_option("--server", client.server, "the server's address");
    c->add_option("--timeout", client.timeout_s, "seconds to wait for the server");
    AddTlsFlags(c, client.tls, /*client=*/true);
  };
  CLI::App* get = app.add_subcommand("get", "print an object's data (its serial on stderr)");
  add_common(get);
  get->add_option("oid", client.oid, "object id")->required();
  CLI::App* put = app.add_subcommand("put", "store data as the object's next version");
  add_common(put);
  put->add_option("oid", client.oid, "object id")->required();
  put->add_option("data", client.data, "the data")->required();
  CLI::App* watch = app.add_subcommand("watch", "print invalidations as they arrive");
  add_common(watch);
  watch->add_option("--count", client.count, "stop after this many (0: until SIGTERM)");
  CLI::App* stats = app.add_subcommand("stats", "print the server's stats as JSON");
  add_common(stats);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kOk : kUsage;
  }
  if (*s) return Serve(serve);
  if (*get) return Get(client);
  if (*put) return Put(client);
  if (*watch) return Watch(client);
  return Stats(client);
}
