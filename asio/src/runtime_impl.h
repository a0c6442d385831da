// Internal: the Runtime's io_context, its threads, its Env, and the registry of what the
// Runtime's destructor must stop (open connections, listeners, connect attempts).
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/threaded/file_system.h"
#include "netlayer/core/timer_queue.h"

namespace netlayer::asio::internal {

// The Env of a Runtime: the real clock; timers kept in a core TimerQueue, with one steady_timer
// armed at the earliest deadline; due timers run on the io thread that sees the steady_timer
// fire, one at a time. Thread rules: any method from any thread.
class AsioEnv final : public Env {
 public:
  explicit AsioEnv(::asio::io_context& io) : timer_(io) {}
  absl::Time Now() const override;
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;
  // The real file system (threaded/file_system.h), shared with posix.
  FileSystem& fs() override { return threaded::PosixFileSystem::Default(); }
  // Drops every pending timer; RunAt schedules nothing from then on (returns 0).
  void Shutdown();

 private:
  // REQUIRES: mu_ held. Arms the steady_timer for the earliest deadline (unless timers run now).
  void Arm();
  void OnFired(uint64_t generation);

  std::mutex mu_;
  TimerQueue timers_;           // guarded by mu_
  ::asio::steady_timer timer_;  // guarded by mu_
  std::optional<absl::Time> armed_for_;
  uint64_t generation_ = 0;  // the wait that counts; older waits' completions are ignored
  bool running_ = false;     // an io thread is running due timers
  bool stopped_ = false;
};

struct RuntimeImpl {
  explicit RuntimeImpl(int thread_count);

  // Runs `stop` when the Runtime is destroyed, unless Unregister(id) came first. Returns 0 (and
  // registers nothing) once the Runtime is shutting down.
  uint64_t Register(std::function<void()> stop);
  // Register for `object`'s `stop` method, if the object still lives then.
  template <typename T>
  uint64_t RegisterStop(const std::shared_ptr<T>& object, void (T::*stop)()) {
    return Register([weak = std::weak_ptr<T>(object), stop] {
      if (std::shared_ptr<T> alive = weak.lock()) ((*alive).*stop)();
    });
  }
  void Unregister(uint64_t id);
  // The destructor's work: stops everything registered, cancels timers, waits for the threads.
  void Shutdown();

  ::asio::io_context io;
  std::optional<::asio::executor_work_guard<::asio::io_context::executor_type>> work;
  AsioEnv env{io};
  std::vector<std::thread> threads;

  std::mutex mu;
  bool shutting_down = false;                          // guarded by mu
  uint64_t next_id = 1;                                // guarded by mu
  std::map<uint64_t, std::function<void()>> stoppers;  // guarded by mu
};

}  // namespace netlayer::asio::internal
