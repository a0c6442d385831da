// The client factory: the core ConnectSchedule driven on the real clock.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "connection_impl.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "socket_util.h"

namespace netlayer::posix {
namespace {

using internal::CloseFd;
using internal::ErrnoStatus;
using internal::ErrnoText;
using internal::WaitFd;

// What an asynchronous attempt shares with its handle. The blocking form has none.
struct AttemptControl {
  explicit AttemptControl(Sys& s) : sys(s) {}
  Sys& sys;
  Mutex mu;
  CondVar cv;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;     // the thread is done; wake_fd is closed
  bool in_callback ABSL_GUARDED_BY(mu) = false;  // a ConnectHandler method is running
  std::thread::id callback_thread ABSL_GUARDED_BY(mu);
  // Set before the attempt's thread starts, then only read; closed (under mu, with `finished`
  // set) when the thread ends, and written to only while !finished.
  int wake_fd = -1;

  bool IsCancelled() {
    MutexLock lock(mu);
    return cancelled;
  }
  // Sleeps until `deadline`; false if cancelled first.
  bool SleepUntil(absl::Time deadline) {
    MutexLock lock(mu);
    cv.WaitUntil(lock, deadline, [this] {
      mu.AssertHeld();
      return cancelled;
    });
    return !cancelled;
  }
  void Cancel() {
    MutexLock lock(mu);
    if (!cancelled) {
      cancelled = true;
      if (!finished) internal::WakeFd(sys, wake_fd);  // interrupts a connect in progress
      cv.NotifyAll();
    }
    // No callback after Cancel returns, and the thread no longer uses the Sys: wait for it to
    // finish (it is interrupted promptly), unless Cancel is called from its own callback.
    cv.WaitUntil(lock, absl::InfiniteFuture(), [this] {
      mu.AssertHeld();
      return finished || (in_callback && callback_thread == std::this_thread::get_id());
    });
  }
};

class PosixConnectAttempt final : public ConnectAttempt {
 public:
  explicit PosixConnectAttempt(std::shared_ptr<AttemptControl> control)
      : control_(std::move(control)) {}
  void Cancel() override { control_->Cancel(); }
  bool done() const override {
    MutexLock lock(control_->mu);
    return control_->finished || control_->cancelled;
  }

