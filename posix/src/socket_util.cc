#include "socket_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/un.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace netlayer::posix::internal {

std::string ErrnoText(std::string_view what, int err) {
  char buf[128];
  // GNU strerror_r returns the message (maybe not in buf).
  const char* text = ::strerror_r(err, buf, sizeof buf);
  // Lower case, as the simulator's and every other reason: "connect to ...: connection refused".
  std::string lower = text;
  if (!lower.empty() && lower[0] >= 'A' && lower[0] <= 'Z') lower[0] = static_cast<char>(lower[0] - 'A' + 'a');
  return absl::StrCat(std::string(what), ": ", lower);
}

absl::Status ErrnoStatus(std::string_view what, int err) {
  std::string text = ErrnoText(what, err);
  switch (err) {
    case ETIMEDOUT:
      return absl::DeadlineExceededError(text);
    case EINVAL:
    case EAFNOSUPPORT:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(text);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(text);
    case EADDRINUSE:
      return absl::AlreadyExistsError(text);
    default:
      return absl::UnavailableError(text);
  }
}

CloseReason ErrnoCloseReason(std::string_view what, int err) {
  const bool reset = err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
  return CloseReason(reset ? CloseReason::Kind::kReset : CloseReason::Kind::kError,
                     ErrnoText(what, err));
}

namespace {
// RFC 6761 §6.3: "localhost" and names under ".localhost" are the loopback addresses, whether or
// not the machine's resolver knows them (a minimal system may have no /etc/hosts).
bool IsLocalhostName(std::string_view host) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
  };
  const std::string name = lower(host);
  return name == "localhost" ||
         (name.size() > 10 && name.compare(name.size() - 10, 10, ".localhost") == 0);
}
}  // namespace

absl::StatusOr<std::vector<SockAddr>> Resolve(Sys& sys, const Address& address) {
  if (address.kind() == Address::Kind::kHostName && IsLocalhostName(address.host())) {
    // 127.0.0.1 first, then ::1; no resolver involved.
    SockAddr v4;
    auto* in = reinterpret_cast<sockaddr_in*>(&v4.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(address.port());
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4.len = sizeof(sockaddr_in);
    SockAddr v6;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&v6.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port());
    in6->sin6_addr = in6addr_loopback;
    v6.len = sizeof(sockaddr_in6);
    return std::vector<SockAddr>{v4, v6};
  }
  std::vector<SockAddr> out;
  if (address.kind() == Address::Kind::kUnix) {
    SockAddr sa;
    auto* un = reinterpret_cast<sockaddr_un*>(&sa.storage);
    un->sun_family = AF_UNIX;
    const std::string& path = address.host();
    if (path.empty() || path.size() >= sizeof un->sun_path) {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", address.ToString(), "': bad unix socket path length"));
    }
    std::memcpy(un->sun_path, path.data(), path.size());
    sa.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    out.push_back(sa);
    return out;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  switch (address.kind()) {
    case Address::Kind::kIPv4:
      hints.ai_family = AF_INET;
      hints.ai_flags |= AI_NUMERICHOST;
      break;
    case Address::Kind::kIPv6:
      hints.ai_family = AF_INET6;
      hints.ai_flags |= AI_NUMERICHOST;
      break;
    default:
      hints.ai_family = AF_UNSPEC;
      hints.ai_flags |= AI_ADDRCONFIG;
      break;
  }
  const std::string port = std::to_string(address.port());
  addrinfo* result = nullptr;
  const int rc = sys.GetAddrInfo(address.host().c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? ErrnoText("getaddrinfo", errno)
                                       : absl::StrCat("getaddrinfo: ", ::gai_strerror(rc));
    std::string message = absl::StrCat("address '", address.ToString(), "': ", why);
    if (address.kind() != Address::Kind::kHostName) {
      return absl::InvalidArgumentError(message);
    }
    return absl::UnavailableError(message);
  }
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SockAddr sa;
    std::memcpy(&sa.storage, ai->ai_addr, ai->ai_addrlen);
    sa.len = ai->ai_addrlen;
    out.push_back(sa);
  }
  sys.FreeAddrInfo(result);
  if (out.empty()) {
    return absl::UnavailableError(
        absl::StrCat("address '", address.ToString(), "': no IPv4 or IPv6 address"));
  }
  return out;
}

