// netlayer-objstore: the object store's server and client commands, on posix.
//
//   netlayer-objstore serve --listen 127.0.0.1:8100 [--data DIR] [--metrics 127.0.0.1:9100]
//                           [--log-level-file FILE] [limits and timeouts]
//     (--data: durable, a transaction log in DIR; without it the store is in memory only;
//      --metrics: Prometheus metrics on http://ADDR/metrics, when built with prometheus-cpp;
//      SIGHUP re-reads the TLS files and the log level file, for new connections)
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
#ifdef NETLAYER_OBJSTORE_METRICS
#include "netlayer/metrics/rpc_metrics.h"
#include "prometheus/exposer.h"
#endif

namespace {

using namespace netlayer;  // NOLINT: a program's main file

enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kNotFound = 3, kConflict = 4 };

int Fail(const absl::Status& status) {
  if (GetLogFormat() == LogFormat::kJson) {
    spdlog::error("{}", status.ToString());  // one JSON object, like every other line
  } else {
    std::fprintf(stderr, "netlayer-objstore: %s\n", status.ToString().c_str());
  }
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
      server_context_ = server;
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
  // The server's TLS context (null: plaintext, or a client): SIGHUP reloads its credentials.
  const std::shared_ptr<tls::TlsContext>& server_context() const { return server_context_; }

 private:
  posix::Runtime runtime_;  // outlives the TlsHost (declared first)
  std::shared_ptr<tls::TlsContext> server_context_;
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
  std::string data;                // "": memory only
  double recover_log_after_s = 1;  // after a log failure (0: only a restart recovers it)
  std::string metrics;             // "": no metrics endpoint
  std::string log_level_file;      // "": the level stays what it was at the start
  TlsFlags tls;
};

// A log level's name: trace, debug, info, warn (warning), error, critical, off.
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  const spdlog::level::level_enum level = spdlog::level::from_str(std::string(text));
  // from_str answers "off" for any name it does not know.
  if (level == spdlog::level::off && text != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log level \"", std::string(text),
                     "\" (trace, debug, info, warn, error, critical, off)"));
  }
  return level;
}

// --log-level-file: the level named in FILE (its first line).
absl::Status ApplyLogLevelFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--log-level-file: cannot read ", path));
  }
  char line[64] = {};
  const bool read = std::fgets(line, sizeof line, file) != nullptr;
  std::fclose(file);
  absl::StatusOr<spdlog::level::level_enum> level =
      ParseLogLevel(read ? std::string_view(line) : std::string_view());
  if (!level.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level-file ", path, ": ", level.status().message()));
  }
  SetLogLevel(*level);
  spdlog::set_level(*level);
  return absl::OkStatus();
}

// SIGHUP: the log level file and the TLS certificate, key and CA files are read again and apply
// to what comes next (new log lines, new connections); live connections keep theirs. What does
// not load is refused with a log line and the old setting stays. Never ends the server.
void Reload(const AppHost& app, const ServeFlags& f) {
  bool any = false;
  if (!f.log_level_file.empty()) {
    any = true;
    if (absl::Status s = ApplyLogLevelFile(f.log_level_file); s.ok()) {
      spdlog::info("reload (SIGHUP): log level {}",
                   spdlog::level::to_string_view(spdlog::get_level()));
    } else {
      spdlog::error("reload (SIGHUP): log level kept: {}", s.ToString());
    }
  }
  if (const std::shared_ptr<tls::TlsContext>& context = app.server_context()) {
    any = true;
    if (absl::Status s = context->Reload(); s.ok()) {
      spdlog::info("reload (SIGHUP): TLS credentials reloaded for new connections: {}",
                   context->certificate_summary());
    } else {
      spdlog::error("reload (SIGHUP): TLS credentials kept ({}): {}",
                    context->certificate_summary(), s.ToString());
    }
  }
  if (!any) spdlog::info("reload (SIGHUP): nothing to reload (no TLS, no --log-level-file)");
}

