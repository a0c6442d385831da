// The durable object server on posix, for real: netlayer-objstore serve --data DIR killed with
// SIGKILL at random points of a stream of commits from several clients, many times; after each
// restart every acknowledged commit is there and no transaction is partly there. And an in-process
// server whose fdatasync fails with EIO (FaultFileSys): commits fail with a clear error, nothing
// unsynced is acknowledged, and a restart recovers what was acknowledged; with recover_log_after
// (what serve does) the server rewrites its log in place and takes commits again, and while the
// disk stays full it keeps refusing them.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/log.h"
#include "netlayer/objstore/server.h"
#include "netlayer/posix/runtime.h"
#include "netlayer/threaded/file_system.h"

extern char** environ;

namespace netlayer::objstore {
namespace {

constexpr int kClients = 4;
constexpr int kObjectsPerCommit = 3;

std::string TempDir() {
  char tmpl[] = "/tmp/netlayer-objstore-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  return tmpl;
}

// netlayer-objstore serve --data DIR on an ephemeral port, as a child process.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& data) {
    int out[2];
    if (pipe(out) != 0) std::abort();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::string bin = NETLAYER_OBJSTORE_BIN;
    std::vector<std::string> args = {bin, "serve", "--listen", "127.0.0.1:0", "--data", data};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
      std::abort();
    }
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[256];
    while (fgets(line, sizeof line, f) != nullptr) {
      std::string s = line;
      if (s.rfind("listening on ", 0) == 0) {
        address_ = s.substr(13, s.size() - 14);
        break;
      }
    }
    fclose(f);
  }
  ~ServerProcess() { Kill(); }
  const std::string& address() const { return address_; }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::string address_;
};

// A client synced with the server (commits name its epoch), or null.
std::shared_ptr<Client> Connect(Host& host, const Address& address, int max_attempts = 0) {
  ClientOptions options;
  if (max_attempts > 0) options.connect.max_attempts = max_attempts;
  auto client = Client::Create(host, {address}, options);
  if (!client.ok()) return nullptr;
  if (!(*client)->WaitSynced(absl::Now() + absl::Seconds(10))) {
    (*client)->Close();
    return nullptr;
  }
  return *client;
}

std::string Oid(int client, int k) { return absl::StrCat("c", client, "_", k); }

// A client's state across server lives: its last acknowledged and last attempted sequence
// numbers, and the serials its next commit names.
struct Writer {
  int id = 0;
  uint64_t acked = 0;      // highest sequence number acknowledged
  uint64_t attempted = 0;  // highest sequence number sent
  uint64_t serials[kObjectsPerCommit] = {};
};

// Commits sequence numbers until the server dies (a commit fails).
void RunWriter(Host& host, const Address& address, Writer& w) {
  std::shared_ptr<Client> client = Connect(host, address, 1);
  if (client == nullptr) return;
  while (true) {
    const uint64_t seq = w.attempted + 1;
    std::vector<Store> stores;
    for (int k = 0; k < kObjectsPerCommit; ++k) {
      stores.push_back(Store{Oid(w.id, k), w.serials[k], absl::StrCat("c", w.id, "/", seq)});
    }
    w.attempted = seq;
    absl::StatusOr<uint64_t> tid = client->Commit(stores, absl::Now() + absl::Seconds(10));
    if (!tid.ok()) break;
    w.acked = seq;
    for (uint64_t& s : w.serials) s = *tid;
  }
  client->Close();
}

