// Helpers for the posix tests: a thread-safe recording handler, waits on conditions with
// deadlines, and counts of the process's descriptors and threads.
#pragma once

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netlayer/core/connection.h"
#include "netlayer/posix/posix.h"

namespace netlayer::posix::testing {

inline PosixOptions WithSys(Sys* sys) {
  PosixOptions options;
  options.sys = sys;
  return options;
}

// Polls `done` until it holds or `timeout` passes (the backend's threads do the work).
inline bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return true;
}

inline int CountEntries(const char* dir) {
  DIR* d = ::opendir(dir);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - (std::string(dir) == "/proc/self/fd" ? 1 : 0);  // the DIR's own descriptor
}
inline int OpenFds() { return CountEntries("/proc/self/fd"); }
inline int LiveThreads() { return CountEntries("/proc/self/task"); }

// Records everything a connection's handler sees; thread-safe.
class Recorder : public ConnectionHandler {
 public:
  void InputData(Connection& connection, std::string_view data) override {
    std::function<void(Connection&, std::string_view)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_.append(data);
      hook = on_input_;
    }
    bytes_ += data.size();
    if (hook) hook(connection, data);
  }
  void ConnectionClosed(Connection& connection, const CloseReason& reason) override {
    std::function<void(Connection&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closes_.push_back(reason);
      hook = on_close_;
    }
    closed_++;
    if (hook) hook(connection);
  }
  void OnInput(std::function<void(Connection&, std::string_view)> f) {
    std::lock_guard<std::mutex> lock(mu_);
    on_input_ = std::move(f);
  }
  void OnClose(std::function<void(Connection&)> f) {
    std::lock_guard<std::mutex> lock(mu_);
    on_close_ = std::move(f);
  }
  std::string Received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  std::vector<CloseReason> Closes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closes_;
  }
  size_t bytes() const { return bytes_.load(); }
  int closed() const { return closed_.load(); }

 private:
  mutable std::mutex mu_;
  std::string received_;
  std::vector<CloseReason> closes_;
  std::function<void(Connection&, std::string_view)> on_input_;
  std::function<void(Connection&)> on_close_;
  std::atomic<size_t> bytes_{0};
  std::atomic<int> closed_{0};
};

inline std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// Reads from a raw blocking socket until `n` bytes or end of stream.
inline std::string ReadRaw(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

inline bool WriteRaw(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (r <= 0) return false;
    data.remove_prefix(static_cast<size_t>(r));
  }
  return true;
}

}  // namespace netlayer::posix::testing
