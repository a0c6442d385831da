#include "netlayer/metrics/rpc_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace netlayer::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// A label value from arbitrary bytes: printable ASCII kept, the rest '?'.
std::string LabelValue(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

Family<Counter>& NewCounter(prometheus::Registry& r, const std::string& name,
                            const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
Family<Gauge>& NewGauge(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

Histogram::BucketBoundaries LatencyBuckets() {
  return Histogram::BucketBoundaries(rpc::kLatencyBucketsSeconds.begin(),
                                     rpc::kLatencyBucketsSeconds.end());
}

}  // namespace

void SetCounter(Counter& counter, double total) {
  const double now = counter.Value();
  if (total > now) counter.Increment(total - now);
}

// Every family, server and client side.
struct RpcMetrics::Families {
  struct Side {
    Family<Counter>* calls_started;  // {method}
    Family<Counter>* calls;          // {method, code}
    Family<Histogram>* latency;      // {method}
    Family<Counter>* answers;        // {code}
    Family<Counter>* bytes_in;
    Family<Counter>* bytes_out;
    Family<Counter>* pushes;
    Family<Gauge>* inflight;
    Family<Gauge>* queued_output;
    Family<Counter>* handshake_failures;  // {reason}
  };
  Side server;
  Side client;
  // Server only.
  Family<Gauge>* sessions_open;
  Family<Counter>* sessions_accepted;
  Family<Counter>* refusals;        // {kind}
  Family<Counter>* session_closes;  // {reason}
  Family<Gauge>* memory_budget;
  Family<Gauge>* frame_buffer;
  Family<Gauge>* shutting_down;
  // Client only.
  Family<Counter>* connections;
  Family<Counter>* reconnects;
  Family<Counter>* connect_failures;
  Family<Counter>* disconnects;
  Family<Gauge>* ready;
  // TLS.
  Family<Counter>* tls_handshakes;
  Family<Counter>* tls_failures;  // {reason}
  Family<Counter>* tls_reloads;
  Family<Counter>* tls_reload_failures;
};

namespace {

void BuildSide(prometheus::Registry& r, const std::string& role, bool server, auto& side) {
  const std::string p = "netlayer_rpc_" + role + "_";
  const char* who = server ? "handed to a handler" : "made";
  side.calls_started = &NewCounter(r, p + "calls_started_total",
                                   absl::StrCat("Calls and one-way calls ", who, ", by method."));
  side.calls =
      &NewCounter(r, p + "calls_total",
                  server ? "Calls answered, by method and status code (answers sent)."
                         : "Calls finished, by method and status code (local failures included).");
  side.latency = &prometheus::BuildHistogram()
                      .Name(p + "call_duration_seconds")
                      .Help(server ? "Seconds from a call handed to its handler to its answer sent."
                                   : "Seconds from a call made to its result.")
                      .Register(r);
  side.answers = &NewCounter(
      r, p + "results_total",
      server ? "Every answer sent, by status code (calls refused before a handler included)."
             : "Every call result, by status code.");
  side.bytes_in = &NewCounter(r, p + "received_bytes_total", "Bytes received, framed.");
  side.bytes_out = &NewCounter(r, p + "sent_bytes_total", "Bytes sent, framed.");
  side.pushes = &NewCounter(
      r, p + "pushes_total",
      server ? "Pushes (one-way messages) sent to clients." : "Pushes received from the server.");
  side.inflight = &NewGauge(r, p + (server ? "inflight_calls" : "pending_calls"),
                            server ? "Calls handed to handlers and not answered yet."
                                   : "Calls waiting for an answer or for a connection.");
  side.queued_output =
      &NewGauge(r, p + "queued_output_bytes", "Bytes written to the connections and not yet sent.");
  side.handshake_failures = &NewCounter(
      r, p + "handshake_failures_total",
      "Connections that closed before the rpc handshake completed, by close-reason kind.");
}

}  // namespace

RpcMetrics::RpcMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(registry != nullptr ? std::move(registry)
                                    : std::make_shared<prometheus::Registry>()) {
  auto f = std::make_unique<Families>();
  prometheus::Registry& r = *registry_;
  BuildSide(r, "server", true, f->server);
  BuildSide(r, "client", false, f->client);
  f->sessions_open = &NewGauge(r, "netlayer_rpc_server_sessions", "Sessions open now.");
  f->sessions_accepted = &NewCounter(r, "netlayer_rpc_server_sessions_accepted_total",
                                     "Connections the server took as sessions.");
  f->refusals = &NewCounter(r, "netlayer_rpc_server_refusals_total",
                            "What each protection refused, by kind (docs/OPERATIONS.md).");
  f->session_closes = &NewCounter(r, "netlayer_rpc_server_session_closes_total",
                                  "Ready sessions that closed, by close-reason kind.");
  f->memory_budget = &NewGauge(r, "netlayer_rpc_server_memory_budget_bytes",
                               "The server's memory budget (0: none).");
  f->frame_buffer = &NewGauge(r, "netlayer_rpc_server_frame_buffer_bytes",
                              "Bytes of partial large frames charged to the memory budget now.");
  f->shutting_down =
      &NewGauge(r, "netlayer_rpc_server_shutting_down", "1 while a graceful shutdown runs.");
  f->connections = &NewCounter(r, "netlayer_rpc_client_connections_total",
                               "rpc handshakes the client completed.");
  f->reconnects = &NewCounter(r, "netlayer_rpc_client_reconnects_total",
                              "rpc handshakes completed after the first.");
  f->connect_failures = &NewCounter(r, "netlayer_rpc_client_connect_failures_total",
                                    "Failed connection attempts (connect errors, closes before "
                                    "the handshake).");
  f->disconnects =
      &NewCounter(r, "netlayer_rpc_client_disconnects_total", "Ready connections lost.");
  f->ready = &NewGauge(r, "netlayer_rpc_client_ready", "1 while the client has a ready link.");
  f->tls_handshakes =
      &NewCounter(r, "netlayer_tls_handshakes_total", "TLS handshakes that completed.");
  f->tls_failures = &NewCounter(r, "netlayer_tls_handshake_failures_total",
                                "TLS handshakes that failed, by reason (TlsErrorName).");
  f->tls_reloads = &NewCounter(r, "netlayer_tls_credential_reloads_total",
                               "Credential replacements that took effect.");
  f->tls_reload_failures =
      &NewCounter(r, "netlayer_tls_credential_reload_failures_total",
                  "Credential replacements refused (the old credentials stayed).");
  MutexLock lock(mu_);
  families_ = std::move(f);
}

RpcMetrics::~RpcMetrics() = default;

void RpcMetrics::AddServer(std::string name, std::weak_ptr<const rpc::Server> server) {
  MutexLock lock(mu_);
  servers_.emplace_back(std::move(name), std::move(server));
}

void RpcMetrics::AddClient(std::string name, std::weak_ptr<const rpc::Client> client) {
  MutexLock lock(mu_);
  clients_.emplace_back(std::move(name), std::move(client));
}

void RpcMetrics::AddTls(std::string name, std::weak_ptr<const tls::TlsContext> context) {
  MutexLock lock(mu_);
  tls_.emplace_back(std::move(name), std::move(context));
}

void RpcMetrics::AddUpdater(std::function<void()> update) {
  MutexLock lock(mu_);
  updaters_.push_back(std::move(update));
}

template <typename Stats>
void RpcMetrics::UpdateMethods(const std::string& role, const std::string& name,
                               const Stats& stats) {
  const bool server = role == "server";
  Families::Side& side = server ? families_->server : families_->client;
  for (const auto& [raw_method, m] : stats.methods) {
    const std::string method = LabelValue(raw_method);
    if (m.calls > 0) {
      SetCounter(side.calls_started->Add({{role, name}, {"method", method}}),
                 static_cast<double>(m.calls));
    }
    for (const auto& [code, n] : m.by_status) {
      SetCounter(side.calls->Add({{role, name}, {"method", method}, {"code", code}}),
                 static_cast<double>(n));
    }
    if (m.latency_count == 0) continue;
    rpc::MethodStats& last = last_latency_[absl::StrCat(role, "\n", name, "\n", raw_method)];
    if (m.latency_count == last.latency_count) continue;
    if (m.latency_count < last.latency_count) {  // a new source under the same name: restart
      last = m;
      continue;
    }
    std::vector<double> increments(m.latency_counts.size());
    for (size_t i = 0; i < m.latency_counts.size(); ++i) {
      increments[i] = static_cast<double>(m.latency_counts[i] - last.latency_counts[i]);
    }
    const double sum = static_cast<double>(m.latency_sum_ns - last.latency_sum_ns) * 1e-9;
    side.latency->Add({{role, name}, {"method", method}}, LatencyBuckets())
        .ObserveMultiple(increments, sum);
    last = m;
  }
  for (const auto& [code, n] : stats.calls_by_status) {
    SetCounter(side.answers->Add({{role, name}, {"code", code}}), static_cast<double>(n));
  }
  for (const auto& [reason, n] : stats.handshake_failures) {
    SetCounter(side.handshake_failures->Add({{role, name}, {"reason", LabelValue(reason)}}),
               static_cast<double>(n));
  }
  SetCounter(side.bytes_in->Add({{role, name}}), static_cast<double>(stats.bytes_in));
  SetCounter(side.bytes_out->Add({{role, name}}), static_cast<double>(stats.bytes_out));
  SetCounter(side.pushes->Add({{role, name}}), static_cast<double>(stats.pushes));
  side.queued_output->Add({{role, name}}).Set(static_cast<double>(stats.queued_output_bytes));
}

void RpcMetrics::UpdateServer(const std::string& name, const rpc::ServerStats& s) {
  UpdateMethods("server", name, s);
  Families& f = *families_;
  const Labels l = {{"server", name}};
  f.server.inflight->Add(l).Set(static_cast<double>(s.inflight_calls));
  f.sessions_open->Add(l).Set(static_cast<double>(s.sessions_open));
  SetCounter(f.sessions_accepted->Add(l), static_cast<double>(s.sessions_accepted));
  for (const auto& [kind, n] : s.refusals) {
    SetCounter(f.refusals->Add({{"server", name}, {"kind", kind}}), static_cast<double>(n));
  }
  for (const auto& [reason, n] : s.session_closes) {
    SetCounter(f.session_closes->Add({{"server", name}, {"reason", LabelValue(reason)}}),
               static_cast<double>(n));
  }
  f.memory_budget->Add(l).Set(static_cast<double>(s.memory_budget_bytes));
  f.frame_buffer->Add(l).Set(static_cast<double>(s.frame_buffer_bytes));
  f.shutting_down->Add(l).Set(s.shutting_down ? 1 : 0);
}

void RpcMetrics::UpdateClient(const std::string& name, const rpc::ClientStats& s) {
  UpdateMethods("client", name, s);
  Families& f = *families_;
  const Labels l = {{"client", name}};
  f.client.inflight->Add(l).Set(static_cast<double>(s.pending_calls));
  SetCounter(f.connections->Add(l), static_cast<double>(s.connections));
  SetCounter(f.reconnects->Add(l), static_cast<double>(s.reconnects));
  SetCounter(f.connect_failures->Add(l), static_cast<double>(s.connect_failures));
  SetCounter(f.disconnects->Add(l), static_cast<double>(s.disconnects));
  f.ready->Add(l).Set(s.ready ? 1 : 0);
}

void RpcMetrics::UpdateTls(const std::string& name, const tls::TlsStats& s) {
  Families& f = *families_;
  const Labels l = {{"context", name}};
  SetCounter(f.tls_handshakes->Add(l), static_cast<double>(s.handshakes));
  for (const auto& [reason, n] : s.handshake_failures) {
    SetCounter(f.tls_failures->Add({{"context", name}, {"reason", reason}}),
               static_cast<double>(n));
  }
  SetCounter(f.tls_reloads->Add(l), static_cast<double>(s.reloads));
  SetCounter(f.tls_reload_failures->Add(l), static_cast<double>(s.reload_failures));
}

void RpcMetrics::Update() {
  MutexLock lock(mu_);
  for (const auto& [name, weak] : servers_) {
    if (auto server = weak.lock()) UpdateServer(name, server->stats());
  }
  for (const auto& [name, weak] : clients_) {
    if (auto client = weak.lock()) UpdateClient(name, client->stats());
  }
  for (const auto& [name, weak] : tls_) {
    if (auto context = weak.lock()) UpdateTls(name, context->stats());
  }
  for (const auto& update : updaters_) update();
}

std::vector<prometheus::MetricFamily> RpcMetrics::Collect() const {
  // A scrape is a read of the stats; the registry's metrics are this object's state.
  const_cast<RpcMetrics*>(this)->Update();
  return registry_->Collect();
}

}  // namespace netlayer::metrics
