// ObjectServer: the object store's server (after ZEO's StorageServer), written once against
// netlayer::Host, so it runs on posix (netlayer-objstore serve) and in the simulator (the
// objstore scenario). It binds a Storage to an rpc::Server (docs/OBJSTORE.md):
//   sync(epoch, last_tid)  -> (epoch, last_tid, too_old, oids invalidated since)
//   load(oid)              -> (epoch, serial, data) | NOT_FOUND
//   commit(epoch, stores)  -> (epoch, tid) | ABORTED "conflict: oid,..."
//   stats()                -> JSON
// and after each commit pushes "invalidate" (epoch, tid, oids) to every ready session, the
// committer's included (a client that gave up on its commit's reply learns the outcome from it);
// the commits one log sync acknowledges share one push per session (their invalidations back to
// back, wire.h DecodeInvalidations), sent before their replies. Pushes and replies are queued in
// tid order under the server's lock and sent in that order by one thread at a time, outside the
// lock (commits keep arriving meanwhile), so on every session the invalidations of earlier
// transactions precede the reply of a later one.
//
// Durability (docs/OBJSTORE.md, "Durability"). Without ServerOptions::data_dir the store lives in
// memory only: a restart starts empty with a new epoch. With it, the server keeps a transaction
// log (log.h) in that directory through the Env's FileSystem:
//   - a commit is checked and given its tid at once (Storage::Prepare), its record appended, and
//     it is applied, announced (invalidations) and acknowledged only after a sync covering its
//     record succeeded. Commits arriving while a sync runs share the next one (group commit),
//     which also waits (group_commit_wait at most) until as many commits are appended as the
//     last sync covered; the sync runs on the file system's context (SyncAsync), never on a
//     session's thread.
//   - a failed append or sync fails every commit waiting for it kUnavailable ("the transaction
//     log failed ...; the outcome of this commit is unknown"), and every later commit too, until
//     the log is recovered: rewritten in place with the acknowledged records (recover_log_after)
//     or read again by a restart; the log is not trusted again before that.
//   - Start locks the directory, scans the log, truncates a torn tail, replays the records, syncs
//     the log, and serves with the log's epoch and last tid: clients sync by tid and keep their
//     caches across the restart.
//
// Thread rules: every method may be called from any thread. Callbacks (on_commit, on_recover) run
// under the server's lock: they must not call back into the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/file_system.h"
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
  // The directory of the transaction log; "": memory only.
  std::string data_dir;
  // The file system data_dir lives on; null: the host's (host.env().fs()).
  FileSystem* fs = nullptr;
  // Each transaction replayed from the log by Start, in tid order (observers: a scenario's model).
  std::function<void(uint64_t epoch, uint64_t tid, const std::vector<Store>& stores)> on_recover;
  // Group commit: a sync waits up to this, and no longer than the last sync took, for as many
  // commits as sessions committed in the last two syncs (the clients just answered are likely
  // committing again); a lone client's commit starts its sync at once. Zero: a sync starts as
  // soon as none runs.
  absl::Duration group_commit_wait = absl::Microseconds(500);
  // After the log failed, try to recover it in place this long after the failure (and again as
  // long as that fails): re-read the log, keep exactly the acknowledged records (the failed,
  // unacknowledged ones are dropped: their outcome was reported unknown), write them to a new
  // file, sync it, rename it over the log (the directory synced), and take commits again. The
  // rewrite puts every kept byte through a fresh write and sync, so nothing that a failed sync may
  // have left only in the page cache is trusted. If the re-read lacks an acknowledged record,
  // commits stay refused (DataLoss in the error) until a restart. Zero: no recovery in place;
  // commits fail until the server is restarted (the objstore scenario's supervisor restarts it).
  absl::Duration recover_log_after = absl::ZeroDuration();
  // Planted bugs, false only to prove that the objstore scenario catches them (Scenario::Plants;
  // nothing else may turn them off):
  //   sync_before_acknowledging = false: a commit is applied and acknowledged as soon as its
  //     record is appended (in the page cache); the sync follows, and its failure fails nothing
  //     already acknowledged ("ack-before-sync").
  //   truncate_torn_tail = false: recovery replays the valid prefix of the log but leaves the
  //     torn tail in place, so new records are appended after it ("no-torn-tail-truncate").
  bool sync_before_acknowledging = true;
  bool truncate_torn_tail = true;
};

// What Start found in the data directory.
struct RecoveryStats {
  bool durable = false;
  bool fresh = false;        // no log (or a never-used one): a new epoch was written
  uint64_t records = 0;      // transactions replayed
  uint64_t torn_bytes = 0;   // cut off the log's tail
  std::string tail_problem;  // why the scan stopped early ("" if it did not)
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
  bool durable = false;
  uint64_t log_bytes = 0;
  uint64_t log_syncs = 0;         // syncs of the log that completed
  uint64_t log_sync_commits = 0;  // commits those syncs acknowledged (/ log_syncs: the batch)
  uint64_t log_recoveries = 0;    // the log recovered in place (recover_log_after)
  std::string log_failure;        // "" while the log is healthy
  rpc::ServerStats rpc;
  std::string ToJson() const;
};

