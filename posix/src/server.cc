// The server factory: a listening socket and an accept thread per listener.
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "connection_impl.h"
#include "netlayer/core/log.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "socket_util.h"

namespace netlayer::posix {
namespace {

using internal::CloseFd;
using internal::ErrnoStatus;
using internal::ErrnoText;
using internal::WaitFd;

// What the accept thread shares with the Listener handle.
struct ListenerCore {
  ListenerCore(const PosixOptions& opts, int listen, int wake, Address addr)
      : options(opts),
        sys(opts.system()),
        listen_fd(listen),
        wake_fd(wake),
        address(std::move(addr)) {}

  void AcceptLoop();

  const PosixOptions options;
  Sys& sys;
  const int listen_fd;
  const int wake_fd;
  const Address address;
  std::string unlink_path;   // the unix socket file this listener created
  AcceptCallback on_accept;  // set for the callback form

  Mutex mu;
  CondVar cv;  // a connection queued, room in the queue, or closed
  bool closed ABSL_GUARDED_BY(mu) = false;
  std::deque<std::shared_ptr<Connection>> queue ABSL_GUARDED_BY(mu);
};

class PosixListener final : public Listener {
 public:
  explicit PosixListener(std::shared_ptr<ListenerCore> core) : core_(std::move(core)) {
    thread_ = std::thread([core = core_] { core->AcceptLoop(); });
  }
  ~PosixListener() override { Close(); }

  Address address() const override { return core_->address; }
  std::shared_ptr<Connection> Accept(absl::Time deadline) override {
    MutexLock lock(core_->mu);
    if (core_->on_accept) return nullptr;  // the callback form hands connections out itself
    core_->cv.WaitUntil(lock, deadline, [this] {
      core_->mu.AssertHeld();
      return core_->closed || !core_->queue.empty();
    });
    if (core_->closed || core_->queue.empty()) return nullptr;
    std::shared_ptr<Connection> connection = std::move(core_->queue.front());
    core_->queue.pop_front();
    core_->cv.NotifyAll();  // room for the accept thread
    return connection;
  }
  void Close() override {
    std::deque<std::shared_ptr<Connection>> dropped;
    {
      MutexLock lock(core_->mu);
      if (!core_->closed) {
        core_->closed = true;
        internal::WakeFd(core_->sys, core_->wake_fd);
        dropped.swap(core_->queue);
        core_->cv.NotifyAll();
      }
    }
    dropped.clear();  // accepted but never taken: closed (outside the lock: joins threads)
    MutexLock lock(join_mu_);
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // Close() from the accept callback: the thread ends by itself
    } else {
      thread_.join();
    }
  }
  bool IsOpen() const override {
    MutexLock lock(core_->mu);
    return !core_->closed;
  }

