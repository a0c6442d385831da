// ObjectServer: the object store's server (after ZEO's StorageServer), written once against
// netlayer::Host, so it runs on posix (netlayer-objstore serve) and in the simulator (the
// objstore scenario). It binds a Storage to an rpc::Server (docs/OBJSTORE.md):
//   sync(epoch, last_tid)  -> (epoch, last_tid, too_old, oids invalidated since)
//   load(oid)              -> (epoch, serial, data) | NOT_FOUND
//   commit(epoch, stores)  -> (epoch, tid) | ABORTED "conflict: oid,..."
//   stats()                -> JSON
// and after each commit pushes "invalidate" (epoch, tid, oids) to every other ready session.
// A commit's pushes and its reply are sent under the server's lock, so on every session the
// invalidations of earlier transactions precede the reply of a later one.
//
// Thread rules: every method may be called from any thread. Callbacks (on_commit) run under the
// server's lock: they must not call back into the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/host.h"
#include "netlayer/core/mutex.h"
#include "netlayer/objstore/storage.h"
#include "netlayer/rpc/server.h"

namespace netlayer::objstore {

inline constexpr char kProtocol[] = "netlayer-objstore";

struct ServerOptions {
  StorageOptions storage;
  rpc::ServerOptions rpc;  // its protocol is set to kProtocol
  // Each commit, in tid order, under the server's lock (observers: a scenario's model, logs).
  std::function<void(uint64_t epoch, uint64_t tid, const std::vector<Store>& stores)> on_commit;
  // Delays each load's reply by what it returns; the data is read at once. Models a storage
  // read's latency, so a reply may cross an invalidation (ZEO issue 155). Empty: no delay.
  std::function<absl::Duration()> load_delay;
};

struct ObjectServerStats {
  uint64_t epoch = 0;
  uint64_t last_tid = 0;
  uint64_t objects = 0;
  uint64_t loads = 0;
  uint64_t commits = 0;
  uint64_t conflicts = 0;
  uint64_t invalidations_sent = 0;
  uint64_t syncs = 0;
  uint64_t syncs_too_old = 0;
  rpc::ServerStats rpc;
  std::string ToJson() const;
};

class ObjectServer {
 public:
  // Listens on `address` (port 0: an ephemeral port; address() tells it).
  static absl::StatusOr<std::unique_ptr<ObjectServer>> Start(Host& host, const Address& address,
                                                             ServerOptions options = {});
  // Closes the listener and every session.
  ~ObjectServer();

  Address address() const { return listener_->address(); }
  // Graceful: stops accepting, answers the calls in flight (or fails them kUnavailable at
  // `deadline`), sends what is queued, closes every session (rpc::Server::Shutdown).
  absl::Status Shutdown(absl::Time deadline);
  void Close();

  uint64_t epoch() const;
  uint64_t last_tid() const;
  std::map<std::string, Object, std::less<>> Objects() const;
  ObjectServerStats stats() const;
  rpc::Server& rpc() { return *rpc_; }

 private:
  ObjectServer(Host& host, ServerOptions options);
  void Register();

  Host& host_;
  const ServerOptions options_;
  std::shared_ptr<rpc::Server> rpc_;
  std::shared_ptr<Listener> listener_;
  mutable Mutex mu_;
  Storage storage_ ABSL_GUARDED_BY(mu_);
  uint64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t conflicts_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t invalidations_sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_too_old_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace netlayer::objstore
