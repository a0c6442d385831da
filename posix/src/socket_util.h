// Internal helpers of the posix backend: addresses, waiting on descriptors, errno to status.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/posix/sys.h"

namespace netlayer::posix::internal {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// The socket addresses of `address`: one for literals and unix paths, getaddrinfo's list for a
// host name. InvalidArgument for a literal that does not parse; Unavailable if a name does not
// resolve.
absl::StatusOr<std::vector<SockAddr>> Resolve(Sys& sys, const Address& address);

// The Address of a socket address (IPv4, IPv6 or unix; an unnamed unix socket is "unix:").
Address ToAddress(const sockaddr* addr, socklen_t len);

// "what: strerror(err)".
std::string ErrnoText(std::string_view what, int err);
// An absl::Status for a failed system call: Unavailable for connection errors and resource
// shortages, DeadlineExceeded for timeouts, InvalidArgument/PermissionDenied where they fit.
absl::Status ErrnoStatus(std::string_view what, int err);
// The CloseReason for an errno seen on an open connection.
CloseReason ErrnoCloseReason(std::string_view what, int err);

// One descriptor to wait on. fd < 0 entries are ignored.
struct WaitFd {
  int fd = -1;
  bool read = false;
  bool write = false;
  bool ready = false;  // out: readable/writable, or in error or hung up
};
// Waits until one of `fds` is ready or `deadline` passes: select() when every descriptor is below
// FD_SETSIZE, poll() otherwise (never undefined behaviour with a large descriptor). Returns the
// number ready, 0 on timeout, or -1 with errno (EINTR included: the caller retries).
int WaitFds(Sys& sys, WaitFd* fds, size_t n, absl::Time deadline);

// The wake-up descriptor: an eventfd. Wake adds 1; Drain reads the count back to 0.
int NewWakeFd(Sys& sys);
void WakeFd(Sys& sys, int fd);
void DrainWakeFd(Sys& sys, int fd);

// Closes `fd`, retrying nothing (close is never retried on Linux).
void CloseFd(Sys& sys, int fd);

}  // namespace netlayer::posix::internal