 private:
  std::shared_ptr<ListenerCore> core_;
  Mutex join_mu_;  // serialises joining between concurrent Close() calls
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

void ListenerCore::AcceptLoop() {
  absl::Time resume_at = absl::InfinitePast();  // after an accept error, pause until then
  for (;;) {
    {
      MutexLock lock(mu);
      // A full queue stops accepting until Accept() makes room.
      cv.WaitUntil(lock, absl::InfiniteFuture(), [this] {
        mu.AssertHeld();
        return closed || on_accept != nullptr || queue.size() < options.accept_queue_limit;
      });
      if (closed) break;
    }
    const bool pausing = absl::Now() < resume_at;
    WaitFd fds[2] = {{pausing ? -1 : listen_fd, true, false}, {wake_fd, true, false}};
    const int ready = internal::WaitFds(sys, fds, 2, pausing ? resume_at : absl::InfiniteFuture());
    if (ready < 0) {
      if (errno != EINTR) {
        Log(LogLayer::kPosix)
            .error("listener {}: {}", address.ToString(), ErrnoText("select", errno));
        resume_at = absl::Now() + options.accept_error_backoff;
      }
      continue;
    }
    if (fds[1].ready) internal::DrainWakeFd(sys, wake_fd);
    if (!fds[0].ready) continue;
    const int fd = sys.Accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      switch (err) {
        case EINTR:
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
        case ECONNABORTED:
        case EPROTO:
          continue;  // transient: the next connection may be fine
        default:
          // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected: keep the listener, pause.
          Log(LogLayer::kPosix)
              .warn("listener {}: {}; pausing {}", address.ToString(), ErrnoText("accept", err),
                    absl::FormatDuration(options.accept_error_backoff));
          resume_at = absl::Now() + options.accept_error_backoff;
          continue;
      }
    }
    absl::StatusOr<std::shared_ptr<Connection>> connection = internal::StartConnection(fd, options);
    if (!connection.ok()) {
      Log(LogLayer::kPosix)
          .warn("listener {}: {}", address.ToString(), connection.status().ToString());
      resume_at = absl::Now() + options.accept_error_backoff;
      continue;
    }
    if (on_accept) {
      on_accept(std::move(*connection));  // on this thread, no lock held
      continue;
    }
    MutexLock lock(mu);
    if (closed) break;  // dropped: the connection closes as the last reference goes
    queue.push_back(std::move(*connection));
    cv.NotifyAll();
  }
  if (!unlink_path.empty()) sys.Unlink(unlink_path.c_str());
  CloseFd(sys, listen_fd);
  MutexLock lock(mu);
  CloseFd(sys, wake_fd);
  // Close() wakes only while !closed; closed is set before we get here, so no write follows.
}

// A unix socket path already exists: reuse it if it is a socket nobody answers on.
absl::Status ClaimUnixPath(Sys& sys, const Address& address, const internal::SockAddr& sa) {
  struct stat st {};
  if (sys.Lstat(address.host().c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(absl::StrCat("listen on ", address.ToString()), errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat("listen on ", address.ToString(), ": the path exists and is not a socket"));
  }
  const int probe = sys.Socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoStatus("socket", errno);
  const int rc = sys.Connect(probe, sa.get(), sa.len);
  const int err = rc == 0 ? 0 : errno;
  CloseFd(sys, probe);
  if (rc == 0 || err == EAGAIN) {  // EAGAIN: a live listener with a full backlog
    return absl::AlreadyExistsError(
        absl::StrCat("listen on ", address.ToString(), ": a server is listening there"));
  }
  if (err == ECONNREFUSED) {
    Log(LogLayer::kPosix).info("listen on {}: removing a stale socket file", address.ToString());
    if (sys.Unlink(address.host().c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(absl::StrCat("unlink ", address.host()), errno);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Listener>> DoListen(const PosixOptions& options,
                                                   const Address& address,
                                                   AcceptCallback on_accept) {
  Sys& sys = options.system();
  absl::StatusOr<std::vector<internal::SockAddr>> resolved = internal::Resolve(sys, address);
  if (!resolved.ok()) return resolved.status();
  const internal::SockAddr& sa = resolved->front();
  const bool is_unix = sa.family() == AF_UNIX;
  if (is_unix) {
    if (absl::Status s = ClaimUnixPath(sys, address, sa); !s.ok()) return s;
  }
  const int fd = sys.Socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  const std::string what = absl::StrCat("listen on ", address.ToString());
  if (!is_unix) {
    const int one = 1;
    sys.SetSockOpt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (sys.Bind(fd, sa.get(), sa.len) != 0) {
    const int err = errno;
    CloseFd(sys, fd);
    return ErrnoStatus(what, err);
  }
  if (sys.Listen(fd, options.listen_backlog) != 0) {
    const int err = errno;
    CloseFd(sys, fd);
    if (is_unix) sys.Unlink(address.host().c_str());
    return ErrnoStatus(what, err);
  }
  Address bound = address;
  if (!is_unix) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (sys.GetSockName(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      bound = internal::ToAddress(reinterpret_cast<sockaddr*>(&ss), len);
    }
  }
  const int wake = internal::NewWakeFd(sys);
  if (wake < 0) {
    const int err = errno;
    CloseFd(sys, fd);
    if (is_unix) sys.Unlink(address.host().c_str());
    return ErrnoStatus("eventfd", err);
  }
  auto core = std::make_shared<ListenerCore>(options, fd, wake, bound);
  if (is_unix) core->unlink_path = address.host();
  core->on_accept = std::move(on_accept);
  return std::make_shared<PosixListener>(std::move(core));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Listener>> PosixServerFactory::Listen(const Address& address) {
  return DoListen(options_, address, nullptr);
}

absl::StatusOr<std::shared_ptr<Listener>> PosixServerFactory::Listen(const Address& address,
                                                                     AcceptCallback on_accept) {
  if (!on_accept) return absl::InvalidArgumentError("listen: empty accept callback");
  return DoListen(options_, address, std::move(on_accept));
}

}  // namespace netlayer::posix
