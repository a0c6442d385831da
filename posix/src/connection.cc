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
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connection_impl.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "socket_util.h"

namespace netlayer::posix {
namespace {

using internal::ErrnoCloseReason;
using internal::WaitFd;
using Phase = ConnectionState::Phase;

// Pieces per sendmsg (well below IOV_MAX).
constexpr size_t kMaxIov = 64;

class PosixConnection;

// The part of a connection its threads share with the handle the application holds.
struct Core {
  Core(Sys& s, int socket_fd, int wake, const PosixOptions& opts)
      : sys(s), fd(socket_fd), wake_fd(wake), options(opts), state(opts.limits) {}

  void InputLoop();
  void OutputLoop();
  // The thread is done with the descriptors; the last one closes them.
  void ThreadDone();
  // The output thread has ended: tell the input thread, which bounds the close.
  void OutputDone() {
    std::lock_guard<std::mutex> lock(mu);
    output_done = true;
    WakeInputLocked();
  }
  // REQUIRES: mu held. Wakes the input thread.
  void WakeInputLocked() {
    if (!fds_closed) internal::WakeFd(sys, wake_fd);
  }
  // REQUIRES: mu held. Makes the final close send a reset, and unblocks a blocked send.
  void AbortLocked() {
    if (aborted || fds_closed) return;
    aborted = true;
    linger lg{1, 0};
    sys.SetSockOpt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    // A send blocked on a peer that does not read returns EPIPE once the write side is shut.
    if (sending) sys.Shutdown(fd, SHUT_RDWR);
    out_cv.notify_all();
    WakeInputLocked();
  }

  Sys& sys;
  const int fd;
  const int wake_fd;
  const PosixOptions options;
  Address local = Address::Unix("");
  Address peer = Address::Unix("");

  std::mutex mu;
  std::condition_variable out_cv;  // output queued, or the phase changed
  // All below guarded by mu.
  ConnectionState state;
  bool sending = false;       // the output thread holds PeekOutput views and is in sendmsg
  bool local_closed = false;  // Close() was called
  bool write_shut = false;    // shutdown(SHUT_WR) done after the flush
  bool aborted = false;       // SO_LINGER 0 set: the final close resets
  bool input_paused = false;  // the input thread is not watching the socket (back-pressure)
  bool output_done = false;   // the output thread has ended
  bool fds_closed = false;
  absl::Time linger_deadline = absl::InfiniteFuture();  // bound of the flush after Close()
  absl::Time drain_deadline = absl::InfiniteFuture();   // bound of the wait for the peer's EOF
  int threads_left = 2;
  // The application's handle, passed to handlers. Cleared by its destructor, which then waits
  // for the input thread (or runs on it), so a non-null handle read under mu stays valid for the
  // delivery that follows. The threads hold no reference to the handle: the application's last
  // reference always runs the destructor on the application's thread (or in a handler).
  PosixConnection* handle = nullptr;
};

class PosixConnection final : public Connection,
                              public std::enable_shared_from_this<PosixConnection> {
 public:
  explicit PosixConnection(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~PosixConnection() override;

  void StartThreads() {
    input_ = std::thread([core = core_] {
      core->InputLoop();
      core->ThreadDone();
    });
    output_ = std::thread([core = core_] {
      core->OutputLoop();
      core->OutputDone();
      core->ThreadDone();
    });
  }

  bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->state.IsOpen();
  }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  size_t QueuedOutputBytes() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->state.output_bytes();
  }
  Address local_address() const override { return core_->local; }
  Address peer_address() const override { return core_->peer; }

  bool Reset();

 private:
  std::shared_ptr<Core> core_;
  std::thread input_;
  std::thread output_;
};

PosixConnection::~PosixConnection() {
  std::shared_ptr<ConnectionHandler> handler;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->handle = nullptr;
    // With no handler nothing more is delivered: a delivery loop running on this thread (the
    // destructor ran inside a handler) stops after the current callback.
    handler = core_->state.SetHandler(nullptr);
  }
  handler.reset();
  Close();
  const std::thread::id me = std::this_thread::get_id();
  if (input_.get_id() == me || output_.get_id() == me) {
    // A handler dropped the last reference on the input thread: it cannot join itself. The
    // threads hold the core and end by themselves (bounded by close_linger / close_drain).
    input_.detach();
    output_.detach();
    return;
  }
  // The input thread enforces the flush bound, and unblocks the output thread before it ends.
  if (input_.joinable()) input_.join();
  if (output_.joinable()) output_.join();
}

