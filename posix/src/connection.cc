// The posix Connection: one mutex guards a core ConnectionState; an input thread and an output
// thread per connection (see posix.h for the threads and lifetimes).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connection_impl.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/posix/env.h"
#include "netlayer/threaded/memory.h"
#include "socket_util.h"

namespace netlayer::posix {
namespace {

using internal::ErrnoCloseReason;
using internal::WaitFd;

// Pieces per sendmsg (well below IOV_MAX).
constexpr size_t kMaxIov = 64;
// A read of at least this many bytes is followed by another read before waiting in select().
constexpr size_t kReadAgainAfter = size_t{64} << 10;
// Bytes per blocking sendmsg of the output thread. A blocking send returns once all of it is
// in the socket, and its chunks are recycled only then: sending the whole queue at once left the
// writers copying into fresh allocations (page faults in the copy, half the bulk throughput).
constexpr size_t kMaxBlockingSendBytes = size_t{1} << 20;

using Actions = ConnectionState::Actions;
using ReadPlan = ConnectionState::ReadPlan;

// Connection threads alive in the process (WaitForConnectionThreads). Never destroyed: detached
// connection threads may still end while the process exits.
struct LiveThreads {
  Mutex mu;
  CondVar cv;
  int count ABSL_GUARDED_BY(mu) = 0;
};
LiveThreads& Live() {
  static LiveThreads* const live = new LiveThreads();
  return *live;
}

class PosixConnection;

// Sends `pieces` with non-blocking sendmsg calls until all are sent, the socket is full, or an
// error. Returns the bytes sent; `err` is set (non-zero) on an error other than a full socket.
size_t SendDirect(Sys& sys, int fd, absl::Span<const std::string_view> pieces, int& err) {
  err = 0;
  size_t sent = 0;
  size_t first = 0;   // the first piece not wholly sent
  size_t offset = 0;  // bytes of pieces[first] already sent
  while (first < pieces.size()) {
    iovec iov[kMaxIov];
    size_t count = 0;
    size_t batch = 0;
    for (size_t i = first; i < pieces.size() && count < kMaxIov; ++i) {
      std::string_view p = pieces[i];
      if (i == first) p.remove_prefix(offset);
      if (p.empty()) continue;
      iov[count++] = iovec{const_cast<char*>(p.data()), p.size()};
      batch += p.size();
    }
    if (count == 0) break;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n = sys.SendMsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) err = errno;
      break;
    }
    sent += static_cast<size_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      const size_t in_piece = pieces[first].size() - offset;
      if (left < in_piece) {
        offset += left;
        left = 0;
      } else {
        left -= in_piece;
        ++first;
        offset = 0;
      }
    }
    while (first < pieces.size() && pieces[first].size() == offset) {
      ++first;
      offset = 0;
    }
    if (static_cast<size_t>(n) < batch) break;  // the socket buffer is full
  }
  return sent;
}

// The part of a connection its threads share with the handle the application holds. Every
// decision is the ConnectionState's; this keeps the descriptors and carries out its Actions.
struct Core {
  Core(Sys& s, int socket_fd, int wake, const PosixOptions& opts)
      : sys(s), fd(socket_fd), wake_fd(wake), options(opts), state(opts.limits) {
    MutexLock lock(mu);
    state.KeepSparesWhenDrained();  // the output thread frees them once idle (OutputLoop)
  }

