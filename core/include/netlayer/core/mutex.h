// Mutex and MutexLock: std::mutex with clang's thread-safety
// annotations, so members marked ABSL_GUARDED_BY(mu_) and functions marked
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) are checked at compile time (the CI's clang build runs with
// -Wthread-safety -Werror). Abseil's own Mutex carries these annotations too, but ThreadSanitizer
// reports false races inside Debian's prebuilt absl::Mutex (DESIGN.md §9), so threaded code uses
// these thin wrappers over the standard types instead (posix::CondVar waits with a MutexLock).
//
// Core, smac, rpc and the simulator start no thread; they use these only to protect state that
// application threads share (a backend's threads, or callers of a thread-safe API).
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace netlayer {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis the caller holds the lock (in lambdas run under it, e.g. wait predicates).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope. unlock() and lock() release and retake it within the scope (the
// delivery loops call handlers with the lock released); it is released at the end if held.
// Also the Lock of DeliverEvents / ReceiveInput (connection_state.h).
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : lock_(mu.mu_) {}
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  // For a condition variable's wait (posix::CondVar). The analysis still sees the lock held.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace netlayer
