// Checks of a transactional, versioned store's history (apps/objstore; docs/HISTORY.md), after
// Elle: versions are the tids of the transactions that wrote them, so the version order of every
// object is known, and committed transactions form a dependency graph without guessing.
//
// Operations (keys are "<scope>/<name>"; versions compare only within a scope, e.g. one server
// epoch "e3": a scope is one tid sequence):
//   load    key K; ok result {"version": v, "data": d} (v 0, data null: K did not exist)
//   commit  value {"reads": {K: v, ...}, "writes": {K: d, ...}}; ok result {"version": tid};
//           fail: it did not commit (a conflict); info: unknown
//   sync, invalidate  observations (ok, instant): value {"scope": S}, result {"version": v}: the
//           process has seen scope S as of version v (a sync answered, an invalidation received)
// The data a commit writes to a key must be unique (it names the writer).
//
// Checked:
//   1. every load (and every committed read) names a version some commit wrote, with its data
//      (an info commit counts: a load that sees its data also gives its tid);
//   2. committed transactions are serializable: no cycle in the graph of ww (next version), wr
//      (read what it wrote) and rw (read the version before what it wrote) dependencies; the
//      classic lost update is the cycle T1 -rw-> T2 -ww-> T1;
//   3. no load returned a version older than one its process had already observed: a load
//      invoked after the process saw scope S as of version W (by a load, a commit, a sync or an
//      invalidation that completed before) must not return K at v when a version w of K with
//      v < w <= W exists (a stale read: a cache kept across what it missed).
//
// Thread rules: plain functions over values.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "netlayer/history/history.h"
#include "netlayer/history/linearizability.h"

namespace netlayer::history {

struct TransactionsResult {
  Verdict verdict = Verdict::kOk;
  size_t loads = 0;
  size_t commits = 0;    // commit operations
  size_t committed = 0;  // known committed (ok, or info seen by a load)
  int64_t origin = 0;
  // Each problem found: what (garbage read, cycle, stale read) with its operations and times.
  std::vector<std::string> problems;
  bool ok() const { return verdict == Verdict::kOk; }
  std::string Report(size_t max_problems = 5) const;
};

TransactionsResult CheckTransactions(const std::vector<Operation>& ops);

// `check-history MODEL FILE` (netlayer-sim, netlayer-jepsen): reads a JSON-lines history and
// checks it with MODEL: register, kv, mutex, queue (linearizability) or objstore
// (CheckTransactions). Prints the report to `out`; returns 0 (ok), 1 (violation or unknown),
// 2 (bad usage, unreadable file).
int CheckHistoryCommand(const std::string& model, const std::string& path, std::ostream& out);

// The scope of a key: what precedes its first '/' ("" if none).
std::string ScopeOf(const std::string& key);

}  // namespace netlayer::history
