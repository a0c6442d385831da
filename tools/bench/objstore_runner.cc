// Object store figures: an objstore::ObjectServer and objstore::Clients on one posix::Runtime
// (loopback TCP), the same code as netlayer-objstore. Loads through the client's cache (hits),
// loads that always reach the server (misses), and commits from 1 or N clients at once, each
// client on its own connection committing its own object (no conflicts; every commit pushes an
// invalidation to the other clients, as ZEO does).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "call_loop.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#include "netlayer/posix/runtime.h"
#include "objstore_figures.h"

namespace netlayer::bench {
namespace {

constexpr absl::Duration kSetupTimeout = absl::Seconds(10);
constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr size_t kDataBytes = 64;

// One posix::Runtime for every objstore runner alive at once. The runners of a group live
// together, and a Runtime's destructor waits for every posix connection thread of the process
// (not only its own): a runner destroying its own Runtime in Stop would wait out the other
// runners' open connections. The last runner to let go destroys it, once all have closed theirs.
std::shared_ptr<posix::Runtime> SharedRuntime() {
  static std::mutex mu;
  static std::weak_ptr<posix::Runtime> shared;
  std::lock_guard lock(mu);
  std::shared_ptr<posix::Runtime> runtime = shared.lock();
  if (runtime == nullptr) {
    runtime = std::make_shared<posix::Runtime>();
    shared = runtime;
  }
  return runtime;
}

class ObjstoreRunner : public Runner {
 public:
  ObjstoreRunner(ObjstoreFigure figure, int clients) : figure_(figure), num_clients_(clients) {}

  absl::Status Start() override {
    runtime_ = SharedRuntime();
    auto server = objstore::ObjectServer::Start(*runtime_, Address::IPv4("127.0.0.1", 0));
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    objstore::ClientOptions options;
    options.connect.max_attempts = 1;
    // A one-entry cache and two objects loaded in turn: every load misses.
    if (figure_ == ObjstoreFigure::kLoadFromServer) options.cache_size = 1;
    const int n = figure_ == ObjstoreFigure::kCommit ? num_clients_ : 1;
    for (int i = 0; i < n; ++i) {
      auto client = objstore::Client::Create(*runtime_, {server_->address()}, options);
      if (!client.ok()) return client.status();
      if (!(*client)->WaitSynced(absl::Now() + kSetupTimeout)) {
        return absl::DeadlineExceededError("objstore: a client did not sync");
      }
      // Each client's own object, at serial 0 (new).
      auto tid = (*client)->Commit({{Oid(i), 0, std::string(kDataBytes, 'x')}},
                                   absl::Now() + kSetupTimeout);
      if (!tid.ok()) return tid.status();
      serials_.push_back(*tid);
      clients_.push_back(std::move(*client));
    }
    if (figure_ == ObjstoreFigure::kLoadFromServer) {
      auto tid = clients_[0]->Commit({{Oid(1), 0, std::string(kDataBytes, 'y')}},
                                     absl::Now() + kSetupTimeout);
      if (!tid.ok()) return tid.status();
    }
    if (figure_ == ObjstoreFigure::kLoadFromCache) {
      // The commit cached the object already (rule 5); one load makes sure.
      auto loaded = clients_[0]->Load(Oid(0), absl::Now() + kSetupTimeout);
      if (!loaded.ok()) return loaded.status();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    switch (figure_) {
      case ObjstoreFigure::kLoadFromCache:
        return RunCallLoop(
            1, 0, duration,
            [this](const std::string&) -> absl::Status {
              auto loaded = clients_[0]->Load(Oid(0), absl::Now() + kCallTimeout);
              if (!loaded.ok()) return loaded.status();
              if (!loaded->from_cache) return absl::InternalError("objstore: a cache miss");
              if (loaded->data.size() != kDataBytes) return absl::DataLossError("objstore: data");
              return absl::OkStatus();
            },
            latency_);
      case ObjstoreFigure::kLoadFromServer:
        return RunCallLoop(
            1, 0, duration,
            [this](const std::string&) -> absl::Status {
              const int which = static_cast<int>(loads_++ % 2);
              auto loaded = clients_[0]->Load(Oid(which), absl::Now() + kCallTimeout);
              if (!loaded.ok()) return loaded.status();
              if (loaded->from_cache) return absl::InternalError("objstore: a cache hit");
              if (loaded->data != std::string(kDataBytes, which == 0 ? 'x' : 'y')) {
                return absl::DataLossError("objstore: wrong data");
              }
              return absl::OkStatus();
            },
            latency_);
      case ObjstoreFigure::kCommit:
        return RunCallLoop(
            num_clients_, kDataBytes, duration,
            [this](int thread, const std::string& data) -> absl::Status {
              // Thread `thread` alone uses client `thread` and its serial during a Measure.
              uint64_t& serial = serials_[thread];
              auto tid = clients_[thread]->Commit({{Oid(thread), serial, data}},
                                                  absl::Now() + kCallTimeout);
              if (!tid.ok()) return tid.status();
              if (*tid <= serial) return absl::InternalError("objstore: tid did not advance");
              serial = *tid;
              return absl::OkStatus();
            },
            latency_);
    }
    return absl::InternalError("objstore: unknown figure");
  }

  const LatencyHistogram* latency() const override { return &latency_; }

  absl::Status Stop() override {
    for (auto& client : clients_) client->Close();
    clients_.clear();
    if (server_) server_->Close();
    server_.reset();
    runtime_.reset();  // the last runner's waits for the connection threads
    return absl::OkStatus();
  }

 private:
  static std::string Oid(int i) { return absl::StrCat("bench-", i); }

  const ObjstoreFigure figure_;
  const int num_clients_;
  LatencyHistogram latency_;
  std::shared_ptr<posix::Runtime> runtime_;  // outlives the server and the clients
  std::unique_ptr<objstore::ObjectServer> server_;
  std::vector<std::shared_ptr<objstore::Client>> clients_;
  std::vector<uint64_t> serials_;  // per client: the tid of its object's current version
  uint64_t loads_ = 0;
};

}  // namespace

std::unique_ptr<Runner> MakeObjstoreRunner(ObjstoreFigure figure, int clients) {
  return std::make_unique<ObjstoreRunner>(figure, clients);
}

}  // namespace netlayer::bench
