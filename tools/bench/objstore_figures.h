// Object store figures (built when netlayer::objstore and netlayer::posix exist): the
// application of docs/OBJSTORE.md on posix::Runtime, server and clients in this process.
#pragma once

#include <memory>

#include "harness.h"

namespace netlayer::bench {

enum class ObjstoreFigure {
  kLoadFromCache,   // one client, one thread: Load of an object its cache holds
  kLoadFromServer,  // one client, one thread: every Load misses (a 1-entry cache, two objects)
  kCommit,          // `clients` clients, one thread each: commit one store of its own object
  kDurableCommit,   // the same, the server's log in a temporary directory (--data)
};

// Operations per second, every operation timed (Runner::latency). Each load checks where its
// answer came from and its data; each commit checks its tid; a mismatch is an error.
std::unique_ptr<Runner> MakeObjstoreRunner(ObjstoreFigure figure, int clients = 1);

// A durable commit's log record (one 64 B store), as the server appends it.
std::string DurableCommitRecord();
// One thread: write(DurableCommitRecord()) + fdatasync, back to back, in a temporary directory
// (one sync per commit: the limit without batching). Every pair timed.
std::unique_ptr<Runner> MakeFdatasyncRunner();

// SQLite (WAL, synchronous=FULL) in a temporary directory: `threads` threads, each with its own
// connection, committing one transaction after another, each writing one row (its own object,
// 64 B of data, the serial checked and advanced, as a commit does). Every commit timed. Only
// built with libsqlite3 (NETLAYER_BENCH_HAVE_SQLITE).
std::unique_ptr<Runner> MakeSqliteCommitRunner(int threads);

}  // namespace netlayer::bench
