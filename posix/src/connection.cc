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
// Sends a writer that found the socket free makes, at most, for what others queued meanwhile.
constexpr int kMaxWriterDrainRounds = 4;

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
  // REQUIRES: `lock` holds mu, and this thread holds the writer's claim. Sends what other
  // writers queued meanwhile, without blocking, while the socket takes all of it (at most a few
  // rounds): on a busy connection this saves waking the output thread for every write.
  void DrainAsWriter(std::unique_lock<std::mutex>& lock);
  // REQUIRES: mu held, and this thread holds the writer's claim. Ends the claim.
  void EndWriterClaimLocked() {
    NETLAYER_ASSERT(sender == Sender::kWriter, "only the claiming writer ends its claim");
    sender = Sender::kNone;
    claim_bytes = 0;
    if (state.HasOutput()) out_cv.notify_one();  // hand what others queued to the output thread
    if (claim_waiters > 0) claim_cv.notify_all();
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
    if (sender == Sender::kOutputThread) sys.Shutdown(fd, SHUT_RDWR);
    out_cv.notify_all();
    WakeInputLocked();
  }

  Sys& sys;
  const int fd;
  const int wake_fd;
  const PosixOptions options;
  Address local = Address::Unix("");
  Address peer = Address::Unix("");

  // Who sends on the socket. There is one sender at a time, so bytes keep the order in which
  // writes were accepted. kWriter: a WriteV that found nothing queued sends from its own buffers
  // (non-blocking, without mu); writes meanwhile are queued behind its bytes, and it queues its
  // unsent rest ahead of them and hands over to the output thread before ending the claim.
  // kOutputThread: the output thread holds PeekOutput views and is in sendmsg.
  enum class Sender { kNone, kWriter, kOutputThread };

  std::mutex mu;
  std::condition_variable out_cv;    // output queued, the phase changed, or a claim ended
  std::condition_variable claim_cv;  // a writer's claim ended (Close() waits for it)
  // All below guarded by mu.
  ConnectionState state;
  Sender sender = Sender::kNone;
  size_t claim_bytes = 0;     // kWriter: the claiming write's size (counted in the output bound)
  int claim_waiters = 0;      // threads waiting on claim_cv
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
  const size_t max = c.state.limits().max_output_bytes;
  if (c.sender != Core::Sender::kNone || c.state.HasOutput() || total > max) {
    // Someone is sending, or output is queued: join the queue (or fail over the bound: the
    // state says so). A claiming writer's unsent rest will be queued ahead of this: keep room
    // for it so the bound holds then.
    if (c.sender == Core::Sender::kWriter && total <= max &&
        total > max - std::min(max, c.state.output_bytes() + c.claim_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "output queue full: ", c.state.output_bytes() + c.claim_bytes,
          " bytes queued or being sent, writing ", total, " more would pass the limit of ", max));
    }
    absl::Status status = c.state.Write(pieces);
    // The output thread sends it; a sender in progress takes it (or hands it over) itself.
    if (status.ok() && c.sender == Core::Sender::kNone) c.out_cv.notify_one();
    return status;
  }
  // Nothing queued and no one sending: claim the socket and send directly from the caller's
  // buffers without blocking and without the lock (the hot path of a request/response
  // protocol: no thread hand-off, no copy, and the input thread is not held up meanwhile).
  c.sender = Core::Sender::kWriter;
  c.claim_bytes = total;
  lock.unlock();
  size_t sent = 0;
  int err = 0;
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
    const ssize_t n = c.sys.SendMsg(c.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
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
  lock.lock();
  if (err != 0) {
    CloseReason reason = ErrnoCloseReason("send", err);
    c.state.OnRemoteClosed(reason);  // discards what others queued meanwhile
    c.EndWriterClaimLocked();
    c.out_cv.notify_all();
    c.WakeInputLocked();  // the input thread delivers ConnectionClosed and ends
    return absl::FailedPreconditionError(
        absl::StrCat("write on a closed connection: ", reason.ToString()));
  }
  if (sent < total && c.state.IsOpen()) {
    // Queue the rest ahead of what other writers queued meanwhile (the claim made this write
    // theirs' predecessor). Close() waits for the claim, so the state is still open unless the
    // stream ended; then the rest is dropped with the rest of the output, as on any remote close.
    std::string later;
    std::string_view views[kMaxIov];
    while (size_t count = c.state.PeekOutput(absl::MakeSpan(views))) {
      size_t n = 0;
      for (size_t i = 0; i < count; ++i) {
        later.append(views[i]);
        n += views[i].size();
      }
      c.state.ConsumeOutput(n);
    }
    std::vector<std::string_view> rest;
    rest.reserve(pieces.size() - first);
    for (size_t i = first; i < pieces.size(); ++i) {
      rest.push_back(i == first ? pieces[i].substr(offset) : pieces[i]);
    }
    // Both fit: the queue was empty at the claim, and others kept room for this write.
    absl::Status status = c.state.Write(rest);
    NETLAYER_ASSERT(status.ok(), "the rest of a direct send fits the output queue");
    status = c.state.Write({std::string_view(later)});
    NETLAYER_ASSERT(status.ok(), "output queued during a direct send still fits");
  } else if (sent == total) {
    c.DrainAsWriter(lock);
  }
  c.EndWriterClaimLocked();
  return absl::OkStatus();
}