// After a restart: each writer's objects hold one whole transaction (the same sequence number
// in all), no older than its last acknowledged one and no newer than its last attempt.
void Verify(Host& host, const Address& address, std::vector<Writer>& writers, int round) {
  std::shared_ptr<Client> c = Connect(host, address);
  ASSERT_NE(c, nullptr);
  auto client = &c;
  for (Writer& w : writers) {
    uint64_t seq = 0;
    for (int k = 0; k < kObjectsPerCommit; ++k) {
      absl::StatusOr<Loaded> loaded =
          (*client)->Load(Oid(w.id, k), absl::Now() + absl::Seconds(10));
      uint64_t got = 0;
      uint64_t serial = 0;
      if (loaded.ok()) {
        std::vector<std::string> parts = absl::StrSplit(loaded->data, '/');
        ASSERT_EQ(parts.size(), 2u) << loaded->data;
        ASSERT_TRUE(absl::SimpleAtoi(parts[1], &got)) << loaded->data;
        serial = loaded->serial;
      } else {
        ASSERT_EQ(loaded.status().code(), absl::StatusCode::kNotFound) << loaded.status();
      }
      if (k == 0) seq = got;
      ASSERT_EQ(got, seq) << "round " << round << ": a partial transaction of writer " << w.id
                          << " (" << Oid(w.id, 0) << " at " << seq << ", " << Oid(w.id, k) << " at "
                          << got << ")";
      w.serials[k] = serial;
    }
    ASSERT_GE(seq, w.acked) << "round " << round << ": writer " << w.id << "'s acknowledged commit "
                            << w.acked << " is lost";
    ASSERT_LE(seq, w.attempted) << "round " << round;
    w.acked = seq;
    w.attempted = seq;
  }
  (*client)->Close();
}

TEST(DurablePosixTest, KillNineDuringCommitsLosesNoAcknowledgedCommit) {
  const std::string dir = TempDir();
  const std::string data = dir + "/data";
  posix::Runtime runtime;
  std::vector<Writer> writers(kClients);
  for (int i = 0; i < kClients; ++i) writers[i].id = i;
  std::mt19937 rng(12345);  // the kill points (test-side only; any spread will do)
  uint64_t total_acked = 0;
  uint64_t epoch = 0;
  const int rounds = 25;
  for (int round = 0; round < rounds; ++round) {
    ServerProcess server(data);
    ASSERT_FALSE(server.address().empty()) << "the server did not start in round " << round;
    absl::StatusOr<Address> address = Address::Parse(server.address());
    ASSERT_TRUE(address.ok());
    if (round > 0) {
      Verify(runtime, *address, writers, round);
      if (::testing::Test::HasFatalFailure()) return;
    }
    {
      auto c = Client::Create(runtime, {*address});
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE((*c)->WaitSynced(absl::Now() + absl::Seconds(10)));
      if (round == 0) epoch = (*c)->epoch();
      EXPECT_EQ((*c)->epoch(), epoch) << "the epoch survives restarts";
      (*c)->Close();
    }
    std::vector<std::thread> threads;
    for (Writer& w : writers) {
      threads.emplace_back([&runtime, a = *address, &w] { RunWriter(runtime, a, w); });
    }
    // Kill at a random point: most rounds while commits stream, a few at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    server.Kill();
    for (std::thread& t : threads) t.join();
  }
  ServerProcess last(data);
  absl::StatusOr<Address> address = Address::Parse(last.address());
  ASSERT_TRUE(address.ok());
  Verify(runtime, *address, writers, rounds);
  for (const Writer& w : writers) total_acked += w.acked;  // sequence numbers count from 1
  EXPECT_GT(total_acked, 0u);
  std::printf("%d kills, %llu commits acknowledged\n", rounds,
              static_cast<unsigned long long>(total_acked));
  std::system(("rm -rf " + dir).c_str());
}

