// ConnectSchedule: the sans-I/O state machine of the seed's connect-and-retry schedule, driven
// by the sim backend on virtual time and by the posix backend on the real clock.
//
// Rounds: each round tries addresses[0], addresses[1], ... in turn, one attempt at a time. If
// none connects, wait `delay` (min_delay at first, multiplied by delay_backoff after each round,
// capped at max_delay, optionally jittered), then start the next round. With max_attempts = N,
// after N failed rounds the schedule fails Unavailable with every attempt's reason. With
// give_up_after set, a wait that would end past start + give_up_after fails DeadlineExceeded.
//
// Inputs: Start, OnAttemptFailed, OnAttemptSucceeded, OnWakeUp, Cancel (with the time now).
// Outputs: an Action saying what the driver does next.
// Thread rules: not thread-safe; the driver serialises calls.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/factory.h"
#include "netlayer/core/generator.h"

namespace netlayer {

// InvalidArgument naming the problem: empty address list, delay_backoff < 1, min_delay > max_delay,
// zero or negative delays, max_attempts < 1, attempt_timeout <= 0, jitter outside [0, 1).
absl::Status ValidateConnectRequest(const std::vector<Address>& addresses,
                                    const ConnectOptions& options);

class ConnectSchedule {
 public:
  struct Action {
    enum class Kind {
      kTryAddress,  // attempt a connection to addresses[address_index] (deadline: attempt_deadline)
      kWaitUntil,   // sleep until wake_at, then call OnWakeUp
      kConnected,   // done: the last attempt's connection is the result
      kFailed,      // done: report `status`
    };
    Kind kind = Kind::kFailed;
    size_t address_index = 0;
    absl::Time attempt_deadline = absl::InfiniteFuture();
    absl::Time wake_at = absl::InfinitePast();
    absl::Status status;
  };

  // Fails InvalidArgument as ValidateConnectRequest does. `jitter_source` is used only when
  // options.jitter > 0 and must then outlive the schedule.
  static absl::StatusOr<ConnectSchedule> Create(std::vector<Address> addresses,
                                                ConnectOptions options,
                                                Generator* jitter_source = nullptr);

  Action Start(absl::Time now);
  // REQUIRES: the last action was kTryAddress.
  Action OnAttemptFailed(absl::Time now, const absl::Status& reason);
  Action OnAttemptSucceeded(absl::Time now);
  // REQUIRES: the last action was kWaitUntil.
  Action OnWakeUp(absl::Time now);
  // Ends the schedule: kFailed with Cancelled. Idempotent; after done() it changes nothing.
  Action Cancel();

  bool done() const { return state_ == State::kDone; }
  int round() const { return round_; }  // 1-based once started
  absl::Duration next_delay() const { return delay_; }
  const std::vector<Address>& addresses() const { return addresses_; }
  const ConnectOptions& options() const { return options_; }

 private:
  enum class State { kIdle, kTrying, kWaiting, kDone };
  // How many attempt reasons are kept for the failure message (the rest are counted).
  static constexpr size_t kMaxReasons = 64;

  ConnectSchedule(std::vector<Address> addresses, ConnectOptions options, Generator* gen)
      : addresses_(std::move(addresses)), options_(options), jitter_source_(gen) {}
  Action Try(absl::Time now);
  Action Fail(absl::Status status);
  absl::Duration Jittered(absl::Duration d);
  // Every kept attempt reason, and how many more were dropped.
  std::string ReasonsText() const;

  std::vector<Address> addresses_;
  ConnectOptions options_;
  Generator* jitter_source_;
  State state_ = State::kIdle;
  int round_ = 0;
  size_t index_ = 0;
  absl::Duration delay_ = absl::ZeroDuration();
  absl::Time started_ = absl::InfinitePast();
  std::vector<std::string> reasons_;
  size_t reasons_dropped_ = 0;
};

}  // namespace netlayer