  void InputLoop();
  void OutputLoop();
  // A connection thread is done with the stream; after the last one the state releases it.
  void ThreadDone() {
    MutexLock lock(mu);
    NETLAYER_ASSERT(threads_left > 0, "two threads per connection");
    if (--threads_left == 0) Carry(state.OnTransportDone());
  }
  // Carries out what the state returned: system calls that never block.
  void Carry(const Actions& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!fds_closed) {
      if (a.reset) {
        linger lg{1, 0};  // the final close sends a reset
        sys.SetSockOpt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      }
      // A blocking send on a peer that does not read returns once the socket is shut down.
      if (a.unblock_sender) sys.Shutdown(fd, SHUT_RDWR);
      if (a.shutdown_write) sys.Shutdown(fd, SHUT_WR);
      if (a.wake_reader) internal::WakeFd(sys, wake_fd);
    }
    if (a.wake_transport) out_cv.NotifyAll();
    if (a.release) {
      NETLAYER_ASSERT(!fds_closed, "a stream is released once");
      fds_closed = true;
      internal::CloseFd(sys, fd);
      internal::CloseFd(sys, wake_fd);
    }
  }

  // This connection's non-blocking send path (a direct writer's, and the reader's when it sends
  // the answers its delivery corked). Its `carry` runs with the lock held.
  auto Writer() {
    return DriverWriter{
        [this](absl::Span<const std::string_view> p, std::optional<CloseReason>& error) {
          int err = 0;
          const size_t sent = SendDirect(sys, fd, p, err);
          if (err != 0) error = ErrnoCloseReason("send", err);
          return sent;
        },
        [this](const Actions& a) {
          mu.AssertHeld();  // called with the lock held (WriteThroughClaim, ReadAndReceive)
          Carry(a);
        },
        [] { return absl::Now(); }};
  }

  Sys& sys;
  const int fd;
  const int wake_fd;
  const PosixOptions options;
  Address local = Address::Unix("");
  Address peer = Address::Unix("");

  Mutex mu;
  CondVar out_cv;  // the output thread's wake-up (Actions::wake_transport)
  ConnectionState state ABSL_GUARDED_BY(mu);
  int threads_left ABSL_GUARDED_BY(mu) = 2;
  bool fds_closed ABSL_GUARDED_BY(mu) = false;
  // The application's handle, passed to handlers. Cleared by its destructor, which also removes
  // the handler, so a non-null handle read under mu stays valid for the delivery that follows.
  // The threads hold no reference to the handle: the application's last reference always runs
  // the destructor on the application's thread (or in a handler).
  PosixConnection* handle ABSL_GUARDED_BY(mu) = nullptr;
};

class PosixConnection final : public Connection,
                              public std::enable_shared_from_this<PosixConnection> {
 public:
  explicit PosixConnection(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~PosixConnection() override;

  void StartThreads() {
    {
      LiveThreads& live = Live();
      MutexLock lock(live.mu);
      live.count += 2;
    }
    input_ = std::thread([core = core_] {
      core->InputLoop();
      core->ThreadDone();
      EndLiveThread();
    });
    output_ = std::thread([core = core_] {
      core->OutputLoop();
      core->ThreadDone();
      EndLiveThread();
    });
  }

  bool IsOpen() const override {
    MutexLock lock(core_->mu);
    return core_->state.IsOpen();
  }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  void Abort() override;
  size_t QueuedOutputBytes() const override {
    MutexLock lock(core_->mu);
    return core_->state.output_bytes();
  }
  Address local_address() const override { return core_->local; }
  Address peer_address() const override { return core_->peer; }

 private:
  static void EndLiveThread() {
    LiveThreads& live = Live();
    MutexLock lock(live.mu);
    if (--live.count == 0) live.cv.NotifyAll();
  }

  std::shared_ptr<Core> core_;
  std::thread input_;
  std::thread output_;
};

PosixConnection::~PosixConnection() {
  std::shared_ptr<ConnectionHandler> handler;
  {
    MutexLock lock(core_->mu);
    core_->handle = nullptr;
    // With no handler nothing more is delivered: a delivery loop running on this thread (the
    // destructor ran inside a handler) stops after the current callback.
    handler = core_->state.SetHandler(nullptr);
  }
  handler.reset();
  Close();
  // Never wait here: the teardown (flush bounded by close_linger, drain by close_drain) runs on
  // the connection's own threads, which hold the core and end by themselves. Whoever drops the
  // last reference (a timer, a handler, the application) is never held up by a slow peer.
  input_.detach();
  output_.detach();
}

std::shared_ptr<ConnectionHandler> PosixConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  // A handler called from here may drop the application's last reference: keep the connection
  // alive until the delivery loop is done with it (released after the lock, below).
  std::shared_ptr<PosixConnection> self = weak_from_this().lock();
  std::shared_ptr<ConnectionHandler> old;
  {
    MutexLock lock(core_->mu);
    Actions actions;
    old = SetHandlerAndDeliver(lock, core_->state, *this, std::move(handler), actions);
    core_->Carry(actions);  // deliveries made room: a paused input thread reads again
  }
  return old;  // the old handler is released outside the lock
}

