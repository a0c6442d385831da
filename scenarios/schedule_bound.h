// An upper bound for scenario invariants: how many attempts a connect schedule may have started
// by a given time, whatever its attempts took and whether they failed by refusal, timeout or a
// close before the rpc handshake (DESIGN.md §3, §11 "Back-off survives flapping").
#pragma once

#include <algorithm>
#include <cstddef>

#include "absl/time/time.h"
#include "netlayer/core/factory.h"

namespace netlayer::scenarios {

// Attempts started within `elapsed` of the schedule's start, at most: every round tries each of
// `addresses` addresses; round 1 starts at once and round k+1 no sooner than the k-th delay
// after round k (delay = min_delay, times delay_backoff per round, capped at max_delay, shrunk by
// at most the jitter), so instant attempts are the fastest possible; max_attempts caps rounds.
inline int64_t MaxAttemptsStarted(const ConnectOptions& o, size_t addresses,
                                  absl::Duration elapsed) {
  int64_t rounds = 1;
  absl::Duration at = absl::ZeroDuration();
  absl::Duration delay = o.min_delay;
  while (!o.max_attempts || rounds < *o.max_attempts) {
    at += delay * (1.0 - o.jitter);
    if (at > elapsed) break;
    ++rounds;
    delay = std::min(delay * o.delay_backoff, o.max_delay);
  }
  return rounds * static_cast<int64_t>(addresses);
}

}  // namespace netlayer::scenarios
