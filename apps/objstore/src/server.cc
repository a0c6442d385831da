#include "netlayer/objstore/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/log.h"

namespace netlayer::objstore {

std::string ObjectServerStats::ToJson() const {
  return absl::StrCat("{\"epoch\":", epoch, ",\"last_tid\":", last_tid, ",\"objects\":", objects,
                      ",\"loads\":", loads, ",\"commits\":", commits, ",\"conflicts\":", conflicts,
                      ",\"invalidations_sent\":", invalidations_sent, ",\"syncs\":", syncs,
                      ",\"syncs_too_old\":", syncs_too_old, ",\"rpc\":", rpc.ToJson(), "}");
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
  server->Register();
  auto listener = host.server_factory().Listen(
      address, [rpc = server->rpc_](std::shared_ptr<Connection> c) { rpc->Serve(std::move(c)); });
  if (!listener.ok()) return listener.status();
  server->listener_ = *listener;
  return server;
}

ObjectServer::~ObjectServer() { Close(); }

void ObjectServer::Close() {
  listener_->Close();
  rpc_->Close();
}

absl::Status ObjectServer::Shutdown(absl::Time deadline) {
  listener_->Close();
  return rpc_->Shutdown(deadline);
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
    MutexLock lock(mu_);
    absl::StatusOr<uint64_t> tid = storage_.Commit(epoch, stores);
    if (!tid.ok()) {
      if (tid.status().code() == absl::StatusCode::kAborted) ++conflicts_;
      (void)responder.Fail(tid.status());
      return;
    }
    ++commits_;
    if (options_.on_commit) options_.on_commit(storage_.epoch(), *tid, stores);
    Invalidation inv{storage_.epoch(), *tid, {}};
    for (const Store& s : stores) inv.oids.push_back(s.oid);
    const std::string push = EncodeInvalidation(inv);
    for (const auto& session : rpc_->Sessions()) {
      if (session.get() == &request.session || !session->ready()) continue;
      if (session->Push("invalidate", push).ok()) ++invalidations_sent_;
    }
    (void)responder.Reply(Writer().U64(storage_.epoch()).U64(*tid).Take());
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
  }
  out.rpc = rpc_->stats();
  return out;
}

}  // namespace netlayer::objstore
