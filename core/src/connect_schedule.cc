#include "netlayer/core/connect_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "netlayer/core/assert.h"

namespace netlayer {

absl::Status ValidateConnectRequest(const std::vector<Address>& addresses,
                                    const ConnectOptions& options) {
  if (addresses.empty()) return absl::InvalidArgumentError("connect: the address list is empty");
  if (options.min_delay <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("connect: min_delay must be positive, got ",
                                                   absl::FormatDuration(options.min_delay)));
  }
  if (options.max_delay <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("connect: max_delay must be positive, got ",
                                                   absl::FormatDuration(options.max_delay)));
  }
  if (options.min_delay > options.max_delay) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect: min_delay (", absl::FormatDuration(options.min_delay),
                     ") exceeds max_delay (", absl::FormatDuration(options.max_delay), ")"));
  }
  if (!(options.delay_backoff >= 1.0) || !std::isfinite(options.delay_backoff)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect: delay_backoff must be a finite number >= 1, got ", options.delay_backoff));
  }
  if (options.max_attempts && *options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect: max_attempts must be at least 1, got ", *options.max_attempts));
  }
  if (options.attempt_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect: attempt_timeout must be positive");
  }
  if (options.give_up_after <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect: give_up_after must be positive");
  }
  if (!(options.jitter >= 0.0 && options.jitter < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect: jitter must be in [0, 1), got ", options.jitter));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConnectSchedule> ConnectSchedule::Create(std::vector<Address> addresses,
                                                        ConnectOptions options,
                                                        Generator* jitter_source) {
  if (absl::Status s = ValidateConnectRequest(addresses, options); !s.ok()) return s;
  if (options.jitter > 0 && jitter_source == nullptr) {
    return absl::InvalidArgumentError("connect: jitter needs a generator");
  }
  return ConnectSchedule(std::move(addresses), options, jitter_source);
}

ConnectSchedule::Action ConnectSchedule::Start(absl::Time now) {
  NETLAYER_ASSERT(state_ == State::kIdle, "a schedule starts once");
  started_ = now;
  round_ = 1;
  index_ = 0;
  delay_ = options_.min_delay;
  return Try(now);
}

ConnectSchedule::Action ConnectSchedule::Try(absl::Time now) {
  state_ = State::kTrying;
  Action action;
  action.kind = Action::Kind::kTryAddress;
  action.address_index = index_;
  action.attempt_deadline =
      std::min(now + options_.attempt_timeout, started_ + options_.give_up_after);
  return action;
}

ConnectSchedule::Action ConnectSchedule::OnAttemptFailed(absl::Time now,
                                                         const absl::Status& reason) {
  NETLAYER_ASSERT(state_ == State::kTrying, "an attempt fails only while trying");
  if (reasons_.size() < kMaxReasons) {
    reasons_.push_back(
        absl::StrCat("round ", round_, " ", addresses_[index_].ToString(), ": ",
                     reason.message().empty() ? reason.ToString() : std::string(reason.message())));
  } else {
    ++reasons_dropped_;
  }
  const absl::Time give_up_at = started_ + options_.give_up_after;
  if (now >= give_up_at) {
    return Fail(absl::DeadlineExceededError(
        absl::StrCat("connect: gave up after ", absl::FormatDuration(options_.give_up_after), ": ",
                     absl::StrJoin(reasons_, "; "))));
  }
  if (++index_ < addresses_.size()) return Try(now);
  if (options_.max_attempts && round_ >= *options_.max_attempts) {
    std::string message =
        absl::StrCat("connect: no address connected in ", round_,
                     round_ == 1 ? " round: " : " rounds: ", absl::StrJoin(reasons_, "; "));
    if (reasons_dropped_ > 0) absl::StrAppend(&message, "; and ", reasons_dropped_, " more");
    return Fail(absl::UnavailableError(message));
  }
  const absl::Time wake_at = now + Jittered(delay_);
  if (wake_at >= give_up_at) {  // no time would be left to try
    return Fail(absl::DeadlineExceededError(
        absl::StrCat("connect: gave up after ", absl::FormatDuration(options_.give_up_after), ": ",
                     absl::StrJoin(reasons_, "; "))));
  }
  // The next round waits longer, up to max_delay.
  delay_ = std::min(delay_ * options_.delay_backoff, options_.max_delay);
  state_ = State::kWaiting;
  Action action;
  action.kind = Action::Kind::kWaitUntil;
  action.wake_at = wake_at;
  return action;
}

ConnectSchedule::Action ConnectSchedule::OnAttemptSucceeded(absl::Time /*now*/) {
  NETLAYER_ASSERT(state_ == State::kTrying, "an attempt succeeds only while trying");
  state_ = State::kDone;
  Action action;
  action.kind = Action::Kind::kConnected;
  action.address_index = index_;
  return action;
}

ConnectSchedule::Action ConnectSchedule::OnWakeUp(absl::Time now) {
  NETLAYER_ASSERT(state_ == State::kWaiting, "wake-up only while waiting");
  ++round_;
  index_ = 0;
  return Try(now);
}

ConnectSchedule::Action ConnectSchedule::Cancel() {
  if (state_ == State::kDone) {
    Action action;
    action.kind = Action::Kind::kFailed;
    action.status = absl::CancelledError("connect: already finished");
    return action;
  }
  return Fail(absl::CancelledError("connect: cancelled"));
}

ConnectSchedule::Action ConnectSchedule::Fail(absl::Status status) {
  state_ = State::kDone;
  Action action;
  action.kind = Action::Kind::kFailed;
  action.status = std::move(status);
  return action;
}

absl::Duration ConnectSchedule::Jittered(absl::Duration d) {
  if (options_.jitter <= 0) return d;
  const double factor = 1.0 + options_.jitter * (2.0 * UniformDouble(*jitter_source_) - 1.0);
  // Jitter spreads waits out but never past max_delay (the seed's cap).
  return std::min(d * factor, options_.max_delay);
}

std::string ConnectSchedule::ReasonsText() const {
  std::string text = absl::StrJoin(reasons_, "; ");
  if (reasons_dropped_ > 0) absl::StrAppend(&text, "; and ", reasons_dropped_, " more");
  return text;
}

}  // namespace netlayer