void Core::DrainAsWriter(std::unique_lock<std::mutex>& lock) {
  NETLAYER_ASSERT(sender == Sender::kWriter, "only the claiming writer drains");
  for (int round = 0; round < kMaxWriterDrainRounds && state.HasOutput(); ++round) {
    std::string_view pieces[kMaxIov];
    const size_t count = state.PeekOutput(absl::MakeSpan(pieces));
    iovec iov[kMaxIov];
    size_t batch = 0;
    for (size_t i = 0; i < count; ++i) {
      iov[i] = iovec{const_cast<char*>(pieces[i].data()), pieces[i].size()};
      batch += pieces[i].size();
    }
    lock.unlock();
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t sent;
    do {
      sent = sys.SendMsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    const int err = errno;
    lock.lock();
    if (sent < 0) {
      state.ConsumeOutput(0);                                             // releases the views
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return;  // the output thread
      if (state.OnRemoteClosed(ErrnoCloseReason("send", err))) {
        out_cv.notify_all();
        WakeInputLocked();  // the input thread delivers ConnectionClosed and ends
      }
      return;
    }
    // Close() waits for the claim, so this never finishes a flush.
    const bool flushed = state.ConsumeOutput(static_cast<size_t>(sent));
    NETLAYER_ASSERT(!flushed, "no flush after Close() while a writer holds the claim");
    if (static_cast<size_t>(sent) < batch) return;  // the socket is full: the output thread
  }
}

void PosixConnection::Close() {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  // A writer sending directly has not queued its unsent rest yet: wait for it (one non-blocking
  // send), so that the flush includes it.
  while (c.sender == Core::Sender::kWriter && !c.local_closed) {
    ++c.claim_waiters;
    c.claim_cv.wait(lock);
    --c.claim_waiters;
  }
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
  std::unique_lock<std::mutex> lock(mu);
  NETLAYER_ASSERT(threads_left > 0, "two threads per connection");
  if (--threads_left > 0) return;
  // A writer may be sending directly on the socket (without mu): the descriptor must not be
  // closed (and its number reused) under it. Its claim lasts one non-blocking send.
  while (sender == Sender::kWriter) {
    ++claim_waiters;
    claim_cv.wait(lock);
    --claim_waiters;
  }
  fds_closed = true;
  internal::CloseFd(sys, fd);
  internal::CloseFd(sys, wake_fd);
}

void Core::OutputLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    // A writer's claim ends with its bytes sent or queued; it then hands over (notifies).
    out_cv.wait(lock, [&] {
      return state.phase() == Phase::kClosed || aborted ||
             (state.HasOutput() && sender == Sender::kNone);
    });
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
    sender = Sender::kOutputThread;
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
    sender = Sender::kNone;
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
  // The last read filled the buffer: more is likely waiting, so read again before waiting.
  bool read_again = false;
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
    const int rc = read_again && watch_socket ? 1 : internal::WaitFds(sys, fds, 2, deadline);
    if (read_again && watch_socket) fds[0].ready = true;  // the wake-up waits for the next wait
    read_again = false;
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
      read_again = static_cast<size_t>(n) == buffer.size();
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
  if (!aborted || sender == Sender::kOutputThread) sys.Shutdown(fd, SHUT_RDWR);
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