TEST(DurablePosixTest, EioOnFsyncFailsCommitsClearlyAndAcknowledgesNothingUnsynced) {
  const std::string dir = TempDir();
  posix::Runtime runtime;
  threaded::FaultFileSys sys;
  threaded::PosixFileSystem fs(sys);
  ServerOptions options;
  options.data_dir = dir + "/data";
  options.fs = &fs;
  std::vector<uint64_t> acked;
  {
    auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> c = Connect(runtime, (*server)->address());
    ASSERT_NE(c, nullptr);
    auto client = &c;
    uint64_t serial = 0;
    for (int i = 0; i < 5; ++i) {
      auto tid = (*client)->Commit({Store{"x", serial, absl::StrCat("v", i)}},
                                   absl::Now() + absl::Seconds(10));
      ASSERT_TRUE(tid.ok()) << tid.status();
      serial = *tid;
    }
    // The device fails: the commit waiting for the sync fails, clearly.
    sys.Inject(threaded::FaultFileSys::Op::kFdatasync, {EIO});
    auto failed = (*client)->Commit({Store{"x", serial, "lost?"}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("transaction log failed"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("Input/output error"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("outcome of this commit is unknown"),
              std::string::npos)
        << failed.status();
    // The next fdatasync would succeed, but the log is not trusted again: commits keep failing.
    auto later = (*client)->Commit({Store{"y", 0, "later"}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(later.status().code(), absl::StatusCode::kUnavailable) << later.status();
    EXPECT_FALSE((*server)->log_status().ok());
    // Nothing unsynced became visible.
    auto loaded = (*client)->Load("x", absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded->data, "v4");
    EXPECT_EQ((*server)->last_tid(), 5u);
    EXPECT_EQ((*server)->Objects().count("y"), 0u);
    (*client)->Close();
  }
  // Restarted on a healthy disk: every acknowledged commit is there; commits work again.
  options.fs = nullptr;
  auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GE((*server)->last_tid(), 5u);
  std::shared_ptr<Client> c = Connect(runtime, (*server)->address());
  ASSERT_NE(c, nullptr);
  auto client = &c;
  auto loaded = (*client)->Load("x", absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->data == "v4" || loaded->data == "lost?") << loaded->data;
  EXPECT_TRUE((*client)
                  ->Commit({Store{"x", loaded->serial, "after"}}, absl::Now() + absl::Seconds(10))
                  .ok());
  (*client)->Close();
  server->reset();
  std::system(("rm -rf " + dir).c_str());
}

TEST(DurablePosixTest, EnospcOnAppendFailsTheCommitAndRecoveryCutsThePartialRecord) {
  const std::string dir = TempDir();
  posix::Runtime runtime;
  threaded::FaultFileSys sys;
  threaded::PosixFileSystem fs(sys);
  ServerOptions options;
  options.data_dir = dir + "/data";
  options.fs = &fs;
  {
    auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> c = Connect(runtime, (*server)->address());
    ASSERT_NE(c, nullptr);
    auto client = &c;
    ASSERT_TRUE((*client)->Commit({Store{"x", 0, "kept"}}, absl::Now() + absl::Seconds(10)).ok());
    // 10 bytes of the next record reach the file, then the disk is full.
    sys.Inject(threaded::FaultFileSys::Op::kWrite, {0, 10, 1});
    sys.Inject(threaded::FaultFileSys::Op::kWrite, {ENOSPC, 0, 1});
    auto failed =
        (*client)->Commit({Store{"x", 1, std::string(100, 'z')}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("No space left"), std::string::npos)
        << failed.status();
    (*client)->Close();
  }
  options.fs = nullptr;
  auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->recovery().torn_bytes, 10u);
  EXPECT_EQ((*server)->last_tid(), 1u);
  EXPECT_EQ((*server)->Objects().at("x").data, "kept");
  server->reset();
  std::system(("rm -rf " + dir).c_str());
}

// Commits `store` until one is not refused kUnavailable (the log is being recovered), or 10 s.
absl::StatusOr<uint64_t> CommitOnceRecovered(Client& client, const Store& store) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::StatusOr<uint64_t> tid = client.Commit({store}, deadline);
    if (tid.status().code() != absl::StatusCode::kUnavailable || absl::Now() > deadline) {
      return tid;
    }
    absl::SleepFor(absl::Milliseconds(5));  // polls the outcome; nothing waits on the timing
  }
}

TEST(DurablePosixTest, AfterEioTheLogIsRewrittenInPlaceWithTheAcknowledgedRecordsOnly) {
  const std::string dir = TempDir();
  posix::Runtime runtime;
  threaded::FaultFileSys sys;
  threaded::PosixFileSystem fs(sys);
  ServerOptions options;
  options.data_dir = dir + "/data";
  options.fs = &fs;
  options.recover_log_after = absl::Milliseconds(20);
  {
    auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> client = Connect(runtime, (*server)->address());
    ASSERT_NE(client, nullptr);
    uint64_t serial = 0;
    for (int i = 0; i < 3; ++i) {
      auto tid = client->Commit({Store{"x", serial, absl::StrCat("v", i)}},
                                absl::Now() + absl::Seconds(10));
      ASSERT_TRUE(tid.ok()) << tid.status();
      serial = *tid;
    }
    sys.Inject(threaded::FaultFileSys::Op::kFdatasync, {EIO});
    auto failed = client->Commit({Store{"x", serial, "lost?"}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("Input/output error"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("until the log is recovered"), std::string::npos)
        << failed.status();
    // The server rewrites the log and takes commits again; the failed commit's tid is reused.
    auto after = CommitOnceRecovered(*client, Store{"y", 0, "after"});
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(*after, 4u);
    EXPECT_TRUE((*server)->log_status().ok());
    EXPECT_EQ((*server)->stats().log_recoveries, 1u);
    EXPECT_EQ((*server)->Objects().at("x").data, "v2");
    client->Close();
  }
  // On disk: the acknowledged records, and nothing of the failed commit.
  threaded::PosixFileSystem real;
  auto bytes = ReadFileToString(real, options.data_dir + "/objstore.log");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto scanned = ScanLog(*bytes);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_FALSE(scanned->torn());
  ASSERT_EQ(scanned->records.size(), 4u);
  EXPECT_EQ(scanned->records[2].stores.at(0).data, "v2");
  EXPECT_EQ(scanned->records[3].stores.at(0).oid, "y");
  EXPECT_FALSE(real.FileExists(options.data_dir + "/objstore.log.recover"));
  options.fs = nullptr;
  auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->last_tid(), 4u);
  EXPECT_EQ((*server)->Objects().at("y").data, "after");
  server->reset();
  std::system(("rm -rf " + dir).c_str());
}

TEST(DurablePosixTest, WhileTheDiskStaysFullCommitsStayRefusedThenResume) {
  const std::string dir = TempDir();
  posix::Runtime runtime;
  threaded::FaultFileSys sys;
  threaded::PosixFileSystem fs(sys);
  ServerOptions options;
  options.data_dir = dir + "/data";
  options.fs = &fs;
  options.recover_log_after = absl::Milliseconds(5);
  auto server = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::shared_ptr<Client> client = Connect(runtime, (*server)->address());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Commit({Store{"x", 0, "kept"}}, absl::Now() + absl::Seconds(10)).ok());
  sys.FailAlways(threaded::FaultFileSys::Op::kWrite, ENOSPC);
  auto failed = client->Commit({Store{"x", 1, "full"}}, absl::Now() + absl::Seconds(10));
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_NE(failed.status().message().find("No space left"), std::string::npos) << failed.status();
  // Recovery attempts fail (their rewrite cannot be written): commits stay refused, clearly.
  const int writes = sys.calls(threaded::FaultFileSys::Op::kWrite);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sys.calls(threaded::FaultFileSys::Op::kWrite) < writes + 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // polls for three more attempts
  }
  ASSERT_GE(sys.calls(threaded::FaultFileSys::Op::kWrite), writes + 3);
  auto refused = client->Commit({Store{"x", 1, "still full"}}, absl::Now() + absl::Seconds(10));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("transaction log failed"), std::string::npos)
      << refused.status();
  EXPECT_EQ((*server)->stats().log_recoveries, 0u);
  EXPECT_EQ((*server)->Objects().at("x").data, "kept");
  // Space again: the next attempt recovers, commits resume after the acknowledged one.
  sys.FailAlways(threaded::FaultFileSys::Op::kWrite, 0);
  auto after = CommitOnceRecovered(*client, Store{"x", 1, "room"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 2u);
  client->Close();
  server->reset();
  options.fs = nullptr;
  auto again = ObjectServer::Start(runtime, Address::Parse("127.0.0.1:0").value(), options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->last_tid(), 2u);
  EXPECT_EQ((*again)->Objects().at("x").data, "room");
  again->reset();
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace netlayer::objstore