absl::Status PosixConnection::WriteV(absl::Span<const std::string_view> pieces) {
  Core& c = *core_;
  MutexLock lock(c.mu);
  // With the writer claim, this thread sends from the caller's buffers without blocking and
  // without the lock (the hot path of a request/response protocol: no thread hand-off, no copy,
  // and the input thread is not held up meanwhile).
  auto writer = c.Writer();
  return WriteThroughClaim(lock, c.state, pieces, writer.send, writer.carry, writer.now);
}

void PosixConnection::Close() {
  Core& c = *core_;
  MutexLock lock(c.mu);
  c.Carry(c.state.Close(absl::Now()));
}

void PosixConnection::Abort() {
  Core& c = *core_;
  MutexLock lock(c.mu);
  c.Carry(c.state.Abort());
}

void Core::OutputLoop() {
  MutexLock lock(mu);
  for (;;) {
    if (!state.ClaimTransport()) {
      if (state.phase() == ConnectionState::Phase::kClosed) return;  // nothing more to send
      // Idle: until woken, or until the state frees the spare chunks it kept for the next
      // writes (its decision: SpareStorageDeadline).
      out_cv.WaitUntil(lock, state.SpareStorageDeadline());
      state.OnSpareStorageDeadline(absl::Now());
      continue;
    }
    std::string_view pieces[kMaxIov];
    const size_t count = state.PeekOutput(absl::MakeSpan(pieces), kMaxBlockingSendBytes);
    NETLAYER_ASSERT(count > 0, "a claimed transport has something to send");
    iovec iov[kMaxIov];
    for (size_t i = 0; i < count; ++i) {
      iov[i] = iovec{const_cast<char*>(pieces[i].data()), pieces[i].size()};
    }
    lock.unlock();
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t sent = sys.SendMsg(fd, &msg, MSG_NOSIGNAL);
    const int err = errno;
    const bool retry =
        sent < 0 && (err == EINTR || err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS);
    if (retry && err != EINTR) {
      // Blocking sockets say this only under a fault or a send timeout: wait to be writable.
      WaitFd w{fd, false, true};
      internal::WaitFds(sys, &w, 1, absl::Now() + absl::Milliseconds(100));
    }
    lock.lock();
    if (sent >= 0 || retry) {
      Carry(state.OnSent(sent >= 0 ? static_cast<size_t>(sent) : 0, absl::Now()));
    } else {
      Carry(state.OnSendError(ErrnoCloseReason("send", err)));
    }
  }
}

