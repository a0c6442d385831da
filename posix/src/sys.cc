#include "netlayer/posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/time/clock.h"
#include "netlayer/core/assert.h"
#include "netlayer/posix/posix.h"

namespace netlayer::posix {
namespace {

class RealSysImpl final : public Sys {
 public:
  int Socket(int domain, int type, int protocol) override {
    return ::socket(domain, type, protocol);
  }
  int Connect(int fd, const sockaddr* addr, socklen_t len) override {
    return ::connect(fd, addr, len);
  }
  int Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override {
    return ::accept4(fd, addr, len, flags);
  }
  int Bind(int fd, const sockaddr* addr, socklen_t len) override { return ::bind(fd, addr, len); }
  int Listen(int fd, int backlog) override { return ::listen(fd, backlog); }
  ssize_t Recv(int fd, void* buf, size_t len, int flags) override {
    return ::recv(fd, buf, len, flags);
  }
  ssize_t SendMsg(int fd, const msghdr* msg, int flags) override {
    return ::sendmsg(fd, msg, flags);
  }
  int Shutdown(int fd, int how) override { return ::shutdown(fd, how); }
  int Close(int fd) override { return ::close(fd); }
  int Select(int nfds, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
             timeval* timeout) override {
    return ::select(nfds, readfds, writefds, exceptfds, timeout);
  }
  int Poll(pollfd* fds, nfds_t nfds, int timeout_ms) override {
    return ::poll(fds, nfds, timeout_ms);
  }
  int EventFd(unsigned initval, int flags) override { return ::eventfd(initval, flags); }
  ssize_t Read(int fd, void* buf, size_t len) override { return ::read(fd, buf, len); }
  ssize_t Write(int fd, const void* buf, size_t len) override { return ::write(fd, buf, len); }
  int SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) override {
    return ::setsockopt(fd, level, name, value, len);
  }
  int GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) override {
    return ::getsockopt(fd, level, name, value, len);
  }
  int GetSockName(int fd, sockaddr* addr, socklen_t* len) override {
    return ::getsockname(fd, addr, len);
  }
  int GetPeerName(int fd, sockaddr* addr, socklen_t* len) override {
    return ::getpeername(fd, addr, len);
  }
  int Fcntl(int fd, int cmd, int arg) override { return ::fcntl(fd, cmd, arg); }
  int GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                  addrinfo** result) override {
    return ::getaddrinfo(node, service, hints, result);
  }
  void FreeAddrInfo(addrinfo* result) override { ::freeaddrinfo(result); }
  int Unlink(const char* path) override { return ::unlink(path); }
  int Lstat(const char* path, struct stat* out) override { return ::lstat(path, out); }
};

}  // namespace

Sys& RealSys() {
  static Sys* const sys = new RealSysImpl();  // never destroyed: threads may outlive statics
  return *sys;
}

FaultSys::~FaultSys() {
  const bool ended = WaitForConnectionThreads(absl::Now() + absl::Minutes(1));
  NETLAYER_ASSERT(ended, "a FaultSys outlives the connection threads that use it");
}

void FaultSys::Inject(Op op, Fault fault) {
  MutexLock lock(mu_);
  if (fault.count == 0 || fault.count < kForever) fault.count = 1;
  faults_[static_cast<size_t>(op)].push_back(fault);
}

size_t FaultSys::Pending(Op op) const {
  MutexLock lock(mu_);
  return faults_[static_cast<size_t>(op)].size();
}

bool FaultSys::Take(Op op, int fd, Fault* out) {
  const size_t i = static_cast<size_t>(op);
  calls_[i].fetch_add(1);
  MutexLock lock(mu_);
  std::deque<Fault>& queue = faults_[i];
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->fd != -1 && it->fd != fd) continue;
    *out = *it;
    if (it->count != kForever && --it->count == 0) queue.erase(it);
    return true;
  }
  return false;
}