 private:
  std::shared_ptr<AttemptControl> control_;
};

// One connection attempt to one socket address, bounded by `deadline`, interrupted by
// `wake_fd` (if >= 0). Returns a connected blocking socket.
absl::StatusOr<int> ConnectOne(Sys& sys, const internal::SockAddr& sa, const Address& address,
                               absl::Time deadline, int wake_fd) {
  const int fd = sys.Socket(sa.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  const std::string what = absl::StrCat("connect to ", address.ToString());
  int rc = sys.Connect(fd, sa.get(), sa.len);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && (err == EINPROGRESS || err == EINTR)) {
    for (;;) {
      WaitFd fds[2] = {{fd, false, true}, {wake_fd, true, false}};
      const int ready = internal::WaitFds(sys, fds, 2, deadline);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        err = errno;
        break;
      }
      if (fds[1].ready) {
        CloseFd(sys, fd);
        return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      }
      if (ready == 0) {
        if (absl::Now() < deadline) continue;
        CloseFd(sys, fd);
        return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
      }
      socklen_t len = sizeof err;
      if (sys.GetSockOpt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      break;
    }
  }
  if (err != 0) {
    CloseFd(sys, fd);
    return ErrnoStatus(what, err);
  }
  return fd;
}

absl::StatusOr<int> ConnectAddress(Sys& sys, const Address& address, absl::Time deadline,
                                   int wake_fd) {
  absl::StatusOr<std::vector<internal::SockAddr>> resolved = internal::Resolve(sys, address);
  if (!resolved.ok()) return resolved.status();
  absl::Status last;
  for (const internal::SockAddr& sa : *resolved) {
    absl::StatusOr<int> fd = ConnectOne(sys, sa, address, deadline, wake_fd);
    if (fd.ok() || absl::IsCancelled(fd.status())) return fd;
    last = fd.status();
    if (absl::Now() >= deadline) break;
  }
  return last;
}

// Runs the schedule to its end: a connected socket or the schedule's failure.
absl::StatusOr<int> RunSchedule(Sys& sys, ConnectSchedule& schedule, AttemptControl* control) {
  ConnectSchedule::Action action = schedule.Start(absl::Now());
  for (;;) {
    switch (action.kind) {
      case ConnectSchedule::Action::Kind::kTryAddress: {
        absl::StatusOr<int> fd =
            ConnectAddress(sys, schedule.addresses()[action.address_index], action.attempt_deadline,
                           control ? control->wake_fd : -1);
        if (control != nullptr && control->IsCancelled()) {
          if (fd.ok()) CloseFd(sys, *fd);
          return absl::CancelledError("connect: cancelled");
        }
        if (fd.ok()) {
          action = schedule.OnAttemptSucceeded(absl::Now());
          return *fd;
        }
        action = schedule.OnAttemptFailed(absl::Now(), fd.status());
        break;
      }
      case ConnectSchedule::Action::Kind::kWaitUntil:
        if (control != nullptr) {
          if (!control->SleepUntil(action.wake_at)) {
            return absl::CancelledError("connect: cancelled");
          }
        } else {
          // ConnectBlocking waits out the schedule's delay on the caller's own thread; nothing
          // else can end the wait (the blocking form has no Cancel): not synchronisation.
          const auto wait = absl::ToChronoNanoseconds(
              std::max(action.wake_at - absl::Now(), absl::ZeroDuration()));
          std::this_thread::sleep_for(wait);  // NOLINT(determinism)
        }
        action = schedule.OnWakeUp(absl::Now());
        break;
      case ConnectSchedule::Action::Kind::kConnected:
      case ConnectSchedule::Action::Kind::kFailed:
        return action.status;
    }
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<ConnectAttempt>> PosixClientFactory::Connect(
    std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler) {
  if (handler == nullptr) return absl::InvalidArgumentError("connect: null handler");
  auto generator = std::shared_ptr<Generator>(NewOsSeededGenerator());
  absl::StatusOr<ConnectSchedule> schedule =
      ConnectSchedule::Create(std::move(addresses), options, generator.get());
  if (!schedule.ok()) return schedule.status();
  Sys& sys = options_.system();
  auto control = std::make_shared<AttemptControl>(sys);
  control->wake_fd = internal::NewWakeFd(sys);
  if (control->wake_fd < 0) return ErrnoStatus("eventfd", errno);
  std::thread([control, handler = std::move(handler), schedule = std::move(*schedule), generator,
               popts = options_]() mutable {
    Sys& sys = popts.system();
    absl::StatusOr<int> fd = RunSchedule(sys, schedule, control.get());
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        fd.ok() ? internal::StartConnection(*fd, popts)
                : absl::StatusOr<std::shared_ptr<Connection>>(fd.status());
    bool deliver = false;
    {
      MutexLock lock(control->mu);
      if (!control->cancelled) {
        deliver = true;
        control->in_callback = true;
        control->callback_thread = std::this_thread::get_id();
      }
    }
    if (deliver) {
      if (connection.ok()) {
        handler->Connected(std::move(*connection));
      } else {
        handler->FailedConnection(connection.status());
      }
    } else if (connection.ok()) {
      (*connection)->Close();  // cancelled meanwhile: not handed out
    }
    connection = absl::CancelledError("");
    handler.reset();
    MutexLock lock(control->mu);
    control->in_callback = false;
    control->finished = true;
    CloseFd(sys, control->wake_fd);
    control->cv.NotifyAll();
  }).detach();
  return std::make_shared<PosixConnectAttempt>(std::move(control));
}

absl::StatusOr<std::shared_ptr<Connection>> PosixClientFactory::ConnectBlocking(
    std::vector<Address> addresses, ConnectOptions options) {
  std::unique_ptr<Generator> generator = NewOsSeededGenerator();
  absl::StatusOr<ConnectSchedule> schedule =
      ConnectSchedule::Create(std::move(addresses), options, generator.get());
  if (!schedule.ok()) return schedule.status();
  absl::StatusOr<int> fd = RunSchedule(options_.system(), *schedule, nullptr);
  if (!fd.ok()) return fd.status();
  return internal::StartConnection(*fd, options_);
}

}  // namespace netlayer::posix