#ifdef NETLAYER_OBJSTORE_METRICS
// --metrics ADDR: GET http://ADDR/metrics, the rpc server's, the TLS context's and the object
// server's own metrics (docs/OPERATIONS.md, "Metrics").
class MetricsEndpoint {
 public:
  absl::Status Start(const std::string& bind, objstore::ObjectServer& server,
                     const std::shared_ptr<tls::TlsContext>& tls_context) {
    metrics_ = std::make_shared<metrics::RpcMetrics>();
    metrics_->AddServer("objstore", server.rpc().weak_from_this());
    if (tls_context) metrics_->AddTls("objstore-server", tls_context);
    prometheus::Registry& r = *metrics_->registry();
    auto counter = [&r](const char* name, const char* help) {
      return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
    };
    auto gauge = [&r](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
    };
    struct Own {
      prometheus::Counter *commits, *conflicts, *loads, *invalidations, *syncs, *syncs_too_old,
          *log_syncs, *log_sync_commits;
      prometheus::Gauge *objects, *last_tid, *log_bytes, *log_healthy;
    };
    auto own = std::make_shared<Own>(Own{
        counter("netlayer_objstore_commits_total", "Transactions committed."),
        counter("netlayer_objstore_conflicts_total", "Commits refused with a conflict."),
        counter("netlayer_objstore_loads_total", "Objects loaded."),
        counter("netlayer_objstore_invalidations_sent_total",
                "Invalidation pushes sent to clients."),
        counter("netlayer_objstore_syncs_total", "Client cache syncs (after each connect)."),
        counter("netlayer_objstore_syncs_too_old_total",
                "Syncs from further back than the log: the client dropped its cache."),
        counter("netlayer_objstore_log_syncs_total",
                "Syncs of the transaction log that completed (durable stores)."),
        counter("netlayer_objstore_log_sync_commits_total",
                "Commits those log syncs acknowledged (/ log syncs: the group-commit batch)."),
        gauge("netlayer_objstore_objects", "Objects held."),
        gauge("netlayer_objstore_last_tid", "The last transaction id."),
        gauge("netlayer_objstore_log_bytes", "Bytes of the transaction log."),
        gauge("netlayer_objstore_log_healthy",
              "1 while the log accepts commits (or the store is memory-only); 0 after a log "
              "failure: every commit fails until a restart."),
    });
    objstore::ObjectServer* s = &server;
    metrics_->AddUpdater([own, s] {
      const objstore::ObjectServerStats st = s->stats();
      metrics::SetCounter(*own->commits, static_cast<double>(st.commits));
      metrics::SetCounter(*own->conflicts, static_cast<double>(st.conflicts));
      metrics::SetCounter(*own->loads, static_cast<double>(st.loads));
      metrics::SetCounter(*own->invalidations, static_cast<double>(st.invalidations_sent));
      metrics::SetCounter(*own->syncs, static_cast<double>(st.syncs));
      metrics::SetCounter(*own->syncs_too_old, static_cast<double>(st.syncs_too_old));
      metrics::SetCounter(*own->log_syncs, static_cast<double>(st.log_syncs));
      metrics::SetCounter(*own->log_sync_commits, static_cast<double>(st.log_sync_commits));
      own->objects->Set(static_cast<double>(st.objects));
      own->last_tid->Set(static_cast<double>(st.last_tid));
      own->log_bytes->Set(static_cast<double>(st.log_bytes));
      own->log_healthy->Set(st.log_failure.empty() ? 1 : 0);
    });
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(bind);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("--metrics ", bind, ": cannot serve metrics there: ", e.what()));
    }
    exposer_->RegisterCollectable(metrics_);
    return absl::OkStatus();
  }
  // "127.0.0.1:9100" with the port bound (for --metrics ...:0).
  std::string address(const std::string& bind) const {
    const std::vector<int> ports = exposer_->GetListeningPorts();
    const size_t colon = bind.rfind(':');
    return absl::StrCat(bind.substr(0, colon), ":", ports.empty() ? 0 : ports[0]);
  }
  // Stops serving before the object server goes (the updater reads it).
  void Stop() { exposer_.reset(); }

 private:
  std::shared_ptr<metrics::RpcMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};
#endif

int Serve(const ServeFlags& f) {
  // The stop and stats signals are taken by sigwait below, in main's thread; blocked before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGHUP);  // reload (TLS files, log level); never a stop
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!f.log_level_file.empty()) {
    if (absl::Status s = ApplyLogLevelFile(f.log_level_file); !s.ok()) return Fail(s);
  }
#ifndef NETLAYER_OBJSTORE_METRICS
  if (!f.metrics.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--metrics: this netlayer-objstore was built without prometheus-cpp "
        "(apt-get install prometheus-cpp-dev, then configure again)"));
  }
