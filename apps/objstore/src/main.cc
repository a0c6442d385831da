// netlayer-objstore: the object store's server and client commands, on posix.
//
//   netlayer-objstore serve --listen 127.0.0.1:8100 [limits and timeouts]
//   netlayer-objstore get   --server 127.0.0.1:8100 OID
//   netlayer-objstore put   --server 127.0.0.1:8100 OID DATA
//   netlayer-objstore watch --server 127.0.0.1:8100 [--count N]
//   netlayer-objstore stats --server 127.0.0.1:8100
//
// Exit codes: 0 success; 1 failure (network, server); 2 usage; 3 no such object; 4 conflict.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "netlayer/core/log.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#include "netlayer/posix/runtime.h"
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
  posix::Runtime runtime;
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
  auto server = objstore::ObjectServer::Start(runtime, *address, std::move(options));
  if (!server.ok()) return Fail(server.status());
  spdlog::info("objstore serving on {} (epoch {})", (*server)->address().ToString(),
               (*server)->epoch());
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
};

absl::StatusOr<std::shared_ptr<objstore::Client>> Connect(posix::Runtime& runtime,
                                                          const ClientFlags& f) {
  auto address = Address::Parse(f.server);
  if (!address.ok()) return address.status();
  objstore::ClientOptions options;
  options.connect.max_attempts = 3;
  auto client = objstore::Client::Create(runtime, {*address}, options);
  if (!client.ok()) return client.status();
  if (!(*client)->WaitSynced(absl::Now() + absl::Seconds(f.timeout_s))) {
    return absl::UnavailableError(absl::StrCat("cannot reach the objstore server at ", f.server));
  }
  return client;
}

int Get(const ClientFlags& f) {
  posix::Runtime runtime;
  auto client = Connect(runtime, f);
  if (!client.ok()) return Fail(client.status());
  auto loaded = (*client)->Load(f.oid, absl::Now() + absl::Seconds(f.timeout_s));
  (*client)->Close();
  if (!loaded.ok()) return Fail(loaded.status());
  std::printf("%s\n", loaded->data.c_str());
  std::fprintf(stderr, "serial %llu\n", static_cast<unsigned long long>(loaded->serial));
  return kOk;
}

int Put(const ClientFlags& f) {
  posix::Runtime runtime;
  auto client = Connect(runtime, f);
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
  return kOk;
}

int Watch(const ClientFlags& f) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  posix::Runtime runtime;
  auto address = Address::Parse(f.server);
  if (!address.ok()) return Fail(address.status());
  auto seen = std::make_shared<std::atomic<int>>(0);
  objstore::ClientOptions options;
  options.on_invalidation = [seen, count = f.count](const objstore::Invalidation& inv) {
    std::printf("invalidate epoch %llu tid %llu: %s\n", static_cast<unsigned long long>(inv.epoch),
                static_cast<unsigned long long>(inv.tid), absl::StrJoin(inv.oids, " ").c_str());
    std::fflush(stdout);
    if (++*seen == count) kill(getpid(), SIGTERM);  // --count reached: stop like a signal
  };
  options.on_synced = [](uint64_t epoch, uint64_t tid) {
    std::printf("watching epoch %llu from tid %llu\n", static_cast<unsigned long long>(epoch),
                static_cast<unsigned long long>(tid));
    std::fflush(stdout);
  };
  auto client = objstore::Client::Create(runtime, {*address}, options);
  if (!client.ok()) return Fail(client.status());
  int signal = 0;
  sigwait(&signals, &signal);
  (*client)->Close();
  return kOk;
}

int Stats(const ClientFlags& f) {
  posix::Runtime runtime;
  auto client = Connect(runtime, f);
  if (!client.ok()) return Fail(client.status());
  auto json = (*client)->ServerStats(absl::Now() + absl::Seconds(f.timeout_s));
  (*client)->Close();
  if (!json.ok()) return Fail(json.status());
  std::printf("%s\n", json->c_str());
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
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

  ClientFlags client;
  auto add_common = [&](CLI::App* c) {
    c->add_option("--server", client.server, "the server's address");
    c->add_option("--timeout", client.timeout_s, "seconds to wait for the server");
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
