// TimerQueue: pending deadlines, each with an id and a value (usually a callback), in
// (deadline, id) order. The one timer queue of the project: the simulator's event queue and the
// posix Env's timer thread keep their pending work in it.
//
// Sans-I/O: it reads no clock and runs nothing. The driver asks NextDeadline(), waits (or jumps
// virtual time) until then, and takes due entries with PopDue(now), running them itself.
//
// Order: entries run in deadline order; entries with the same deadline run in the order they
// were added (ids count up from 1 and are never reused, so (deadline, id) is insertion order).
// Nothing is ever ordered by pointer or hash: the order is the same in every process.
//
// Bound: at most max_pending() entries are pending at once. Add beyond it is refused with
// ResourceExhausted: nothing is added, no id is used, and the value is destroyed before Add
// returns. The driver decides what a refusal means for it (the simulator halts the world; a
// production Env stops the process with a clear message, since a timer that silently never runs
// would break every deadline built on it).
//
// Values are destroyed only once the queue is consistent again (Cancel, CancelIf, Clear, a
// refused Add), so a value's destructor may call back into the queue (Add, Cancel, size).
//
// Thread rules: not thread-safe; the caller serialises every call (posix: under its mutex).
// Invariants (asserted, in every build): the time index and the id index hold the same entries,
// so their sizes agree; ids are unique; size() <= max_pending().
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/env.h"

namespace netlayer {

template <typename T>
class BasicTimerQueue {
 public:
  // A million pending timers is a leak, not a workload: the default bound says so early.
  static constexpr size_t kDefaultMaxPending = size_t{1} << 20;

  // A due entry, taken out of the queue by PopDue.
  struct Entry {
    absl::Time when;
    TimerId id;
    T value;
  };

  // REQUIRES: max_pending > 0.
  explicit BasicTimerQueue(size_t max_pending = kDefaultMaxPending) : max_pending_(max_pending) {
    NETLAYER_ASSERT(max_pending_ > 0, "TimerQueue: max_pending must be positive");
  }
  // Pending values are destroyed as by Clear (a destructor that reaches back finds it empty).
  ~BasicTimerQueue() { Clear(); }
  BasicTimerQueue(const BasicTimerQueue&) = delete;
  BasicTimerQueue& operator=(const BasicTimerQueue&) = delete;

  // Adds `value`, due at `when`, and returns its id (never 0). ResourceExhausted if
  // max_pending() entries are pending (see Bound above).
  absl::StatusOr<TimerId> Add(absl::Time when, T value) {
    if (by_time_.size() >= max_pending_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("timer queue full: ", by_time_.size(),
                       " timers pending (the bound); a timer leak, or raise the bound"));
    }
    const TimerId id = next_id_++;
    const bool new_key = by_time_.emplace(Key{when, id}, std::move(value)).second;
    NETLAYER_ASSERT(new_key, "TimerQueue: an id was used twice");
    const bool new_id = by_id_.emplace(id, when).second;
    NETLAYER_ASSERT(new_id, "TimerQueue: an id was used twice");
    CheckSizes();
    return id;
  }

  // True if `id` was pending and is now removed (its value destroyed). False for an id that
  // already ran (was popped), was cancelled, or was never returned by Add.
  bool Cancel(TimerId id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    auto node = by_time_.extract(Key{it->second, id});
    NETLAYER_ASSERT(!node.empty(), "TimerQueue: the id index names an entry the time index lacks");
    by_id_.erase(it);
    CheckSizes();
    return true;  // `node` (the value) dies here, with the queue consistent
  }

  // Cancels every pending entry whose value satisfies `pred`, in (deadline, id) order; returns
  // how many. `pred` sees every entry before any is removed, so entries added by a destructor
  // meanwhile are not considered.
  template <typename Pred>
  size_t CancelIf(Pred pred) {
    std::vector<TimerId> doomed;
    for (const auto& [key, value] : by_time_) {
      if (pred(static_cast<const T&>(value))) doomed.push_back(key.second);
    }
    size_t cancelled = 0;
    for (TimerId id : doomed) cancelled += Cancel(id) ? 1 : 0;
    return cancelled;
  }

  // Moves the pending entry `id` to `when`, keeping its id (so among entries due at the same
  // time it keeps its place by id). False if `id` is not pending.
  bool Reschedule(TimerId id, absl::Time when) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    auto node = by_time_.extract(Key{it->second, id});
    NETLAYER_ASSERT(!node.empty(), "TimerQueue: the id index names an entry the time index lacks");
    node.key() = Key{when, id};
    by_time_.insert(std::move(node));
    it->second = when;
    CheckSizes();
    return true;
  }

  // The ids of the pending entries whose value satisfies `pred`, in (deadline, id) order.
  template <typename Pred>
  std::vector<TimerId> IdsIf(Pred pred) const {
    std::vector<TimerId> ids;
    for (const auto& [key, value] : by_time_) {
      if (pred(value)) ids.push_back(key.second);
    }
    return ids;
  }

  // Removes every entry. The values are destroyed after the queue is already empty.
  void Clear() {
    std::map<Key, T> doomed = std::move(by_time_);
    by_time_.clear();
    by_id_.clear();
    CheckSizes();
  }  // `doomed` dies here

  // The pending value with this id, or nullptr. Valid until the queue next changes.
  T* Find(TimerId id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return nullptr;
    auto entry = by_time_.find(Key{it->second, id});
    NETLAYER_ASSERT(entry != by_time_.end(),
                    "TimerQueue: the id index names an entry the time index lacks");
    return &entry->second;
  }

  // The earliest deadline pending, or nullopt if nothing is.
  std::optional<absl::Time> NextDeadline() const {
    if (by_time_.empty()) return std::nullopt;
    return by_time_.begin()->first.first;
  }

  // Takes out the first entry due at or before `now` (earliest deadline, then lowest id), or
  // nullopt if none is. The caller runs it; call again for the next one. An entry added while
  // one runs, due at or before `now`, is returned by a later call (after the ones already due
  // at its deadline).
  std::optional<Entry> PopDue(absl::Time now) {
    if (by_time_.empty() || by_time_.begin()->first.first > now) return std::nullopt;
    auto node = by_time_.extract(by_time_.begin());
    const size_t erased = by_id_.erase(node.key().second);
    NETLAYER_ASSERT(erased == 1, "TimerQueue: the time index names an entry the id index lacks");
    CheckSizes();
    return Entry{node.key().first, node.key().second, std::move(node.mapped())};
  }

  size_t size() const { return by_time_.size(); }
  bool empty() const { return by_time_.empty(); }
  size_t max_pending() const { return max_pending_; }

 private:
  using Key = std::pair<absl::Time, TimerId>;

  void CheckSizes() const {
    NETLAYER_ASSERT(by_time_.size() == by_id_.size(),
                    "TimerQueue: the time and id indexes disagree in size");
    NETLAYER_ASSERT(by_time_.size() <= max_pending_, "TimerQueue: more entries than the bound");
  }

  const size_t max_pending_;
  std::map<Key, T> by_time_;             // (deadline, id) -> value: the run order
  std::map<TimerId, absl::Time> by_id_;  // id -> deadline, to find an entry for Cancel/Find
  TimerId next_id_ = 1;
};

// The common case: one-shot callbacks.
using TimerQueue = BasicTimerQueue<absl::AnyInvocable<void() &&>>;

}  // namespace netlayer