Address ToAddress(const sockaddr* addr, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  switch (addr->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
      ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      return Address::IPv4(host, ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      return Address::IPv6(host, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(addr);
      const size_t offset = offsetof(sockaddr_un, sun_path);
      if (len <= offset) return Address::Unix("");
      size_t n = std::min<size_t>(len - offset, sizeof un->sun_path);
      std::string path(un->sun_path, n);
      if (size_t nul = path.find('\0'); nul != std::string::npos) path.resize(nul);
      return Address::Unix(path);
    }
    default:
      return Address::HostName("unknown", 0);
  }
}

int WaitFds(Sys& sys, WaitFd* fds, size_t n, absl::Time deadline) {
  int max_fd = -1;
  for (size_t i = 0; i < n; ++i) {
    fds[i].ready = false;
    max_fd = std::max(max_fd, fds[i].fd);
  }
  const absl::Duration left = deadline == absl::InfiniteFuture()
                                  ? absl::InfiniteDuration()
                                  : std::max(deadline - absl::Now(), absl::ZeroDuration());
  if (max_fd < FD_SETSIZE) {
    fd_set readable;
    fd_set writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    for (size_t i = 0; i < n; ++i) {
      if (fds[i].fd < 0) continue;
      if (fds[i].read) FD_SET(fds[i].fd, &readable);
      if (fds[i].write) FD_SET(fds[i].fd, &writable);
    }
    timeval tv{};
    timeval* timeout = nullptr;
    if (left != absl::InfiniteDuration()) {
      tv = absl::ToTimeval(left);
      if (tv.tv_sec < 0) tv = timeval{};
      timeout = &tv;
    }
    const int rc = sys.Select(max_fd + 1, &readable, &writable, nullptr, timeout);
    if (rc <= 0) return rc;
    int ready = 0;
    for (size_t i = 0; i < n; ++i) {
      if (fds[i].fd < 0) continue;
      fds[i].ready = (fds[i].read && FD_ISSET(fds[i].fd, &readable)) ||
                     (fds[i].write && FD_ISSET(fds[i].fd, &writable));
      ready += fds[i].ready ? 1 : 0;
    }
    return ready;
  }
  pollfd pfds[8];
  if (n > 8) {
    errno = EINVAL;
    return -1;
  }
  nfds_t count = 0;
  size_t index[8];
  for (size_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    pfds[count].fd = fds[i].fd;
    pfds[count].events =
        static_cast<short>((fds[i].read ? POLLIN : 0) | (fds[i].write ? POLLOUT : 0));
    pfds[count].revents = 0;
    index[count++] = i;
  }
  int timeout_ms = -1;
  if (left != absl::InfiniteDuration()) {
    // Round up so a wait never ends before its deadline.
    timeout_ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(left + absl::Milliseconds(1) - absl::Nanoseconds(1)), INT_MAX));
  }
  const int rc = sys.Poll(pfds, count, timeout_ms);
  if (rc <= 0) return rc;
  for (nfds_t j = 0; j < count; ++j) {
    fds[index[j]].ready = pfds[j].revents != 0;
  }
  return rc;
}

int NewWakeFd(Sys& sys) { return sys.EventFd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void WakeFd(Sys& sys, int fd) {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the waiter is woken anyway.
  while (sys.Write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void DrainWakeFd(Sys& sys, int fd) {
  uint64_t count = 0;
  while (sys.Read(fd, &count, sizeof count) < 0 && errno == EINTR) {
  }
}

void CloseFd(Sys& sys, int fd) {
  if (fd >= 0) sys.Close(fd);
}

}  // namespace netlayer::posix::internal
