// Linearizability of a history against a model, after Wing & Gong, Lowe's just-in-time
// linearization and Porcupine: the history is split into independent parts (per key, by the
// model's Partition), and each part is searched depth-first for an order of its operations that
// respects real time (an operation that completed before another was invoked comes first) and
// that the model accepts, with a cache of (the set of operations linearized so far, the model's
// state) so no configuration is explored twice.
//
// Outcomes: failed operations are dropped (they did not happen) unless the model keeps them;
// an info operation may take effect at any time after its invocation, or never (its completion
// is +infinity, and the search succeeds once every other operation is placed).
//
// The search is bounded by CheckOptions::max_steps (deterministic, no clock): beyond it the
// verdict is kUnknown. A violation names the part (key) that failed, the longest linearization
// the search found for it (the operations it could order, with the state after each), and the
// operations it could not place after that prefix: the one whose completion arrived before it
// could be linearized, and the concurrent ones it tried; each with its times.
//
// Thread rules: plain functions over values; a Model must be safe to call from one thread at a
// time (the built-in ones are stateless).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "netlayer/history/history.h"

namespace netlayer::history {

// A model's state, as a string (compared and hashed by value: encode it canonically).
using State = std::string;

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string name() const = 0;
  virtual State Init() const = 0;
  // The state after `op` (its outcome and result included) from `state`, or nullopt if the
  // object in `state` could not have answered `op` that way. An info op carries no result: the
  // step says what it does if it takes effect.
  virtual std::optional<State> Step(const State& state, const Operation& op) const = 0;
  // Independent parts of the history (each checked alone from Init). It may rewrite operations
  // (an operation on several keys into one per key). Default: the whole history, one part.
  virtual std::vector<std::vector<Operation>> Partition(std::vector<Operation> ops) const;
  // For reports.
  virtual std::string Describe(const State& state) const { return state; }
  // A failed operation that still constrains the history (a refusal that says something about
  // the state). Default: none (fail = it did not happen).
  virtual bool KeepFailed(const Operation& /*op*/) const { return false; }
  // An info operation the search may leave out (a read: unknown result, no effect).
  virtual bool Droppable(const Operation& /*op*/) const { return false; }
};

// Partition by Operation::key (the built-in models' Partition).
std::vector<std::vector<Operation>> PartitionByKey(std::vector<Operation> ops);

// Built-in models (docs/HISTORY.md lists their operations):
//   register: read -> value | write(value) | cas([old, new]) (ok: swapped; fail: dropped);
//             one register, keys ignored. Initial value null.
//   kv:       the register's operations per key (partitioned by key).
//   mutex:    per key (lock name): acquire -> token (the lock must be free, or held by the same
//             process with the same token: a renewal; tokens grow with every new grant),
//             release(token) (by its holder), and fenced writes: write(token) -> "accepted" |
//             "refused" (accepted iff the token is at least every accepted one).
//   queue:    a FIFO queue: enqueue(value), dequeue -> value | null (empty).
std::unique_ptr<Model> RegisterModel();
std::unique_ptr<Model> KvModel();
std::unique_ptr<Model> MutexModel();
std::unique_ptr<Model> QueueModel();
// A user's model: an initial state and a step function, optionally a partition function.
struct ModelFunctions {
  std::string name = "user";
  State init;
  std::function<std::optional<State>(const State&, const Operation&)> step;
  std::function<std::vector<std::vector<Operation>>(std::vector<Operation>)> partition;
};
std::unique_ptr<Model> MakeModel(ModelFunctions functions);
// "register", "kv", "mutex", "queue"; NotFound naming them otherwise.
absl::StatusOr<std::unique_ptr<Model>> BuiltinModel(std::string_view name);

enum class Verdict { kOk, kViolation, kUnknown };
std::string VerdictName(Verdict verdict);  // "ok", "violation", "unknown"

struct CheckOptions {
  // Search steps (a step: try one operation) for all parts together; beyond: kUnknown.
  uint64_t max_steps = 50'000'000;
};

struct LinearizabilityResult {
  Verdict verdict = Verdict::kOk;
  std::string model;
  size_t operations = 0;  // checked (after dropping failed and droppable ones)
  size_t parts = 0;
  uint64_t steps = 0;
  int64_t origin = 0;  // report times count from here
  // On kViolation (or kUnknown: the part the budget ran out in):
  std::string key;                  // the failing part's key (its first operation's)
  std::vector<Operation> prefix;    // the longest linearization found, in order
  std::vector<State> states;        // the state after each operation of `prefix`
  std::vector<Operation> unplaced;  // could not be placed after `prefix`; the first is the one
                                    // whose completion came first
  bool ok() const { return verdict == Verdict::kOk; }
  // One paragraph: verdict, counts and, on failure, the operations and their times (at most
  // `prefix_shown` of the prefix's last operations).
  std::string Report(size_t prefix_shown = 8) const;
};

LinearizabilityResult CheckLinearizable(const Model& model, std::vector<Operation> ops,
                                        const CheckOptions& options = {});

}  // namespace netlayer::history
