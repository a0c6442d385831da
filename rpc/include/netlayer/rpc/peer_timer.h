// PeerTimer: the one timer a PeerSession needs: armed at its NextTimer(), re-armed only when that
// changes. Not thread-safe: the owner's mutex guards it (Env::RunAt and CancelTimer never wait
// for a timer callback, so calling them under that mutex cannot deadlock).
#pragma once

#include <optional>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netlayer/core/env.h"

namespace netlayer::rpc {

class PeerTimer {
 public:
  explicit PeerTimer(Env& env) : env_(env) {}
  ~PeerTimer() { Cancel(); }
  PeerTimer(const PeerTimer&) = delete;
  PeerTimer& operator=(const PeerTimer&) = delete;

  // Makes `fn` run at `at` (InfiniteFuture: never), replacing the timer armed before, unless it
  // is already armed for `at`.
  void Arm(absl::Time at, absl::AnyInvocable<void() &&> fn) {
    if (id_.has_value() && at == at_) return;
    Cancel();
    if (at == absl::InfiniteFuture()) return;
    at_ = at;
    id_ = env_.RunAt(at, std::move(fn));
  }
  // The armed timer is running now: it is no longer pending.
  void Fired() { id_.reset(); }
  void Cancel() {
    if (id_.has_value()) env_.CancelTimer(*id_);
    id_.reset();
  }

 private:
  Env& env_;
  std::optional<TimerId> id_;
  absl::Time at_ = absl::InfiniteFuture();
};

}  // namespace netlayer::rpc