std::shared_ptr<ConnectionHandler> PosixConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  // A handler called from here may drop the application's last reference: keep the connection
  // alive until the delivery loop is done with it (released after the lock, below).
  std::shared_ptr<PosixConnection> self = weak_from_this().lock();
  std::shared_ptr<ConnectionHandler> old;
  {
    std::unique_lock<std::mutex> lock(core_->mu);
    old = core_->state.SetHandler(std::move(handler));
    DeliverEvents(lock, core_->state, *this);
    // Deliveries made room: let a paused input thread read again.
    if (core_->input_paused && core_->state.WantRead()) core_->WakeInputLocked();
  }
  return old;  // the old handler is released outside the lock
}

absl::Status PosixConnection::WriteV(absl::Span<const std::string_view> pieces) {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  if (!c.state.IsOpen()) return c.state.Write(pieces);  // FailedPrecondition by phase
  size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (total == 0) return absl::OkStatus();
  if (c.sending || c.state.HasOutput() || total > c.state.limits().max_output_bytes) {
    // The output thread owns the stream (or the write is over the bound: the state says so).
    absl::Status status = c.state.Write(pieces);
    if (status.ok()) c.out_cv.notify_one();
    return status;
  }
  // Nothing queued and no one sending: send directly without blocking (this is the hot path of
  // a request/response protocol: no thread hand-off). The lock is held so no one else can
  // start sending or close meanwhile; a non-blocking send is short.
  iovec iov[kMaxIov];
  size_t count = 0;
  for (std::string_view p : pieces) {
    if (p.empty()) continue;
    if (count == kMaxIov) break;
    iov[count++] = iovec{const_cast<char*>(p.data()), p.size()};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t sent;
  do {
    sent = c.sys.SendMsg(c.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    const int err = errno;
    if (err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS) {
      CloseReason reason = ErrnoCloseReason("send", err);
      c.state.OnRemoteClosed(reason);
      c.out_cv.notify_all();
      c.WakeInputLocked();  // the input thread delivers ConnectionClosed and ends
      return absl::FailedPreconditionError(
          absl::StrCat("write on a closed connection: ", reason.ToString()));
    }
    sent = 0;
  }
  if (static_cast<size_t>(sent) == total) return absl::OkStatus();
  // Queue the rest for the output thread. It fits: the queue was empty and total <= bound.
  std::vector<std::string_view> rest;
  size_t skip = static_cast<size_t>(sent);
  for (std::string_view p : pieces) {
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    rest.push_back(p.substr(skip));
    skip = 0;
  }
  absl::Status status = c.state.Write(rest);
  NETLAYER_ASSERT(status.ok(), "the rest of a direct send fits the empty output queue");
  c.out_cv.notify_one();
  return absl::OkStatus();
}

void PosixConnection::Close() {
  Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.local_closed) return;
  if (c.state.phase() == Phase::kClosed) {
    // The stream already ended; drop what was not delivered yet (the close notification too).
    c.state.Close();
    return;
  }
  c.local_closed = true;
  c.linger_deadline = absl::Now() + c.options.close_linger;
  c.state.Close();  // drops undelivered input; the output thread flushes, then shuts down
  c.out_cv.notify_all();
  c.WakeInputLocked();
}

bool PosixConnection::Reset() {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.state.phase() == Phase::kClosed || c.local_closed) return false;
  c.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "connection reset locally"));
  c.AbortLocked();
  return true;
}

void Core::ThreadDone() {
  std::lock_guard<std::mutex> lock(mu);
  NETLAYER_ASSERT(threads_left > 0, "two threads per connection");
  if (--threads_left > 0) return;
  fds_closed = true;
  internal::CloseFd(sys, fd);
  internal::CloseFd(sys, wake_fd);
}

void Core::OutputLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    out_cv.wait(lock,
                [&] { return state.phase() == Phase::kClosed || aborted || state.HasOutput(); });
    if (aborted) return;
    if (state.phase() == Phase::kClosed) {
      if (local_closed && !write_shut) {
        // Flushed after Close(): end the stream, then let the input thread wait for the peer's
        // end of stream, briefly.
        sys.Shutdown(fd, SHUT_WR);
        write_shut = true;
        drain_deadline = absl::Now() + options.close_drain;
        WakeInputLocked();
      }
      return;
    }
    std::string_view pieces[kMaxIov];
    const size_t count = state.PeekOutput(absl::MakeSpan(pieces));
    NETLAYER_ASSERT(count > 0, "HasOutput means there is something to peek");
    iovec iov[kMaxIov];
    for (size_t i = 0; i < count; ++i) {
      iov[i] = iovec{const_cast<char*>(pieces[i].data()), pieces[i].size()};
    }
    sending = true;
    lock.unlock();
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t sent = sys.SendMsg(fd, &msg, MSG_NOSIGNAL);
    const int err = errno;
    if (sent < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
      // Blocking sockets say this only under a fault or a send timeout: wait to be writable.
      WaitFd w{fd, false, true};
      internal::WaitFds(sys, &w, 1, absl::Now() + absl::Milliseconds(100));
    }
    lock.lock();
    sending = false;
    if (sent >= 0) {
      state.ConsumeOutput(static_cast<size_t>(sent));  // a finished flush shows as kClosed
      continue;
    }
    state.ConsumeOutput(0);  // releases the views
    if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) continue;
    if (local_closed || state.phase() == Phase::kClosed) return;  // aborted or already closed
    state.OnRemoteClosed(ErrnoCloseReason("send", err));
    WakeInputLocked();  // the input thread delivers ConnectionClosed
    return;
  }
}

