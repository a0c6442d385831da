// Sys: every system call the posix backend makes, behind one small injected interface (the
// seed's "hooks for providing fake sockets or socket-factories"; LevelDB's Env for the OS).
//
// Each method has the system call's own contract: it returns what the call returns and, on
// failure, -1 with errno set. RealSys() makes the calls; FaultSys wraps another Sys and injects
// errors (EINTR, EAGAIN, ECONNRESET, EPIPE, ECONNREFUSED, EMFILE, ...), short reads and short
// writes, so tests can show the backend retries what is transient and reports the rest.
//
// Thread rules: a Sys is called from many threads at once; implementations must be thread-safe.
// A Sys must outlive every connection, listener and connect attempt that uses it.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "netlayer/core/mutex.h"

namespace netlayer::posix {

class Sys {
 public:
  virtual ~Sys() = default;
  virtual int Socket(int domain, int type, int protocol) = 0;
  virtual int Connect(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual int Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) = 0;
  virtual int Bind(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual int Listen(int fd, int backlog) = 0;
  virtual ssize_t Recv(int fd, void* buf, size_t len, int flags) = 0;
  virtual ssize_t SendMsg(int fd, const msghdr* msg, int flags) = 0;
  virtual int Shutdown(int fd, int how) = 0;
  virtual int Close(int fd) = 0;
  // REQUIRES: every descriptor in the sets is < FD_SETSIZE (the backend never passes others).
  virtual int Select(int nfds, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
                     timeval* timeout) = 0;
  virtual int Poll(pollfd* fds, nfds_t nfds, int timeout_ms) = 0;
  // The wake-up descriptor of each connection, listener and connect attempt.
  virtual int EventFd(unsigned initval, int flags) = 0;
  virtual ssize_t Read(int fd, void* buf, size_t len) = 0;
  virtual ssize_t Write(int fd, const void* buf, size_t len) = 0;
  virtual int SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) = 0;
  virtual int GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) = 0;
  virtual int GetSockName(int fd, sockaddr* addr, socklen_t* len) = 0;
  virtual int GetPeerName(int fd, sockaddr* addr, socklen_t* len) = 0;
  virtual int Fcntl(int fd, int cmd, int arg) = 0;
  // getaddrinfo's contract: 0 or an EAI_* code (EAI_SYSTEM with errno).
  virtual int GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                          addrinfo** result) = 0;
  virtual void FreeAddrInfo(addrinfo* result) = 0;
  virtual int Unlink(const char* path) = 0;
  // lstat(2).
  virtual int Lstat(const char* path, struct stat* out) = 0;
};

// The process's real system calls. Never destroyed.
Sys& RealSys();

// A Sys that forwards to `base` and injects faults. Faults are queued per operation and consumed
// in order by the matching calls; each fault applies to `count` calls. Calls with no pending
// fault pass through unchanged. Also counts calls and records the largest `nfds` given to
// Select (to show that no descriptor >= FD_SETSIZE reaches it).
class FaultSys : public Sys {
 public:
  enum class Op {
    kSocket,
    kConnect,
    kAccept,
    kBind,
    kListen,
    kRecv,
    kSend,
    kShutdown,
    kSelect,
    kPoll,
    kEventFd,
    kSetSockOpt,
    kGetAddrInfo,
    kCount,  // not an operation
  };
  struct Fault {
    // Fail with this errno (for kGetAddrInfo: return this EAI_* code). 0: no error.
    int error = 0;
    // With error == 0, for kRecv and kSend: pass the call through but move at most this many
    // bytes (a short read or write). 0 means no limit.
    size_t max_bytes = 0;
    // How many matching calls the fault applies to; kForever: every later matching call (the
    // fault stays queued, and faults behind it are never reached).
    int count = 1;
    // Only calls on this descriptor match (for calls that take one); -1 matches any.
    int fd = -1;
  };

  static constexpr int kForever = -1;

  explicit FaultSys(Sys& base = RealSys()) : base_(base) {}
  // Waits (up to a minute) for every posix connection thread of the process to end: a
  // connection's threads outlive its last reference while they finish its teardown, and may be
  // using this FaultSys.
  ~FaultSys() override;

  void Inject(Op op, Fault fault);
  // Shorthands.
  void FailNext(Op op, int error, int count = 1) { Inject(op, Fault{error, 0, count, -1}); }
  void ShortNext(Op op, size_t max_bytes, int count = 1) {
    Inject(op, Fault{0, max_bytes, count, -1});
  }
  // Faults still queued for `op`.
  size_t Pending(Op op) const;
  // Calls made of `op` (including failed ones).
  uint64_t Calls(Op op) const { return calls_[static_cast<size_t>(op)].load(); }
  int max_select_nfds() const { return max_select_nfds_.load(); }

  int Socket(int domain, int type, int protocol) override;
  int Connect(int fd, const sockaddr* addr, socklen_t len) override;
  int Accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override;
  int Bind(int fd, const sockaddr* addr, socklen_t len) override;
  int Listen(int fd, int backlog) override;
  ssize_t Recv(int fd, void* buf, size_t len, int flags) override;
  ssize_t SendMsg(int fd, const msghdr* msg, int flags) override;
  int Shutdown(int fd, int how) override;
  int Close(int fd) override { return base_.Close(fd); }
  int Select(int nfds, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
             timeval* timeout) override;
  int Poll(pollfd* fds, nfds_t nfds, int timeout_ms) override;
  int EventFd(unsigned initval, int flags) override;
  ssize_t Read(int fd, void* buf, size_t len) override { return base_.Read(fd, buf, len); }
  ssize_t Write(int fd, const void* buf, size_t len) override { return base_.Write(fd, buf, len); }
  int SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) override;
  int GetSockOpt(int fd, int level, int name, void* value, socklen_t* len) override {
    return base_.GetSockOpt(fd, level, name, value, len);
  }
  int GetSockName(int fd, sockaddr* addr, socklen_t* len) override {
    return base_.GetSockName(fd, addr, len);
  }
  int GetPeerName(int fd, sockaddr* addr, socklen_t* len) override {
    return base_.GetPeerName(fd, addr, len);
  }
  int Fcntl(int fd, int cmd, int arg) override { return base_.Fcntl(fd, cmd, arg); }
  int GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                  addrinfo** result) override;
  void FreeAddrInfo(addrinfo* result) override { base_.FreeAddrInfo(result); }
  int Unlink(const char* path) override { return base_.Unlink(path); }
  int Lstat(const char* path, struct stat* out) override { return base_.Lstat(path, out); }

 private:
  static constexpr size_t kOps = static_cast<size_t>(Op::kCount);
  // Counts the call and takes the first queued fault matching `fd`, if any.
  bool Take(Op op, int fd, Fault* out);

  Sys& base_;
  mutable Mutex mu_;
  std::array<std::deque<Fault>, kOps> faults_ ABSL_GUARDED_BY(mu_);
  std::array<std::atomic<uint64_t>, kOps> calls_{};
  std::atomic<int> max_select_nfds_{0};
};

}  // namespace netlayer::posix
