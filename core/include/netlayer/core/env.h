// Env: the clock, timers, blocking waits and files, injected (after LevelDB's Env) so nothing in core/,
// smac/ or rpc/ reads a real clock or blocks a thread by itself. The simulator's Env runs
// virtual time; the posix Env reads the real clock and blocks on condition variables.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netlayer/core/file_system.h"

namespace netlayer {

// A one-shot flag another party sets; a waiter blocks until it is set or a deadline passes.
// Posix: a mutex and condition variable. Sim: WaitUntil runs the world until the flag is set or
// virtual time reaches the deadline (and asserts if called from inside a callback).
class Notification {
 public:
  virtual ~Notification() = default;
  virtual void Notify() = 0;
  virtual bool HasBeenNotified() const = 0;
  // True if notified, false if `deadline` passed first.
  virtual bool WaitUntil(absl::Time deadline) = 0;
};

using TimerId = uint64_t;

class Env {
 public:
  virtual ~Env() = default;
  virtual absl::Time Now() const = 0;
  // Runs `fn` once at or after `when` on the backend's timer context (posix: the Env's timer
  // thread; sim: the world). Never runs `fn` inside RunAt itself.
  virtual TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) = 0;
  // True if the timer was pending and will not run. A timer that is running or ran: false.
  virtual bool CancelTimer(TimerId id) = 0;
  virtual std::unique_ptr<Notification> NewNotification() = 0;
  // The machine's files (file_system.h): posix and asio: the real file system; sim: the host's
  // simulated disk. Default: NoFileSystem() (every call fails Unimplemented), so an Env without
  // files needs no change.
  virtual FileSystem& fs() { return NoFileSystem(); }
};

}  // namespace netlayer