void Core::InputLoop() {
  // Not zero-filled: a page is touched only once a read reaches it, so a connection that only
  // ever reads small messages keeps little of it resident.
  const std::unique_ptr<char[]> storage(new char[options.read_buffer_bytes]);
  const absl::Span<char> buffer(storage.get(), options.read_buffer_bytes);
  // The last read filled the buffer, or was large (kReadAgainAfter): more is likely waiting, so
  // read again before waiting.
  bool read_again = false;
  size_t received = 0;  // for ReleaseFreedMemory at the end
  for (;;) {
    ReadPlan plan;
    {
      MutexLock lock(mu);
      plan = state.PlanRead();
      if (plan.deadline != absl::InfiniteFuture()) {
        const absl::Time now = absl::Now();
        if (now >= plan.deadline) {
          Carry(state.OnDeadline(now));
          plan = state.PlanRead();
        }
      }
    }
    if (plan.kind == ReadPlan::Kind::kStop) break;
    const bool watch_socket = plan.kind == ReadPlan::Kind::kRead;
    WaitFd fds[2] = {{watch_socket ? fd : -1, true, false}, {wake_fd, true, false}};
    const int rc = read_again && watch_socket ? 1 : internal::WaitFds(sys, fds, 2, plan.deadline);
    if (read_again && watch_socket) fds[0].ready = true;  // the wake-up waits for the next wait
    read_again = false;
    if (rc < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == ENOMEM) continue;
      MutexLock lock(mu);
      Carry(state.OnRemoteClosed(ErrnoCloseReason("select", err)));
      continue;
    }
    if (fds[1].ready) internal::DrainWakeFd(sys, wake_fd);
    if (!fds[0].ready) continue;
    // Into the handler's buffer when it offers one (the rest of a large smac frame), else into
    // ours; then delivered. If a handler drops the last reference, the destructor runs inside it
    // and removes the handler, so the delivery loop touches the handle no more; once the handle
    // is gone input is discarded, and so is input after a local close (by the state).
    int err = 0;
    MutexLock lock(mu);
    const ptrdiff_t n = ReadAndReceive(
        lock, state, buffer,
        [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return static_cast<Connection*>(handle); },
        [this, &err](absl::Span<char> into) {
          const ssize_t r = sys.Recv(fd, into.data(), into.size(), MSG_DONTWAIT);
          err = errno;
          return static_cast<ptrdiff_t>(r);
        },
        Writer(), read_again);
    // A stream in full flow (loopback hands over up to 64 KiB at a time).
    if (n >= static_cast<ptrdiff_t>(kReadAgainAfter)) read_again = true;
    if (n > 0) received += static_cast<size_t>(n);
    if (n > 0 || (n < 0 && (err == EINTR || err == EAGAIN || err == EWOULDBLOCK))) continue;
    Carry(n == 0 ? state.OnEndOfStream() : state.OnRemoteClosed(ErrnoCloseReason("recv", err)));
  }
  {
    // ConnectionClosed, unless no handler is set yet (SetHandler delivers it then). A smac
    // handler frees its partial frame there.
    MutexLock lock(mu);
    if (handle != nullptr) DeliverEvents(lock, state, *handle);
  }
  // The buffers of a connection that received much were freed: give the memory back.
  if (received >= threaded::kReleaseMemoryAfterInputBytes) threaded::ReleaseFreedMemory();
}

}  // namespace

bool WaitForConnectionThreads(absl::Time deadline) {
  LiveThreads& live = Live();
  MutexLock lock(live.mu);
  return live.cv.WaitUntil(lock, deadline, [&live] {
    live.mu.AssertHeld();
    return live.count == 0;
  });
}

namespace internal {

absl::StatusOr<std::shared_ptr<Connection>> StartConnection(int fd, const PosixOptions& options) {
  threaded::UseMappedLargeBuffers();  // large input buffers never stay resident once freed
  Sys& sys = options.system();
  const int wake = NewWakeFd(sys);
  if (wake < 0) {
    const int err = errno;
    CloseFd(sys, fd);
    return ErrnoStatus("eventfd", err);
  }
  // Blocking mode for the output thread's sends; reads and direct sends use MSG_DONTWAIT.
  const int flags = sys.Fcntl(fd, F_GETFL, 0);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) sys.Fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  auto core = std::make_shared<Core>(sys, fd, wake, options);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (sys.GetSockName(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    core->local = ToAddress(reinterpret_cast<sockaddr*>(&ss), len);
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
      const int one = 1;
      sys.SetSockOpt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  }
  len = sizeof ss;
  if (sys.GetPeerName(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    core->peer = ToAddress(reinterpret_cast<sockaddr*>(&ss), len);
  }
  auto connection = std::make_shared<PosixConnection>(core);
  {
    MutexLock lock(core->mu);
    core->handle = connection.get();
  }
  connection->StartThreads();
  return connection;
}

}  // namespace internal

absl::StatusOr<std::shared_ptr<Connection>> AdoptSocket(int fd, const PosixOptions& options) {
  if (fd < 0) return absl::InvalidArgumentError("AdoptSocket: negative descriptor");
  return internal::StartConnection(fd, options);
}

}  // namespace netlayer::posix