void Core::InputLoop() {
  std::vector<char> buffer(options.read_buffer_bytes);
  bool closed_remotely = false;
  bool peer_eof = false;
  for (;;) {
    bool watch_socket = false;
    absl::Time deadline = absl::InfiniteFuture();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (local_closed) {
        // Closing: the output thread flushes; meanwhile input is read and discarded until the
        // peer's end of stream. Both are bounded: a peer that never reads or never closes
        // cannot keep this thread.
        if (aborted) break;
        if (output_done && (peer_eof || !write_shut)) break;
        deadline = output_done ? drain_deadline : linger_deadline;
        if (absl::Now() >= deadline) {
          if (!output_done) {
            Log(LogLayer::kPosix)
                .warn("close: output not flushed within {}; resetting the connection",
                      absl::FormatDuration(options.close_linger));
            AbortLocked();
          }
          break;
        }
        watch_socket = !peer_eof;
      } else if (state.phase() == Phase::kClosed) {
        closed_remotely = true;  // an error seen by a sender
        break;
      } else {
        watch_socket = state.WantRead();
      }
      input_paused = !watch_socket;
    }
    WaitFd fds[2] = {{watch_socket ? fd : -1, true, false}, {wake_fd, true, false}};
    const int rc = internal::WaitFds(sys, fds, 2, deadline);
    if (rc < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == ENOMEM) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (!local_closed && state.OnRemoteClosed(ErrnoCloseReason("select", err))) {
        closed_remotely = true;
      }
      break;
    }
    if (fds[1].ready) internal::DrainWakeFd(sys, wake_fd);
    if (!fds[0].ready) continue;
    const ssize_t n = sys.Recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    const int err = errno;
    if (n < 0 && (err == EINTR || err == EAGAIN || err == EWOULDBLOCK)) continue;
    std::unique_lock<std::mutex> lock(mu);
    if (n > 0) {
      if (local_closed || handle == nullptr) continue;  // closing: input is discarded
      // If a handler drops the last reference here, the destructor runs inside it and removes
      // the handler, so the delivery loop touches the handle no more.
      ReceiveInput(lock, state, *handle, std::string_view(buffer.data(), static_cast<size_t>(n)));
      continue;
    }
    if (local_closed) {  // the peer's end of stream (or an error) after our close
      peer_eof = true;
      continue;
    }
    CloseReason reason =
        n == 0 ? CloseReason(CloseReason::Kind::kPeerClosed, "") : ErrnoCloseReason("recv", err);
    state.OnRemoteClosed(std::move(reason));
    closed_remotely = true;
    break;
  }
  if (!closed_remotely) return;
  std::unique_lock<std::mutex> lock(mu);
  // Unblock a send blocked on a peer that is gone; skip it after an abort, where a FIN would
  // precede the reset.
  if (!aborted || sending) sys.Shutdown(fd, SHUT_RDWR);
  out_cv.notify_all();
  // ConnectionClosed, unless no handler is set yet (SetHandler delivers it then).
  if (handle != nullptr) DeliverEvents(lock, state, *handle);
}

}  // namespace

namespace internal {

absl::StatusOr<std::shared_ptr<Connection>> StartConnection(int fd, const PosixOptions& options) {
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
  core->handle = connection.get();
  connection->StartThreads();
  return connection;
}

}  // namespace internal

absl::StatusOr<std::shared_ptr<Connection>> AdoptSocket(int fd, const PosixOptions& options) {
  if (fd < 0) return absl::InvalidArgumentError("AdoptSocket: negative descriptor");
  return internal::StartConnection(fd, options);
}

bool ResetConnection(Connection& connection) {
  auto* posix = dynamic_cast<PosixConnection*>(&connection);
  return posix != nullptr && posix->Reset();
}

}  // namespace netlayer::posix
