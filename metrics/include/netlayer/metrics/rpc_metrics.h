// RpcMetrics: the stats of rpc servers and clients and of TLS contexts (rpc/stats.h,
// tls/context.h) in a prometheus::Registry, for a Prometheus scrape (prometheus-cpp's Exposer,
// from prometheus-cpp-pull) or a push. docs/OPERATIONS.md, "Metrics", lists every metric and what
// to alert on.
//
//   auto metrics = std::make_shared<metrics::RpcMetrics>();
//   metrics->AddServer("objstore", server);          // std::shared_ptr<rpc::Server>, kept weakly
//   metrics->AddTls("objstore", server_tls_context);
//   prometheus::Exposer exposer("127.0.0.1:9100");
//   exposer.RegisterCollectable(metrics);             // each scrape runs Update() first
//
// The library keeps its counters in its own stats (no prometheus call on any hot path);
// Update() copies a snapshot of each source into the registry's metrics: counters advance by
// what the stats advanced, gauges are set, the latency histograms get the new answers of each
// bucket. A source that is destroyed keeps its last values; give a replacement (a restarted
// server) a name of its own, or its counters stand still until they pass the old totals. Method
// names become label values with bytes outside printable ASCII replaced by '?'; at most
// rpc::kMaxStatsMethods methods per source (the rest count as "(other)", in the stats already).
//
// Thread rules: every method may be called from any thread (one internal mutex).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "netlayer/core/mutex.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/tls/context.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace netlayer::metrics {

// Advances `counter` to `total` (a counter never goes back: a smaller total changes nothing).
void SetCounter(prometheus::Counter& counter, double total);

class RpcMetrics final : public prometheus::Collectable {
 public:
  // The metrics are registered in `registry` (a new one if null).
  explicit RpcMetrics(std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~RpcMetrics() override;

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // Sources, each with the value of its label ("server", "client", "context"): kept weakly.
  void AddServer(std::string name, std::weak_ptr<const rpc::Server> server);
  void AddClient(std::string name, std::weak_ptr<const rpc::Client> client);
  void AddTls(std::string name, std::weak_ptr<const tls::TlsContext> context);
  // Runs at each Update, after the sources (under the internal mutex): an application's own
  // metrics in the same registry (e.g. the object server's commits), set from its stats.
  void AddUpdater(std::function<void()> update);

  // Copies every source's stats into the registry.
  void Update();
  // prometheus::Collectable: Update(), then the registry's metrics.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Families;
  template <typename Stats>
  void UpdateMethods(const std::string& role, const std::string& name, const Stats& stats)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateServer(const std::string& name, const rpc::ServerStats& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateClient(const std::string& name, const rpc::ClientStats& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateTls(const std::string& name, const tls::TlsStats& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<prometheus::Registry> registry_;
  mutable Mutex mu_;
  std::unique_ptr<Families> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::weak_ptr<const rpc::Server>>> servers_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::weak_ptr<const rpc::Client>>> clients_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::weak_ptr<const tls::TlsContext>>> tls_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> updaters_ ABSL_GUARDED_BY(mu_);
  // The latency histograms' last snapshot, by (role, source, method): Update adds the difference.
  std::map<std::string, rpc::MethodStats> last_latency_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netlayer::metrics
