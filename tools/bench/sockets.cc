#include "sockets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>

namespace netlayer::bench {
namespace {

absl::Status Errno(const char* what, int err) {
  std::string message = std::string(what) + ": " + strerror(err);
  if (err == EAGAIN || err == EWOULDBLOCK) return absl::DeadlineExceededError(message);
  return absl::UnavailableError(message);
}

absl::Status SetNoDelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return Errno("setsockopt(TCP_NODELAY)", errno);
  }
  return absl::OkStatus();
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

}  // namespace

void Fd::Reset() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

absl::StatusOr<Fd> ListenLoopback(uint16_t* port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket", errno);
  sockaddr_in addr = Loopback(0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Errno("bind", errno);
  }
  if (::listen(fd.get(), 8) != 0) return Errno("listen", errno);
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("getsockname", errno);
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

absl::StatusOr<Fd> AcceptOne(const Fd& listener, double timeout_seconds) {
  pollfd p{listener.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, static_cast<int>(std::ceil(timeout_seconds * 1000)));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return Errno("poll", errno);
  if (ready == 0) return absl::DeadlineExceededError("accept: no connection in time");
  Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return Errno("accept", errno);
  if (absl::Status s = SetNoDelay(fd.get()); !s.ok()) return s;
  return fd;
}

absl::StatusOr<Fd> ConnectLoopback(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket", errno);
  sockaddr_in addr = Loopback(port);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Errno("connect", errno);
  if (absl::Status s = SetNoDelay(fd.get()); !s.ok()) return s;
  return fd;
}

absl::Status SetTimeouts(const Fd& fd, double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - std::floor(seconds)) * 1e6);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return Errno("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", errno);
  }
  return absl::OkStatus();
}

absl::Status ReadFull(const Fd& fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::recv(fd.get(), p + done, n - done, 0);
    if (r > 0) {
      done += static_cast<size_t>(r);
    } else if (r == 0) {
      if (done == 0) return absl::NotFoundError("peer closed");
      return absl::UnavailableError("peer closed in the middle of a message");
    } else if (errno != EINTR) {
      return Errno("recv", errno);
    }
  }
  return absl::OkStatus();
}

absl::Status WriteFull(const Fd& fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::send(fd.get(), p + done, n - done, MSG_NOSIGNAL);
    if (w >= 0) {
      done += static_cast<size_t>(w);
    } else if (errno != EINTR) {
      return Errno("send", errno);
    }
  }
  return absl::OkStatus();
}

absl::Status WritevFull(const Fd& fd, struct iovec* iov, int count) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t w = ::sendmsg(fd.get(), &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("sendmsg", errno);
    }
    size_t left = static_cast<size_t>(w);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return absl::OkStatus();
}

}  // namespace netlayer::bench
