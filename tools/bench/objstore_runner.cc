// Object store figures: an objstore::ObjectServer and objstore::Clients on one posix::Runtime
// (loopback TCP), the same code as netlayer-objstore. Loads through the client's cache (hits),
// loads that always reach the server (misses), and commits from 1 or N clients at once, each
// client on its own connection committing its own object (no conflicts; every commit pushes an
// invalidation to the other clients, as ZEO does). Durable commits: the same with the server's
// transaction log in a temporary directory (ServerOptions::data_dir, the posix file system), and
// their baseline, one write + fdatasync per commit of a record of the same size.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "call_loop.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/log.h"
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

// A fresh directory under $TMPDIR (default /tmp), removed by the caller.
absl::StatusOr<std::string> MakeTempDir(const char* what) {
  const char* tmp = getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp", "/netlayer-bench-", what, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", strerror(errno)));
  }
  return pattern;
}

void RemoveDir(std::string& dir) {
  if (dir.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  dir.clear();
}

class ObjstoreRunner : public Runner {
 public:
  ObjstoreRunner(ObjstoreFigure figure, int clients) : figure_(figure), num_clients_(clients) {}

  absl::Status Start() override {
    runtime_ = SharedRuntime();
    objstore::ServerOptions server_options;
    if (figure_ == ObjstoreFigure::kDurableCommit) {
      absl::StatusOr<std::string> dir = MakeTempDir("objstore");
      if (!dir.ok()) return dir.status();
      dir_ = *dir;
      server_options.data_dir = dir_;
    }
    auto server = objstore::ObjectServer::Start(*runtime_, Address::IPv4("127.0.0.1", 0),
                                                std::move(server_options));
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    objstore::ClientOptions options;
    options.connect.max_attempts = 1;
    // A one-entry cache and two objects loaded in turn: every load misses.
    if (figure_ == ObjstoreFigure::kLoadFromServer) options.cache_size = 1;
    const bool commits =
        figure_ == ObjstoreFigure::kCommit || figure_ == ObjstoreFigure::kDurableCommit;
    const int n = commits ? num_clients_ : 1;
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
      case ObjstoreFigure::kDurableCommit:
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

  // Durable commits: how many commits a sync of the log acknowledged, on average (group commit).
  std::vector<Gauge> gauges() const override {
    if (figure_ != ObjstoreFigure::kDurableCommit || server_ == nullptr) return {};
    const objstore::ObjectServerStats stats = server_->stats();
    if (stats.log_syncs == 0) return {};
    return {{"commits per sync",
             static_cast<double>(stats.log_sync_commits) / static_cast<double>(stats.log_syncs),
             ""}};
  }

  absl::Status Stop() override {
    for (auto& client : clients_) client->Close();
    clients_.clear();
    if (server_) server_->Close();
    server_.reset();
    runtime_.reset();  // the last runner's waits for the connection threads
    RemoveDir(dir_);
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
  std::string dir_;  // kDurableCommit: the log's directory
};

// The limit without batching: one thread appending a record of a durable commit's size to a
// file and calling fdatasync after each, on the file system the durable figures use.
class FdatasyncRunner : public Runner {
 public:
  absl::Status Start() override {
    absl::StatusOr<std::string> dir = MakeTempDir("fdatasync");
    if (!dir.ok()) return dir.status();
    dir_ = *dir;
    fd_ = open(absl::StrCat(dir_, "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return absl::InternalError(absl::StrCat("open: ", strerror(errno)));
    record_ = DurableCommitRecord();
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    return RunCallLoop(
        1, 0, duration,
        [this](const std::string&) -> absl::Status {
          if (write(fd_, record_.data(), record_.size()) != static_cast<ssize_t>(record_.size())) {
            return absl::InternalError(absl::StrCat("write: ", strerror(errno)));
          }
          if (fdatasync(fd_) != 0) {
            return absl::InternalError(absl::StrCat("fdatasync: ", strerror(errno)));
          }
          return absl::OkStatus();
        },
        latency_);
  }

  const LatencyHistogram* latency() const override { return &latency_; }

  absl::Status Stop() override {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    RemoveDir(dir_);
    return absl::OkStatus();
  }

 private:
  LatencyHistogram latency_;
  std::string dir_;
  std::string record_;
  int fd_ = -1;
};

}  // namespace

std::string DurableCommitRecord() {
  return objstore::EncodeLogRecord(1, {{"bench-0", 1, std::string(kDataBytes, 'x')}});
}

std::unique_ptr<Runner> MakeFdatasyncRunner() { return std::make_unique<FdatasyncRunner>(); }

std::unique_ptr<Runner> MakeObjstoreRunner(ObjstoreFigure figure, int clients) {
  return std::make_unique<ObjstoreRunner>(figure, clients);
}

}  // namespace netlayer::bench