#endif

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
  options.data_dir = f.data;
  options.recover_log_after = absl::Seconds(f.recover_log_after_s);
  options.on_commit = [](uint64_t, uint64_t tid, const std::vector<objstore::Store>& stores) {
    spdlog::debug("commit tid={} stores={}", tid, stores.size());
  };
  auto server = objstore::ObjectServer::Start(app.host(), *address, std::move(options));
  if (!server.ok()) return Fail(server.status());
  if (!f.data.empty()) {
    const objstore::RecoveryStats& r = (*server)->recovery();
    spdlog::info("objstore log in {}: {}, {} transactions replayed, last tid {}{}", f.data,
                 r.fresh ? "new" : "recovered", r.records, (*server)->last_tid(),
                 r.torn_bytes == 0
                     ? std::string()
                     : absl::StrCat(", ", r.torn_bytes, " torn bytes cut (", r.tail_problem, ")"));
  }
  spdlog::info("objstore serving on {} (epoch {}{}{})", (*server)->address().ToString(),
               (*server)->epoch(), f.data.empty() ? ", memory only" : ", durable",
               !f.tls.enabled()   ? ""
               : f.tls.ca.empty() ? ", TLS"
                                  : ", TLS with client certificates");
#ifdef NETLAYER_OBJSTORE_METRICS
  MetricsEndpoint metrics;
  if (!f.metrics.empty()) {
    if (absl::Status s = metrics.Start(f.metrics, **server, app.server_context()); !s.ok()) {
      return Fail(s);
    }
    spdlog::info("metrics on http://{}/metrics", metrics.address(f.metrics));
    std::printf("metrics on %s\n", metrics.address(f.metrics).c_str());
  }
#endif
  std::printf("listening on %s\n", (*server)->address().ToString().c_str());
  std::fflush(stdout);

  for (;;) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal == SIGUSR1) {
      spdlog::info("stats {}", (*server)->stats().ToJson());
      continue;
    }
    if (signal == SIGHUP) {
      Reload(app, f);
      continue;
    }
    break;
  }
  spdlog::info("stopping: answering calls in flight (grace {} s)", f.shutdown_grace_s);
  const absl::Status done = (*server)->Shutdown(absl::Now() + absl::Seconds(f.shutdown_grace_s));
#ifdef NETLAYER_OBJSTORE_METRICS
  metrics.Stop();
#endif
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

