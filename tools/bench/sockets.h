// Small blocking-socket helpers for the raw baselines: loopback only, TCP_NODELAY, no SIGPIPE,
// and receive/send timeouts so a broken peer turns into an error instead of a hang.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace netlayer::bench {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// A listening TCP socket on 127.0.0.1 with an ephemeral port (stored in *port).
absl::StatusOr<Fd> ListenLoopback(uint16_t* port);
// Accepts one connection, waiting at most `timeout_seconds`; sets TCP_NODELAY on it.
absl::StatusOr<Fd> AcceptOne(const Fd& listener, double timeout_seconds);
// Connects to 127.0.0.1:port; sets TCP_NODELAY.
absl::StatusOr<Fd> ConnectLoopback(uint16_t port);
// Receive and send timeouts (0: none).
absl::Status SetTimeouts(const Fd& fd, double seconds);

// Reads exactly n bytes. NotFound if the peer closed before the first byte (a clean end at a
// message boundary); Unavailable if it closed midway; DeadlineExceeded on a timeout.
absl::Status ReadFull(const Fd& fd, void* data, size_t n);
absl::Status WriteFull(const Fd& fd, const void* data, size_t n);
// Writes every byte of the iovecs (retrying short writes).
absl::Status WritevFull(const Fd& fd, struct iovec* iov, int count);

inline void PutBigEndian32(uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}
inline uint32_t GetBigEndian32(const char* in) {
  auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(in[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace netlayer::bench