#define NETLAYER_FAULT_ERROR(op, fd)             \
  Fault fault;                                   \
  const bool faulted = Take((op), (fd), &fault); \
  if (faulted && fault.error != 0) {             \
    errno = fault.error;                         \
    return -1;                                   \
  }

int FaultSys::Socket(int domain, int type, int protocol) {
  NETLAYER_FAULT_ERROR(Op::kSocket, -1);
  return base_.Socket(domain, type, protocol);
}
int FaultSys::Connect(int fd, const sockaddr* addr, socklen_t len) {
  NETLAYER_FAULT_ERROR(Op::kConnect, fd);
  return base_.Connect(fd, addr, len);
}
int FaultSys::Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  NETLAYER_FAULT_ERROR(Op::kAccept, fd);
  return base_.Accept4(fd, addr, len, flags);
}
int FaultSys::Bind(int fd, const sockaddr* addr, socklen_t len) {
  NETLAYER_FAULT_ERROR(Op::kBind, fd);
  return base_.Bind(fd, addr, len);
}
int FaultSys::Listen(int fd, int backlog) {
  NETLAYER_FAULT_ERROR(Op::kListen, fd);
  return base_.Listen(fd, backlog);
}
ssize_t FaultSys::Recv(int fd, void* buf, size_t len, int flags) {
  NETLAYER_FAULT_ERROR(Op::kRecv, fd);
  if (faulted && fault.max_bytes > 0) len = std::min(len, fault.max_bytes);
  return base_.Recv(fd, buf, len, flags);
}
ssize_t FaultSys::SendMsg(int fd, const msghdr* msg, int flags) {
  NETLAYER_FAULT_ERROR(Op::kSend, fd);
  if (!faulted || fault.max_bytes == 0) return base_.SendMsg(fd, msg, flags);
  // A short write: pass on only the first max_bytes of the pieces.
  std::vector<iovec> iov;
  size_t left = fault.max_bytes;
  for (size_t i = 0; i < msg->msg_iovlen && left > 0; ++i) {
    iovec piece = msg->msg_iov[i];
    piece.iov_len = std::min(piece.iov_len, left);
    left -= piece.iov_len;
    iov.push_back(piece);
  }
  msghdr shorter = *msg;
  shorter.msg_iov = iov.data();
  shorter.msg_iovlen = iov.size();
  return base_.SendMsg(fd, &shorter, flags);
}
int FaultSys::Shutdown(int fd, int how) {
  NETLAYER_FAULT_ERROR(Op::kShutdown, fd);
  return base_.Shutdown(fd, how);
}
int FaultSys::Select(int nfds, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
                     timeval* timeout) {
  int seen = max_select_nfds_.load();
  while (nfds > seen && !max_select_nfds_.compare_exchange_weak(seen, nfds)) {
  }
  NETLAYER_FAULT_ERROR(Op::kSelect, -1);
  return base_.Select(nfds, readfds, writefds, exceptfds, timeout);
}
int FaultSys::Poll(pollfd* fds, nfds_t nfds, int timeout_ms) {
  NETLAYER_FAULT_ERROR(Op::kPoll, -1);
  return base_.Poll(fds, nfds, timeout_ms);
}
int FaultSys::EventFd(unsigned initval, int flags) {
  NETLAYER_FAULT_ERROR(Op::kEventFd, -1);
  return base_.EventFd(initval, flags);
}
int FaultSys::SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) {
  NETLAYER_FAULT_ERROR(Op::kSetSockOpt, fd);
  return base_.SetSockOpt(fd, level, name, value, len);
}
int FaultSys::GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                          addrinfo** result) {
  Fault fault;
  if (Take(Op::kGetAddrInfo, -1, &fault) && fault.error != 0) return fault.error;
  return base_.GetAddrInfo(node, service, hints, result);
}

#undef NETLAYER_FAULT_ERROR

}  // namespace netlayer::posix
