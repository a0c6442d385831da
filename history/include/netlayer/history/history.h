// Histories: what each client invoked and what it observed, after Jepsen's histories.
//
// An Operation is one call of one process (a client, a thread): its function ("read",
// "write", "load", "commit", "acquire", ...), the key it is on ("" for none), its arguments, and
// its outcome, one of Jepsen's: ok (it happened and returned `result`), fail (it certainly did
// not happen: a conflict, a refusal) or info (unknown: the call timed out, its connection was
// lost; it may have taken effect, at any time after its invocation). An info operation's
// completion time is kNever (+infinity).
//
// A Recorder collects a history as it happens: Invoke when the call starts, then Ok, Fail or
// Info when it ends (an operation never completed is info). Times come from the clock the caller
// gives: the world's virtual clock in the simulator (World::Now: one clock for every host, not a
// host's skewed one), the real clock on posix. The Recorder makes times strictly increasing in
// the order it records events, so the order of events is exact even when the clock does not
// move between them (virtual time).
//
// A history is written and read as JSON lines, one operation a line (WriteJsonLines,
// ReadJsonLines; docs/HISTORY.md has the format).
//
// Thread rules: a Recorder may be used from any number of threads at once (posix clients); its
// clock is called under its lock. Operation and the free functions are plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/core/mutex.h"
#include "nlohmann/json.hpp"

namespace netlayer::history {

using Json = nlohmann::json;

enum class Outcome { kOk, kFail, kInfo };
// "ok", "fail", "info".
std::string OutcomeName(Outcome outcome);

// The completion time of an operation whose outcome is unknown.
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Operation {
  uint64_t index = 0;   // its position in the history (order of invocation)
  int64_t process = 0;  // who called it; a process's operations are sequential or not, any
  std::string f;        // the function
  std::string key;      // the object it is on ("" for none): models partition by it
  Json value;           // its arguments (null for none)
  Outcome outcome = Outcome::kInfo;
  Json result;  // ok: what it returned; fail and info: why (null for nothing)
  // Nanoseconds since the Unix epoch of the clock that recorded it (virtual in the simulator).
  int64_t invoke = 0;
  int64_t complete = kNever;  // kNever for info

  bool ok() const { return outcome == Outcome::kOk; }
  // "p2 write x 3 -> ok null [1.000200s, 1.000900s]", times relative to `origin`.
  std::string ToString(int64_t origin = 0) const;
};

// One line of JSON: {"index":..,"process":..,"f":..,"key":..,"value":..,"type":"ok",
// "result":..,"invoke":..,"complete":..} (complete is null for kNever).
Json ToJson(const Operation& op);
absl::StatusOr<Operation> FromJson(const Json& j);
std::string ToJsonLines(const std::vector<Operation>& ops);
// InvalidArgument naming the line for a malformed one.
absl::StatusOr<std::vector<Operation>> FromJsonLines(std::string_view text);
absl::Status WriteJsonLines(const std::string& path, const std::vector<Operation>& ops);
absl::StatusOr<std::vector<Operation>> ReadJsonLines(const std::string& path);

// The earliest invocation time (0 for an empty history): the origin reports count from.
int64_t Origin(const std::vector<Operation>& ops);

class Recorder {
 public:
  using Clock = std::function<absl::Time()>;
  explicit Recorder(Clock clock);
  // Takes time from env.Now() (which must outlive the recorder).
  explicit Recorder(const Env& env);
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // The operation starts now; returns its id for Ok/Fail/Info.
  uint64_t Invoke(int64_t process, std::string f, std::string key = {}, Json value = nullptr);
  // It ended now. Completing an id twice, or one never invoked, is a caller's bug (asserted).
  void Ok(uint64_t id, Json result = nullptr);
  void Fail(uint64_t id, Json error = nullptr);
  void Info(uint64_t id, Json error = nullptr);
  // Sets the key of an operation whose key is known only from its result (before it completes
  // or after).
  void SetKey(uint64_t id, std::string key);
  // An observation that starts and ends now (a push received, a sync answered): Invoke + Ok.
  uint64_t Observe(int64_t process, std::string f, std::string key, Json value, Json result);

  size_t size() const;
  // Every operation so far, in invocation order; those not yet completed are info.
  std::vector<Operation> Snapshot() const;

 private:
  int64_t NowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteLocked(uint64_t id, Outcome outcome, Json result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock clock_;
  mutable Mutex mu_;
  int64_t last_ ABSL_GUARDED_BY(mu_) = std::numeric_limits<int64_t>::min();
  std::vector<Operation> ops_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> completed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netlayer::history
