// SQLite beside the durable object store (docs/PERFORMANCE.md): what a user might pick for a small
// durable store. WAL mode with synchronous=FULL (every commit fsyncs the WAL), one connection per
// thread, each thread committing transactions that read its own row's serial and write the row
// back with 64 B of new data and the serial advanced: the objstore commit figure's workload (one
// row per object). Writers wait for each other on SQLite's lock (busy_timeout).
#include <sqlite3.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "call_loop.h"
#include "objstore_figures.h"

namespace netlayer::bench {
namespace {

constexpr size_t kDataBytes = 64;

absl::Status SqliteError(sqlite3* db, const char* what) {
  return absl::InternalError(absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db)));
}

class SqliteCommitRunner : public Runner {
 public:
  explicit SqliteCommitRunner(int threads) : threads_(threads) {}

  absl::Status Start() override {
    const char* tmp = getenv("TMPDIR");
    std::string dir =
        absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp", "/netlayer-bench-sqlite-XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
    }
    dir_ = dir;
    const std::string path = absl::StrCat(dir_, "/store.db");
    for (int i = 0; i < threads_; ++i) {
      Conn c;
      if (sqlite3_open_v2(path.c_str(), &c.db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          nullptr) != SQLITE_OK) {
        absl::Status s = SqliteError(c.db, "open");
        sqlite3_close(c.db);
        return s;
      }
      conns_.push_back(c);
      sqlite3* db = c.db;
      sqlite3_busy_timeout(db, 10000);
      const char* setup =
          i == 0 ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE IF NOT EXISTS objects (oid TEXT PRIMARY KEY, serial INTEGER, "
                   "data BLOB);"
                 : "PRAGMA synchronous=FULL;";
      if (sqlite3_exec(db, setup, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return SqliteError(db, "setup");
      }
      Conn& own = conns_.back();
      if (sqlite3_prepare_v2(db, "SELECT serial FROM objects WHERE oid = ?1", -1, &own.select,
                             nullptr) != SQLITE_OK ||
          sqlite3_prepare_v2(db,
                             "INSERT OR REPLACE INTO objects (oid, serial, data) "
                             "VALUES (?1, ?2, ?3)",
                             -1, &own.upsert, nullptr) != SQLITE_OK) {
        return SqliteError(db, "prepare");
      }
      own.oid = absl::StrCat("bench-", i);
    }
    for (int i = 0; i < threads_; ++i) {
      if (absl::Status s = Commit(i, std::string(kDataBytes, 'x')); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    return RunCallLoop(
        threads_, kDataBytes, duration,
        [this](int thread, const std::string& data) { return Commit(thread, data); }, latency_);
  }

  const LatencyHistogram* latency() const override { return &latency_; }

  absl::Status Stop() override {
    for (Conn& c : conns_) {
      sqlite3_finalize(c.select);
      sqlite3_finalize(c.upsert);
      sqlite3_close(c.db);
    }
    conns_.clear();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
    return absl::OkStatus();
  }

 private:
  struct Conn {
    sqlite3* db = nullptr;
    sqlite3_stmt* select = nullptr;
    sqlite3_stmt* upsert = nullptr;
    std::string oid;
    int64_t serial = 0;
  };

  // One transaction: read the row's serial (it must be ours), write the row at serial + 1.
  // BEGIN IMMEDIATE takes the write lock first (no deadlock between readers turning writers).
  absl::Status Commit(int thread, const std::string& data) {
    Conn& c = conns_[thread];
    if (sqlite3_exec(c.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return SqliteError(c.db, "begin");
    }
    sqlite3_bind_text(c.select, 1, c.oid.data(), static_cast<int>(c.oid.size()), SQLITE_STATIC);
    const int step = sqlite3_step(c.select);
    const int64_t serial = step == SQLITE_ROW ? sqlite3_column_int64(c.select, 0) : 0;
    sqlite3_reset(c.select);
    if ((step != SQLITE_ROW && step != SQLITE_DONE) || serial != c.serial) {
      sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
      return absl::InternalError("sqlite: the row's serial is not the one last written");
    }
    sqlite3_bind_text(c.upsert, 1, c.oid.data(), static_cast<int>(c.oid.size()), SQLITE_STATIC);
    sqlite3_bind_int64(c.upsert, 2, serial + 1);
    sqlite3_bind_blob(c.upsert, 3, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
    const int written = sqlite3_step(c.upsert);
    sqlite3_reset(c.upsert);
    if (written != SQLITE_DONE) {
      absl::Status s = SqliteError(c.db, "write");
      sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    if (sqlite3_exec(c.db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return SqliteError(c.db, "commit");
    }
    c.serial = serial + 1;
    return absl::OkStatus();
  }

  const int threads_;
  LatencyHistogram latency_;
  std::string dir_;
  std::vector<Conn> conns_;
};

}  // namespace

std::unique_ptr<Runner> MakeSqliteCommitRunner(int threads) {
  return std::make_unique<SqliteCommitRunner>(threads);
}

}  // namespace netlayer::bench
