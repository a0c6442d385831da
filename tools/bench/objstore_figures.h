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
};

// Operations per second, every operation timed (Runner::latency). Each load checks where its
// answer came from and its data; each commit checks its tid; a mismatch is an error.
std::unique_ptr<Runner> MakeObjstoreRunner(ObjstoreFigure figure, int clients = 1);

}  // namespace netlayer::bench