// The rpc client's report when it gave up names every round ("... round N ADDR: reason; ...",
// core/connect_schedule.h): a command names the last loss, and how many rounds there were.
std::string LastLoss(const std::string& text) {
  const size_t at = text.rfind("round ");
  if (at == std::string::npos || !absl::StrContains(text, "gave up connecting")) return text;
  const size_t number_end = text.find(' ', at + 6);
  const size_t colon = text.find(": ", at);
  if (number_end == std::string::npos || colon == std::string::npos) return text;
  const std::string rounds = text.substr(at + 6, number_end - at - 6);
  return absl::StrCat(text.substr(colon + 2), " (gave up after ", rounds,
                      rounds == "1" ? " round)" : " rounds)");
}

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
  // The error for a client that did not sync: the TLS failure, else why the rpc client is not
  // ready (`why`: its last_error(), taken before Close) and whether the command's timeout ran out.
  absl::Status Error(const std::string& server, const absl::Status& why,
                     std::optional<double> timed_out_after_s) {
    std::lock_guard lock(mu);
    if (tls_failed) {
      return absl::UnavailableError(
          absl::StrCat("TLS with the objstore server at ", server, " failed: ", last->detail()));
    }
    std::string text = why.ok() ? "no connection" : LastLoss(std::string(why.message()));
    if (timed_out_after_s) {
      text = absl::StrCat("timed out after ", *timed_out_after_s, " s: ", text);
    }
    // Reached but silent (e.g. a TLS server that a plaintext client connected to).
    if (absl::StrContains(text, "did not answer the rpc handshake")) {
      return absl::UnavailableError(
          absl::StrCat("the objstore server at ", server, " did not answer: ", text));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot reach the objstore server at ", server, ": ", text));
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
  const absl::Time deadline = absl::Now() + absl::Seconds(f.timeout_s);
  if (!(*client)->WaitSynced(deadline)) {
    const absl::Status why = (*client)->last_error();
    (*client)->Close();
    return disconnects->Error(f.server, why,
                              absl::Now() >= deadline ? std::optional(f.timeout_s) : std::nullopt);
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

// Whether a watch is connected, and since when it is not (for --timeout).
struct WatchLink {
  std::mutex mu;
  bool synced = false;
  bool was_lost = false;
  absl::Time waiting_since = absl::Now();

  // Synced; true if a loss came before (the connection is back).
  bool Back() {
    std::lock_guard lock(mu);
    synced = true;
    return std::exchange(was_lost, false);
  }
  // Lost; true if it was synced (so the loss is printed once per connection).
  bool Lost() {
    std::lock_guard lock(mu);
    const bool was = synced;
    if (was) waiting_since = absl::Now();
    synced = false;
    was_lost = was_lost || was;
    return was;
  }
  // Until one of `signals` (true), or not synced for `timeout` (false). Wakes every 100 ms to
  // check: the signals are taken here, in main's thread.
  bool WaitForSignal(const sigset_t& signals, absl::Duration timeout) {
    for (;;) {
      const timespec tick = {0, 100 * 1000 * 1000};
      if (sigtimedwait(&signals, nullptr, &tick) > 0) return true;
      std::lock_guard lock(mu);
      if (!synced && absl::Now() - waiting_since >= timeout) return false;
    }
  }
};

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
    auto link = std::make_shared<WatchLink>();
    options.on_synced = [link](uint64_t epoch, uint64_t tid) {
      if (link->Back()) std::printf("connection back\n");
      std::printf("watching epoch %llu from tid %llu\n", static_cast<unsigned long long>(epoch),
                  static_cast<unsigned long long>(tid));
      std::fflush(stdout);
    };
    // A TLS rejection ends the watch with its reason; other losses reconnect, for --timeout.
    options.on_disconnected = [disconnects, link](const CloseReason& r) {
      disconnects->Record(r);
      if (link->Lost()) {
        std::printf("connection lost: %s\n", r.ToString().c_str());
        std::fflush(stdout);
      }
      if (Disconnects::IsTls(r) || r.permanent()) kill(getpid(), SIGTERM);
    };
    auto client = objstore::Client::Create(host, {*address}, options);
    if (!client.ok()) return Fail(client.status());
    disconnects->Attach(*client);
    if (!link->WaitForSignal(signals, absl::Seconds(f.timeout_s))) {
      // Not connected for --timeout: give up, naming why.
      const absl::Status why = (*client)->last_error();
      (*client)->Close();
      return Fail(disconnects->Error(f.server, why, f.timeout_s));
    }
    const absl::Status why = (*client)->last_error();
    (*client)->Close();
    {
      std::lock_guard lock(disconnects->mu);
      if (!disconnects->tls_failed && !(disconnects->last && disconnects->last->permanent())) {
        return static_cast<int>(kOk);
      }
    }
    return Fail(disconnects->Error(f.server, why, std::nullopt));
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
  // Every line, ours and the library's, on stderr in one format (core/log.h).
  spdlog::set_default_logger(MakeLogger("netlayer-objstore"));
  spdlog::set_level(spdlog::level::info);
  if (const char* level = std::getenv("NETLAYER_LOG_LEVEL")) {
    SetLogLevel(spdlog::level::from_str(level));
    spdlog::set_level(spdlog::level::from_str(level));
  }
  CLI::App app{"netlayer-objstore: a ZEO-like object store on netlayer (docs/OBJSTORE.md)"};
  app.require_subcommand(1);
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text or json (one object per line: time, level, logger, message)");
  ServeFlags serve;
  CLI::App* s = app.add_subcommand("serve",
                                   "run the server until SIGTERM or SIGINT (SIGUSR1 logs the "
                                   "stats; SIGHUP reloads the TLS files and --log-level-file)");
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
  s->add_option("--data", serve.data,
                "directory of the transaction log: commits are acknowledged once synced and "
                "survive restarts (default: none, memory only)");
  s->add_option("--recover-log-after", serve.recover_log_after_s,
                "with --data: seconds after a failed write or sync of the log before the server "
                "rewrites it with the acknowledged records and takes commits again (retried as "
                "often; 0: commits fail until a restart; default 1)");
  s->add_option("--metrics", serve.metrics,
                "serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9100; port 0: "
                "ephemeral, printed as 'metrics on ADDR')");
  s->add_option("--log-level-file", serve.log_level_file,
                "a file naming the log level (trace, debug, info, warn, error, off), read at the "
                "start and on each SIGHUP");
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
  absl::StatusOr<LogFormat> format = ParseLogFormat(log_format);
  if (!format.ok()) return Fail(format.status());
  SetLogFormat(*format);
  if (*s) return Serve(serve);
  if (*get) return Get(client);
  if (*put) return Put(client);
  if (*watch) return Watch(client);
  return Stats(client);
}
