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
#include <filesystem>
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

// A fresh directory under /tmp, removed with what it holds when the test ends (an ASSERT that
// returns early included).
class ScopedTempDir {
 public:
  ScopedTempDir() {
    char tmpl[] = "/tmp/netlayer-objstore-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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
  for (Writer& w : writers) {
    uint64_t seq = 0;
    for (int k = 0; k < kObjectsPerCommit; ++k) {
      absl::StatusOr<Loaded> loaded = c->Load(Oid(w.id, k), absl::Now() + absl::Seconds(10));
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
  c->Close();
}

// Each test's directory and runtime, and an in-process durable server whose file system calls
// go through FaultFileSys (the SIGKILL test runs the real binary and uses only the directory).
class DurablePosixTest : public ::testing::Test {
 protected:
  DurablePosixTest() {
    options_.data_dir = dir_.path() + "/data";
    options_.fs = &fs_;
  }
  absl::StatusOr<std::unique_ptr<ObjectServer>> StartServer() {
    return ObjectServer::Start(runtime_, Address::Parse("127.0.0.1:0").value(), options_);
  }

  ScopedTempDir dir_;
  posix::Runtime runtime_;
  threaded::FaultFileSys sys_;
  threaded::PosixFileSystem fs_{sys_};
  ServerOptions options_;
};

TEST_F(DurablePosixTest, KillNineDuringCommitsLosesNoAcknowledgedCommit) {
  const std::string data = dir_.path() + "/data";
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
      Verify(runtime_, *address, writers, round);
      if (::testing::Test::HasFatalFailure()) return;
    }
    {
      auto c = Client::Create(runtime_, {*address});
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE((*c)->WaitSynced(absl::Now() + absl::Seconds(10)));
      if (round == 0) epoch = (*c)->epoch();
      EXPECT_EQ((*c)->epoch(), epoch) << "the epoch survives restarts";
      (*c)->Close();
    }
    std::vector<std::thread> threads;
    for (Writer& w : writers) {
      threads.emplace_back([this, a = *address, &w] { RunWriter(runtime_, a, w); });
    }
    // Kill at a random point: most rounds while commits stream, a few at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    server.Kill();
    for (std::thread& t : threads) t.join();
  }
  ServerProcess last(data);
  absl::StatusOr<Address> address = Address::Parse(last.address());
  ASSERT_TRUE(address.ok());
  Verify(runtime_, *address, writers, rounds);
  for (const Writer& w : writers) total_acked += w.acked;  // sequence numbers count from 1
  EXPECT_GT(total_acked, 0u);
  std::printf("%d kills, %llu commits acknowledged\n", rounds,
              static_cast<unsigned long long>(total_acked));
}

TEST_F(DurablePosixTest, EioOnFsyncFailsCommitsClearlyAndAcknowledgesNothingUnsynced) {
  std::vector<uint64_t> acked;
  {
    auto server = StartServer();
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> c = Connect(runtime_, (*server)->address());
    ASSERT_NE(c, nullptr);
    uint64_t serial = 0;
    for (int i = 0; i < 5; ++i) {
      auto tid =
          c->Commit({Store{"x", serial, absl::StrCat("v", i)}}, absl::Now() + absl::Seconds(10));
      ASSERT_TRUE(tid.ok()) << tid.status();
      serial = *tid;
    }
    // The device fails: the commit waiting for the sync fails, clearly.
    sys_.Inject(threaded::FaultFileSys::Op::kFdatasync, {EIO});
    auto failed = c->Commit({Store{"x", serial, "lost?"}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("transaction log failed"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("Input/output error"), std::string::npos)
        << failed.status();
    EXPECT_NE(failed.status().message().find("outcome of this commit is unknown"),
              std::string::npos)
        << failed.status();
    // The next fdatasync would succeed, but the log is not trusted again: commits keep failing.
    auto later = c->Commit({Store{"y", 0, "later"}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(later.status().code(), absl::StatusCode::kUnavailable) << later.status();
    EXPECT_FALSE((*server)->log_status().ok());
    // Nothing unsynced became visible.
    auto loaded = c->Load("x", absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded->data, "v4");
    EXPECT_EQ((*server)->last_tid(), 5u);
    EXPECT_EQ((*server)->Objects().count("y"), 0u);
    c->Close();
  }
  // Restarted on a healthy disk: every acknowledged commit is there; commits work again.
  options_.fs = nullptr;
  auto server = StartServer();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GE((*server)->last_tid(), 5u);
  std::shared_ptr<Client> c = Connect(runtime_, (*server)->address());
  ASSERT_NE(c, nullptr);
  auto loaded = c->Load("x", absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->data == "v4" || loaded->data == "lost?") << loaded->data;
  EXPECT_TRUE(
      c->Commit({Store{"x", loaded->serial, "after"}}, absl::Now() + absl::Seconds(10)).ok());
  c->Close();
  server->reset();
}

TEST_F(DurablePosixTest, EnospcOnAppendFailsTheCommitAndRecoveryCutsThePartialRecord) {
  {
    auto server = StartServer();
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> c = Connect(runtime_, (*server)->address());
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->Commit({Store{"x", 0, "kept"}}, absl::Now() + absl::Seconds(10)).ok());
    // 10 bytes of the next record reach the file, then the disk is full.
    sys_.Inject(threaded::FaultFileSys::Op::kWrite, {0, 10, 1});
    sys_.Inject(threaded::FaultFileSys::Op::kWrite, {ENOSPC, 0, 1});
    auto failed =
        c->Commit({Store{"x", 1, std::string(100, 'z')}}, absl::Now() + absl::Seconds(10));
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("No space left"), std::string::npos)
        << failed.status();
    c->Close();
  }
  options_.fs = nullptr;
  auto server = StartServer();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->recovery().torn_bytes, 10u);
  EXPECT_EQ((*server)->last_tid(), 1u);
  EXPECT_EQ((*server)->Objects().at("x").data, "kept");
  server->reset();
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

TEST_F(DurablePosixTest, AfterEioTheLogIsRewrittenInPlaceWithTheAcknowledgedRecordsOnly) {
  options_.recover_log_after = absl::Milliseconds(20);
  {
    auto server = StartServer();
    ASSERT_TRUE(server.ok()) << server.status();
    std::shared_ptr<Client> client = Connect(runtime_, (*server)->address());
    ASSERT_NE(client, nullptr);
    uint64_t serial = 0;
    for (int i = 0; i < 3; ++i) {
      auto tid = client->Commit({Store{"x", serial, absl::StrCat("v", i)}},
                                absl::Now() + absl::Seconds(10));
      ASSERT_TRUE(tid.ok()) << tid.status();
      serial = *tid;
    }
    sys_.Inject(threaded::FaultFileSys::Op::kFdatasync, {EIO});
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
  auto bytes = ReadFileToString(real, options_.data_dir + "/objstore.log");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto scanned = ScanLog(*bytes);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_FALSE(scanned->torn());
  ASSERT_EQ(scanned->records.size(), 4u);
  EXPECT_EQ(scanned->records[2].stores.at(0).data, "v2");
  EXPECT_EQ(scanned->records[3].stores.at(0).oid, "y");
  EXPECT_FALSE(real.FileExists(options_.data_dir + "/objstore.log.recover"));
  options_.fs = nullptr;
  auto server = StartServer();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->last_tid(), 4u);
  EXPECT_EQ((*server)->Objects().at("y").data, "after");
  server->reset();
}

TEST_F(DurablePosixTest, WhileTheDiskStaysFullCommitsStayRefusedThenResume) {
  options_.recover_log_after = absl::Milliseconds(5);
  auto server = StartServer();
  ASSERT_TRUE(server.ok()) << server.status();
  std::shared_ptr<Client> client = Connect(runtime_, (*server)->address());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Commit({Store{"x", 0, "kept"}}, absl::Now() + absl::Seconds(10)).ok());
  sys_.FailAlways(threaded::FaultFileSys::Op::kWrite, ENOSPC);
  auto failed = client->Commit({Store{"x", 1, "full"}}, absl::Now() + absl::Seconds(10));
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_NE(failed.status().message().find("No space left"), std::string::npos) << failed.status();
  // Recovery attempts fail (their rewrite cannot be written): commits stay refused, clearly.
  const int writes = sys_.calls(threaded::FaultFileSys::Op::kWrite);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sys_.calls(threaded::FaultFileSys::Op::kWrite) < writes + 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // polls for three more attempts
  }
  ASSERT_GE(sys_.calls(threaded::FaultFileSys::Op::kWrite), writes + 3);
  auto refused = client->Commit({Store{"x", 1, "still full"}}, absl::Now() + absl::Seconds(10));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("transaction log failed"), std::string::npos)
      << refused.status();
  EXPECT_EQ((*server)->stats().log_recoveries, 0u);
  EXPECT_EQ((*server)->Objects().at("x").data, "kept");
  // Space again: the next attempt recovers, commits resume after the acknowledged one.
  sys_.FailAlways(threaded::FaultFileSys::Op::kWrite, 0);
  auto after = CommitOnceRecovered(*client, Store{"x", 1, "room"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 2u);
  client->Close();
  server->reset();
  options_.fs = nullptr;
  auto again = StartServer();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->last_tid(), 2u);
  EXPECT_EQ((*again)->Objects().at("x").data, "room");
  again->reset();
}

}  // namespace
}  // namespace netlayer::objstore
