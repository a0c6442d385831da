#include "netlayer/objstore/server.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/objstore/log.h"

namespace netlayer::objstore {

std::string ObjectServerStats::ToJson() const {
  return absl::StrCat(
      "{\"epoch\":", epoch, ",\"last_tid\":", last_tid, ",\"objects\":", objects,
      ",\"loads\":", loads, ",\"commits\":", commits, ",\"conflicts\":", conflicts,
      ",\"invalidations_sent\":", invalidations_sent, ",\"syncs\":", syncs,
      ",\"syncs_too_old\":", syncs_too_old, ",\"durable\":", durable ? "true" : "false",
      ",\"log_bytes\":", log_bytes, ",\"log_syncs\":", log_syncs,
      ",\"log_sync_commits\":", log_sync_commits, ",\"log_recoveries\":", log_recoveries,
      ",\"log_failed\":", log_failure.empty() ? "false" : "true", ",\"rpc\":", rpc.ToJson(), "}");
}

ObjectServer::ObjectServer(Host& host, ServerOptions options)
    : host_(host), options_(std::move(options)), storage_(options_.storage) {
  rpc::ServerOptions rpc_options = options_.rpc;
  rpc_options.protocol = kProtocol;
  rpc_ = rpc::Server::Create(host_.env(), std::move(rpc_options));
}

absl::StatusOr<std::unique_ptr<ObjectServer>> ObjectServer::Start(Host& host,
                                                                  const Address& address,
                                                                  ServerOptions options) {
  std::unique_ptr<ObjectServer> server(new ObjectServer(host, std::move(options)));
  if (!server->options_.data_dir.empty()) {
    if (absl::Status s = server->Recover(); !s.ok()) return s;
  }
  {
    MutexLock lock(server->alive_->mu);
    server->alive_->server = server.get();
  }
  server->Register();
  auto listener = host.server_factory().Listen(
      address, [rpc = server->rpc_](std::shared_ptr<Connection> c) { rpc->Serve(std::move(c)); });
  if (!listener.ok()) return listener.status();
  server->listener_ = *listener;
  return server;
}

ObjectServer::~ObjectServer() {
  {
    MutexLock lock(alive_->mu);  // waits for a sync callback running now
    alive_->server = nullptr;
  }
  if (listener_ != nullptr) Close();
}

absl::Status ObjectServer::Recover() {
  FileSystem& fs = options_.fs != nullptr ? *options_.fs : host_.env().fs();
  const std::string& dir = options_.data_dir;
  const std::string path = absl::StrCat(dir, "/objstore.log");
  fs_ = &fs;
  log_path_ = path;
  recovery_.durable = true;
  if (absl::Status s = fs.CreateDir(dir); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs.LockFile(absl::StrCat(dir, "/LOCK"));
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);
  std::string bytes;
  if (fs.FileExists(path)) {
    absl::StatusOr<std::string> read = ReadFileToString(fs, path);
    if (!read.ok()) return read.status();
    bytes = std::move(*read);
  }
  absl::StatusOr<ScannedLog> scanned = ScanLog(bytes);
  if (!scanned.ok()) return scanned.status();
  recovery_.fresh = !scanned->has_header;
  recovery_.records = scanned->records.size();
  recovery_.tail_problem = scanned->tail_problem;
  if (scanned->torn() && options_.truncate_torn_tail) {
    recovery_.torn_bytes = scanned->total_bytes - scanned->valid_bytes;
    Log(LogLayer::kRpc)
        .warn("objstore: {}: cutting {} bytes off the log's tail ({})", path, recovery_.torn_bytes,
              scanned->tail_problem);
    if (absl::Status s = fs.Truncate(path, scanned->valid_bytes); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs.NewAppendableFile(path);
  if (!file.ok()) return file.status();
  MutexLock guard(mu_);
  if (scanned->has_header) storage_.SetEpoch(scanned->epoch);
  for (const LogRecord& record : scanned->records) {
    storage_.Replay(record.tid, record.stores);
    if (options_.on_recover) options_.on_recover(storage_.epoch(), record.tid, record.stores);
  }
  if (!scanned->has_header) {
    if (absl::Status s = (*file)->Append(EncodeLogHeader(storage_.epoch())); !s.ok()) return s;
  }
  // What recovery read may have been only in the page cache (the process crashed, the machine
  // did not): synced before anyone sees it.
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  log_ = std::move(*file);
  return absl::OkStatus();
}

absl::Status ObjectServer::log_status() const {
  MutexLock lock(mu_);
  return log_status_;
}

void ObjectServer::Acknowledge(std::vector<Pending*> group) {
  if (group.empty()) return;
  // The group's invalidations, in tid order, in one push per session: a sync acknowledging k
  // commits costs each session one message (and each client one wake-up), not k. Every ready
  // session gets it, the committers' too: a client may have given up on its reply (a deadline,
  // while the server did not read), and then this push is all that tells it that its cached
  // versions of these oids are old (seed 170 of the objstore scenario). Sent before any of the
  // group's replies; the group's commits store disjoint oids (each was prepared against the
  // others, and a prepared version is never loaded), so a reply still finds no invalidation of
  // its own oids from a later tid before it.
  Announcement a;
  a.commits = group.size();
  for (Pending* p : group) {
    ++commits_;
    if (options_.on_commit) options_.on_commit(storage_.epoch(), p->tid, p->stores);
    Invalidation inv{storage_.epoch(), p->tid, {}};
    for (const Store& s : p->stores) inv.oids.push_back(s.oid);
    a.push += EncodeInvalidation(inv);
    a.replies.emplace_back(std::move(p->responder),
                           Writer().U64(storage_.epoch()).U64(p->tid).Take());
  }
  outbox_.push_back(std::move(a));
}

void ObjectServer::SendAnnouncements() {
  {
    MutexLock lock(mu_);
    if (sending_) return;  // the thread sending now sends ours after its own, in order
    sending_ = true;
  }
  for (;;) {
    std::deque<Announcement> batch;
    {
      MutexLock lock(mu_);
      if (outbox_.empty()) {
        sending_ = false;
        return;
      }
      batch.swap(outbox_);
    }
    for (Announcement& a : batch) {
      for (const auto& session : rpc_->Sessions()) {
        if (!session->ready()) continue;
        if (session->Push("invalidate", a.push).ok()) invalidations_sent_ += a.commits;
      }
      for (auto& [responder, reply] : a.replies) (void)responder.Reply(reply);
    }
  }
}

void ObjectServer::MaybeStartSync() {
  if (syncing_ || pending_.empty() || !log_status_.ok()) return;
  // Fewer commits wait than the last syncs covered: their clients are likely sending the rest
  // now (they have just had their replies). Wait for them, a little: at most as long as the last
  // sync took, since waiting longer than a sync costs the waiting commits more than a sync of
  // their own would cost the late ones (a fast disk: start at once; a slow one: wait up to
  // group_commit_wait).
  const absl::Duration wait = std::min(options_.group_commit_wait, last_sync_took_);
  if (pending_.size() >= batch_ || wait <= absl::ZeroDuration()) {
    StartSync();
    return;
  }
  if (batch_timer_) return;
  batch_timer_ = true;
  Env& env = host_.env();
  env.RunAt(env.Now() + wait, [alive = alive_] {
    MutexLock lock(alive->mu);
    if (alive->server == nullptr) return;
    ObjectServer& server = *alive->server;
    MutexLock guard(server.mu_);
    server.batch_timer_ = false;
    if (!server.syncing_ && !server.pending_.empty() && server.log_status_.ok()) {
      server.StartSync();
    }
  });
}

void ObjectServer::StartSync() {
  NETLAYER_ASSERT(!syncing_ && !pending_.empty(), "objstore: one log sync at a time");
  syncing_ = true;
  sync_started_ = host_.env().Now();
  const uint64_t upto = pending_.back().tid;
  log_->SyncAsync([alive = alive_, generation = log_generation_, upto](absl::Status status) {
    MutexLock lock(alive->mu);
    if (alive->server != nullptr) alive->server->OnSynced(generation, upto, status);
  });
}

void ObjectServer::OnSynced(uint64_t generation, uint64_t upto, const absl::Status& status) {
  {
    MutexLock lock(mu_);
    OnSyncedLocked(generation, upto, status);
  }
  SendAnnouncements();
}

void ObjectServer::OnSyncedLocked(uint64_t generation, uint64_t upto, const absl::Status& status) {
  if (generation != log_generation_) return;  // a sync of a log replaced since (cannot run)
  syncing_ = false;
  last_sync_took_ = host_.env().Now() - sync_started_;
  if (!log_status_.ok()) return;  // failed meanwhile: its commits were failed then
  if (!status.ok()) {
    FailLog(status);
    return;
  }
  ++log_syncs_;
  std::set<uint64_t> sessions;
  std::vector<Pending> synced;
  while (!pending_.empty() && pending_.front().tid <= upto) {
    sessions.insert(pending_.front().session);
    synced.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  std::vector<Pending*> group;
  for (Pending& p : synced) {
    if (p.acknowledged) continue;  // the ack-before-sync plant
    storage_.Apply(p.tid, p.stores);
    ++log_sync_commits_;
    group.push_back(&p);
  }
  Acknowledge(std::move(group));
  // The batch to wait for: the sessions that committed in this sync or the one before (two
  // groups of clients taking turns at the disk merge into one batch).
  std::set<uint64_t> recent = sessions;
  recent.insert(last_sessions_.begin(), last_sessions_.end());
  batch_ = std::max<size_t>(recent.size(), 1);
  last_sessions_ = std::move(sessions);
  MaybeStartSync();
}

void ObjectServer::FailLog(const absl::Status& why) {
  const std::string what = absl::StrCat(
      "objstore: the transaction log failed (", why.message(), "); no commit is acknowledged ",
      options_.recover_log_after > absl::ZeroDuration()
          ? absl::StrCat("until the log is recovered (the server retries every ",
                         absl::FormatDuration(options_.recover_log_after),
                         ") or the server restarts and recovers it")
          : "until the server restarts and recovers it");
  Log(LogLayer::kRpc).error("{}", what);
  log_status_ = absl::UnavailableError(what);
  ScheduleLogRecovery();
  for (Pending& p : pending_) {
    if (p.acknowledged) continue;  // the ack-before-sync plant: too late to tell anyone
    (void)p.responder.Fail(
        absl::UnavailableError(absl::StrCat(what, "; the outcome of this commit is unknown")));
  }
  pending_.clear();
  storage_.AbortPending();
}

void ObjectServer::ScheduleLogRecovery() {
  if (options_.recover_log_after <= absl::ZeroDuration() || log_lost_) return;
  Env& env = host_.env();
  env.RunAt(env.Now() + options_.recover_log_after, [alive = alive_] {
    MutexLock lock(alive->mu);
    if (alive->server == nullptr) return;
    ObjectServer& server = *alive->server;
    MutexLock guard(server.mu_);
    if (server.log_status_.ok()) return;
    if (server.syncing_) {  // the failed log's sync still runs: after it
      server.ScheduleLogRecovery();
      return;
    }
    const absl::Status recovered = server.RecoverLogInPlace();
    if (recovered.ok()) {
      server.log_status_ = absl::OkStatus();
      ++server.log_recoveries_;
      return;
    }
    const bool lost = recovered.code() == absl::StatusCode::kDataLoss;
    Log(LogLayer::kRpc)
        .error("objstore: recovering the transaction log in place failed: {}{}",
               recovered.ToString(),
               lost ? "; commits stay refused until a restart" : "; retrying");
    if (lost) {
      server.log_lost_ = true;
      server.log_status_ = absl::UnavailableError(absl::StrCat(
          "objstore: the transaction log failed and re-reading it found acknowledged "
          "records missing (",
          recovered.message(), "); no commit is acknowledged until the server restarts"));
      return;
    }
    server.ScheduleLogRecovery();
  });
}

absl::Status ObjectServer::RecoverLogInPlace() {
  NETLAYER_ASSERT(log_ != nullptr && fs_ != nullptr, "objstore: recovery of a durable log");
  FileSystem& fs = *fs_;
  (void)log_->Close();
  absl::StatusOr<std::string> bytes = ReadFileToString(fs, log_path_);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<ScannedLog> scanned = ScanLog(*bytes);
  if (!scanned.ok()) return scanned.status();
  const uint64_t acknowledged = storage_.last_tid();
  if (!scanned->has_header || scanned->epoch != storage_.epoch() ||
      scanned->records.size() < acknowledged ||
      (acknowledged > 0 && scanned->records[acknowledged - 1].tid != acknowledged)) {
    return absl::DataLossError(absl::StrCat(
        log_path_, " holds ", scanned->records.size(), " valid records of epoch ", scanned->epoch,
        ", but ", acknowledged, " of epoch ", storage_.epoch(), " were acknowledged (",
        scanned->tail_problem.empty() ? "no tail problem" : scanned->tail_problem, ")"));
  }
  // Every kept byte goes through a new write and sync: a page that a failed sync left in the page
  // cache (clean, but never written) is not trusted.
  const std::string tmp = absl::StrCat(log_path_, ".recover");
  if (fs.FileExists(tmp)) {
    if (absl::Status s = fs.Remove(tmp); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> out = fs.NewAppendableFile(tmp);
  if (!out.ok()) return out.status();
  std::string data = EncodeLogHeader(storage_.epoch());
  for (uint64_t i = 0; i < acknowledged; ++i) {
    data += EncodeLogRecord(scanned->records[i].tid, scanned->records[i].stores);
  }
  if (absl::Status s = (*out)->Append(data); !s.ok()) return s;
  if (absl::Status s = (*out)->Sync(); !s.ok()) return s;
  if (absl::Status s = (*out)->Close(); !s.ok()) return s;
  if (absl::Status s = fs.Rename(tmp, log_path_); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs.NewAppendableFile(log_path_);
  if (!file.ok()) return file.status();
  Log(LogLayer::kRpc)
      .warn(
          "objstore: recovered the transaction log in place: {} acknowledged records rewritten "
          "to {}, {} unacknowledged dropped; commits are taken again",
          acknowledged, log_path_, scanned->records.size() - acknowledged);
  log_ = std::move(*file);
  ++log_generation_;
  return absl::OkStatus();
}

void ObjectServer::Close() {
  listener_->Close();
  rpc_->Close();
}

absl::Status ObjectServer::Shutdown(absl::Time deadline) {
  listener_->Close();
  return rpc_->Shutdown(deadline);
}

void ObjectServer::CommitLocked(uint64_t epoch, std::vector<Store> stores, uint64_t session,
                                rpc::Responder responder) {
  if (!log_status_.ok()) {
    (void)responder.Fail(log_status_);
    return;
  }
  absl::StatusOr<uint64_t> tid = storage_.Prepare(epoch, stores);
  if (!tid.ok()) {
    if (tid.status().code() == absl::StatusCode::kAborted) ++conflicts_;
    (void)responder.Fail(tid.status());
    return;
  }
  if (log_ == nullptr) {  // memory only
    storage_.Apply(*tid, stores);
    Pending now{*tid, std::move(stores), std::move(responder), session};
    Acknowledge({&now});
    return;
  }
  const absl::Status appended = log_->Append(EncodeLogRecord(*tid, stores));
  if (!options_.sync_before_acknowledging && appended.ok()) {  // the planted bug
    storage_.Apply(*tid, stores);
    Pending now{*tid, std::move(stores), std::move(responder), session};
    Acknowledge({&now});
    now.acknowledged = true;
    pending_.push_back(std::move(now));
    MaybeStartSync();
    return;
  }
  pending_.push_back(Pending{*tid, std::move(stores), std::move(responder), session});
  if (!appended.ok()) {
    FailLog(appended);
    return;
  }
  MaybeStartSync();
}

void ObjectServer::Register() {
  rpc_->Register("sync", [this](const rpc::Request& request, rpc::Responder responder) {
    Reader r(request.payload);
    absl::StatusOr<uint64_t> epoch = r.U64();
    absl::StatusOr<uint64_t> tid = epoch.ok() ? r.U64() : epoch;
    if (!tid.ok() || !r.End().ok()) {
      (void)responder.Fail(absl::InvalidArgumentError("objstore: malformed sync"));
      return;
    }
    MutexLock lock(mu_);
    const Storage::Since since = storage_.InvalidatedSince(*epoch, *tid);
    ++syncs_;
    if (since.too_old) ++syncs_too_old_;
    Writer w;
    w.U64(storage_.epoch()).U64(storage_.last_tid()).U8(since.too_old ? 1 : 0);
    w.U32(static_cast<uint32_t>(since.oids.size()));
    for (const std::string& oid : since.oids) w.Bytes(oid);
    (void)responder.Reply(w.Take());
  });

  rpc_->Register("load", [this](const rpc::Request& request, rpc::Responder responder) {
    std::string reply;
    {
      MutexLock lock(mu_);
      ++loads_;
      absl::StatusOr<Object> object = storage_.Load(request.payload);
      if (!object.ok()) {
        (void)responder.Fail(object.status());
        return;
      }
      reply = Writer().U64(storage_.epoch()).U64(object->tid).Bytes(object->data).Take();
    }
    if (!options_.load_delay) {
      (void)responder.Reply(reply);
      return;
    }
    // The data was read now; the reply leaves later (a slow storage read).
    Env& env = host_.env();
    env.RunAt(env.Now() + options_.load_delay(),
              [responder = std::move(responder), reply = std::move(reply)]() mutable {
                (void)responder.Reply(reply);
              });
  });

  rpc_->Register("commit", [this](const rpc::Request& request, rpc::Responder responder) {
    uint64_t epoch = 0;
    std::vector<Store> stores;
    if (absl::Status s = DecodeStores(request.payload, epoch, stores); !s.ok()) {
      (void)responder.Fail(s);
      return;
    }
    {
      MutexLock lock(mu_);
      CommitLocked(epoch, std::move(stores), request.session.id(), std::move(responder));
    }
    SendAnnouncements();
  });

  rpc_->Register("stats", [this](const rpc::Request&, rpc::Responder responder) {
    (void)responder.Reply(stats().ToJson());
  });
}

uint64_t ObjectServer::epoch() const {
  MutexLock lock(mu_);
  return storage_.epoch();
}

uint64_t ObjectServer::last_tid() const {
  MutexLock lock(mu_);
  return storage_.last_tid();
}

std::map<std::string, Object, std::less<>> ObjectServer::Objects() const {
  MutexLock lock(mu_);
  return storage_.objects();
}

ObjectServerStats ObjectServer::stats() const {
  ObjectServerStats out;
  {
    MutexLock lock(mu_);
    out.epoch = storage_.epoch();
    out.last_tid = storage_.last_tid();
    out.objects = storage_.size();
    out.loads = loads_;
    out.commits = commits_;
    out.conflicts = conflicts_;
    out.invalidations_sent = invalidations_sent_;
    out.syncs = syncs_;
    out.syncs_too_old = syncs_too_old_;
    out.durable = log_ != nullptr;
    out.log_bytes = log_ != nullptr ? log_->Size() : 0;
    out.log_syncs = log_syncs_;
    out.log_sync_commits = log_sync_commits_;
    out.log_recoveries = log_recoveries_;
    out.log_failure = log_status_.ok() ? "" : std::string(log_status_.message());
  }
  out.rpc = rpc_->stats();
  return out;
}

}  // namespace netlayer::objstore