class ObjectServer {
 public:
  // Listens on `address` (port 0: an ephemeral port; address() tells it). With a data_dir,
  // recovers the log first: FailedPrecondition if another server holds the directory, DataLoss
  // for a corrupt log header, the file system's error if the log cannot be read, cut or synced.
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
  const RecoveryStats& recovery() const { return recovery_; }
  // OK while the log is healthy (or the store is memory-only); else why commits fail.
  absl::Status log_status() const;
  std::map<std::string, Object, std::less<>> Objects() const;
  ObjectServerStats stats() const;
  rpc::Server& rpc() { return *rpc_; }

 private:
  ObjectServer(Host& host, ServerOptions options);
  void Register();
  absl::Status Recover();
  // A commit waiting for its record's sync.
  struct Pending {
    uint64_t tid;
    std::vector<Store> stores;
    rpc::Responder responder;
    uint64_t session = 0;
    bool acknowledged = false;  // the ack-before-sync plant acknowledged it already
  };
  // What Acknowledge decided to send, in order: one push to every ready session, then the replies.
  struct Announcement {
    size_t commits = 0;
    std::string push;  // the commits' invalidations back to back
    std::vector<std::pair<rpc::Responder, std::string>> replies;
  };
  // A commit call, decoded: conflicts, appends, acknowledges (memory only) or waits for a sync.
  void CommitLocked(uint64_t epoch, std::vector<Store> stores, uint64_t session,
                    rpc::Responder responder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Announces applied commits (one sync's, in tid order; or a memory-only one): on_commit for
  // each now, and an Announcement (one push per session with all their invalidations, then
  // each reply) queued for SendAnnouncements.
  void Acknowledge(std::vector<Pending*> group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the queued announcements in order, outside mu_: commits keep arriving (and the next
  // sync may run) while a group's pushes and replies go out. One thread sends at a time; a
  // thread that finds another sending leaves its announcements to it.
  void SendAnnouncements() ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the next sync if none runs and commits wait: at once if as many wait as sessions
  // committed in the last two syncs, else after ServerOptions::group_commit_wait (or as soon
  // as enough arrived).
  void MaybeStartSync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartSync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `generation`: the log's when the sync started (a sync of a log replaced since is ignored).
  void OnSynced(uint64_t generation, uint64_t upto, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnSyncedLocked(uint64_t generation, uint64_t upto, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailLog(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ServerOptions::recover_log_after: schedules RecoverLogInPlace.
  void ScheduleLogRecovery() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rewrites the log with the acknowledged records and reopens it; the error if that failed.
  absl::Status RecoverLogInPlace() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The SyncAsync callbacks reach the server through this: reset by the destructor.
  struct Alive {
    Mutex mu;
    ObjectServer* server ABSL_GUARDED_BY(mu) = nullptr;
  };

  Host& host_;
  const ServerOptions options_;
  std::shared_ptr<rpc::Server> rpc_;
  std::shared_ptr<Listener> listener_;
  mutable Mutex mu_;
  Storage storage_ ABSL_GUARDED_BY(mu_);
  uint64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t conflicts_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> invalidations_sent_ = 0;  // counted by SendAnnouncements
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_too_old_ ABSL_GUARDED_BY(mu_) = 0;
  // ---- The log (data_dir set) ----
  RecoveryStats recovery_;  // set by Start
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<WritableFile> log_ ABSL_GUARDED_BY(mu_);
  FileSystem* fs_ = nullptr;  // the log's (set by Recover)
  std::string log_path_;
  uint64_t log_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by a recovery in place
  bool log_lost_ ABSL_GUARDED_BY(mu_) = false;        // the re-read lacked an acknowledged record
  uint64_t log_recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);  // appended, not yet synced; tid order
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  size_t batch_ ABSL_GUARDED_BY(mu_) = 1;  // commits to wait for (sessions committing lately)
  std::set<uint64_t> last_sessions_ ABSL_GUARDED_BY(mu_);  // that the last sync acknowledged
  bool batch_timer_ ABSL_GUARDED_BY(mu_) = false;          // a group_commit_wait timer is set
  absl::Time sync_started_ ABSL_GUARDED_BY(mu_);           // of the sync running (env's clock)
  // How long the last sync took: the longest a sync waits for more commits (with
  // group_commit_wait). Zero before the first: the first sync starts at once.
  absl::Duration last_sync_took_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  absl::Status log_status_ ABSL_GUARDED_BY(mu_);
  std::deque<Announcement> outbox_ ABSL_GUARDED_BY(mu_);  // acknowledged, not yet sent
  bool sending_ ABSL_GUARDED_BY(mu_) = false;             // a thread is sending the outbox
  uint64_t log_syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t log_sync_commits_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
};

}  // namespace netlayer::objstore
