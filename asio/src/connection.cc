// The asio Connection: one mutex guards a core ConnectionState; the socket's readiness and
// completions arrive on the Runtime's io threads (see asio.h for threads and lifetimes).
//
// Who touches the socket: every operation on it (starting an async wait or write, shutdown,
// cancel, close) is made with the connection's mutex held, except two that the state machine
// keeps apart from its release: the reader's non-blocking read (only while the reader runs,
// and the stream is never released before the reader is done) and a writer's direct send (only
// while it holds the writer claim, and the state releases the stream only after EndWriterClaim).
#include <sys/socket.h>

#include <array>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "connection_impl.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/log.h"
#include "netlayer/threaded/memory.h"
#include "netlayer/threaded/threaded.h"

namespace netlayer::asio::internal {
namespace {

using Actions = ConnectionState::Actions;
using ReadPlan = ConnectionState::ReadPlan;

// Pieces per send (Asio gathers at most 64 buffers in one sendmsg).
constexpr size_t kMaxPieces = 64;
// After a read that fills the buffer, read again at once at most this many times per wake-up
// (then wait again: other connections on this io thread get their turn).
constexpr int kReadsPerWakeUp = 4;

using Buffers = std::array<::asio::const_buffer, kMaxPieces>;

bool WouldBlock(const std::error_code& ec) {
  return ec == ::asio::error::would_block || ec == ::asio::error::try_again ||
         ec == ::asio::error::no_buffer_space;
}

// The io thread's read buffer: a connection holds none of its own.
std::span<char> ThreadReadBuffer(size_t size) {
  thread_local std::vector<char> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return std::span<char>(buffer.data(), size);
}

// Walks a list of pieces as one byte string: fills Asio buffers from the current position, then
// advances by what a send took.
class PieceCursor {
 public:
  explicit PieceCursor(absl::Span<const std::string_view> pieces) : pieces_(pieces) { Skip(); }
  bool done() const { return index_ == pieces_.size(); }
  // Fills `out` from the current position; returns how many buffers, and their bytes in `bytes`.
  size_t Fill(Buffers& out, size_t& bytes) const {
    size_t count = 0;
    bytes = 0;
    for (size_t i = index_; i < pieces_.size() && count < out.size(); ++i) {
      const std::string_view p = pieces_[i].substr(i == index_ ? offset_ : 0);
      if (p.empty()) continue;
      out[count++] = ::asio::const_buffer(p.data(), p.size());
      bytes += p.size();
    }
    return count;
  }
  void Advance(size_t n) {
    offset_ += n;
    Skip();
  }

 private:
  // Moves past whole pieces covered by offset_ (and empty ones).
  void Skip() {
    while (index_ < pieces_.size() && offset_ >= pieces_[index_].size()) {
      offset_ -= pieces_[index_].size();
      ++index_;
    }
  }
  absl::Span<const std::string_view> pieces_;
  size_t index_ = 0;
  size_t offset_ = 0;
};

// Sends `pieces` with non-blocking sends until all are sent, the socket is full, or an error.
// Returns the bytes sent; `ec` is set only for an error other than a full socket.
size_t SendWithoutBlocking(Socket& socket, absl::Span<const std::string_view> pieces,
                           std::error_code& ec) {
  PieceCursor cursor(pieces);
  size_t total = 0;
  ec.clear();
  while (!cursor.done()) {
    Buffers buffers;
    size_t want = 0;
    const size_t count = cursor.Fill(buffers, want);
    const size_t n = socket.send(std::span(buffers.data(), count), 0, ec);
    if (ec == ::asio::error::interrupted) continue;
    if (ec) {
      if (WouldBlock(ec)) ec.clear();
      break;
    }
    total += n;
    cursor.Advance(n);
    if (n < want) break;  // the socket buffer is full
  }
  return total;
}

class AsioConnection;

// The part of a connection the io_context's handlers share with the application's handle. Every
// decision is the ConnectionState's; this keeps the socket and carries out its Actions.
struct Core : std::enable_shared_from_this<Core> {
  Core(std::shared_ptr<RuntimeImpl> rt, Socket s, const AsioOptions& opts)
      : runtime(std::move(rt)),
        options(opts),
        socket(std::move(s)),
        timer(std::in_place, runtime->io),
        state(opts.limits) {
    threaded::UseMappedLargeBuffers();  // large input buffers never stay resident once freed
  }

  // REQUIRES: mu held. Carries out what the state returned; nothing here blocks.
  void Carry(const Actions& a);
  // REQUIRES: mu held. Makes the reader follow PlanRead(): wait for readability, arm the
  // deadline, or end. Deadlines already passed are handled first.
  void Replan();
  // REQUIRES: mu held. The transport sender: claims the output and starts one async write.
  void StartSend();
  // REQUIRES: mu held. Once the reader has ended and no write is in flight: OnTransportDone.
  void MaybeTransportDone();
  void ArmTimer(absl::Time deadline);
  void OnReadable(const std::error_code& ec);
  void OnWritten(const std::error_code& ec, size_t n);
  void OnTimer(uint64_t generation);
  void FinishReader();
  // This connection's non-blocking send path (a direct writer's, and the reader's when it sends
  // the answers its delivery corked). Its `carry` runs with mu held; `send` only while the
  // writer claim keeps the socket from being released.
  auto Writer() {
    return DriverWriter{
        [this](absl::Span<const std::string_view> p, std::optional<CloseReason>& error) {
          std::error_code ec;
          const size_t sent = SendWithoutBlocking(*socket, p, ec);
          if (ec) error = ErrorCloseReason("send", ec);
          return sent;
        },
        [this](const Actions& a) { Carry(a); }, [] { return absl::Now(); }};
  }
  // The Runtime is going away: abort (its destructor waits for the teardown to finish).
  void AbortForShutdown() {
    std::lock_guard<std::mutex> lock(mu);
    Carry(state.Abort());
  }

  const std::shared_ptr<RuntimeImpl> runtime;  // keeps the io_context alive
  const AsioOptions options;
  Address local = Address::Unix("");
  Address peer = Address::Unix("");
  uint64_t registration = 0;  // in the Runtime's stop registry

  std::mutex mu;
  // All below guarded by mu (the socket: see the file comment).
  std::optional<Socket> socket;               // reset at release
  std::optional<::asio::steady_timer> timer;  // the reader's deadline; reset at release
  ConnectionState state;
  bool reader_busy = false;      // OnReadable is reading; it re-plans when done
  size_t received = 0;           // bytes read, for ReleaseFreedMemory when the reader finishes
  bool wait_pending = false;     // an async_wait for readability is outstanding
  bool reader_stopped = false;   // PlanRead said kStop; FinishReader is posted
  bool reader_finished = false;  // FinishReader delivered what was left
  bool write_pending = false;    // an async_write_some is outstanding
  bool transport_done = false;
  uint64_t timer_generation = 0;
  absl::Time timer_for = absl::InfiniteFuture();
  Buffers write_buffers;  // the outstanding write's buffers (views of the state's output)
  // The application's handle, passed to handlers. Cleared by its destructor, which also removes
  // the handler, so a non-null handle read under mu stays valid for the delivery that follows.
  AsioConnection* handle = nullptr;
};

class AsioConnection final : public Connection,
                             public std::enable_shared_from_this<AsioConnection> {
 public:
  explicit AsioConnection(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~AsioConnection() override;

  bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->state.IsOpen();
  }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->Carry(core_->state.Close(absl::Now()));
  }
  void Abort() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->Carry(core_->state.Abort());
  }
  size_t QueuedOutputBytes() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->state.output_bytes();
  }
  Address local_address() const override { return core_->local; }
  Address peer_address() const override { return core_->peer; }

 private:
  std::shared_ptr<Core> core_;
};

void Core::Carry(const Actions& a) {
  if (socket.has_value()) {
    std::error_code ignored;
    if (a.reset) {
      // SO_LINGER 0 on the descriptor itself: Asio's set_option would also record it in the
      // socket's state, which the reader reads meanwhile. The final close() resets the stream.
      const ::linger lg{1, 0};
      ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    // An async write to a peer that does not read completes (with an error) once shut down.
    if (a.unblock_sender) socket->shutdown(Socket::shutdown_both, ignored);
    if (a.shutdown_write) socket->shutdown(Socket::shutdown_send, ignored);
  }
  if (a.wake_reader) Replan();
  if (a.wake_transport) StartSend();
  if (a.release) {
    NETLAYER_ASSERT(socket.has_value(), "a stream is released once");
    std::error_code ignored;
    socket->close(ignored);  // with SO_LINGER 0 after an abort: the peer sees a reset
    socket.reset();
    timer.reset();
    runtime->Unregister(registration);
  }
}

void Core::Replan() {
  if (reader_busy || reader_stopped || !socket.has_value()) return;
  ReadPlan plan = state.PlanRead();
  // A deadline that passed changes the plan (the linger aborts, the drain ends); twice at most.
  for (int i = 0; i < 3 && plan.deadline != absl::InfiniteFuture(); ++i) {
    const absl::Time now = absl::Now();
    if (now < plan.deadline) break;
    Actions a = state.OnDeadline(now);
    a.wake_reader = false;  // re-planned right here
    Carry(a);
    plan = state.PlanRead();
  }
  switch (plan.kind) {
    case ReadPlan::Kind::kRead:
      if (!wait_pending) {
        wait_pending = true;
        socket->async_wait(
            Socket::wait_read,
            [self = shared_from_this()](const std::error_code& ec) { self->OnReadable(ec); });
      }
      ArmTimer(plan.deadline);
      return;
    case ReadPlan::Kind::kPause:
      // A wait still outstanding stays: its completion re-plans and does not read.
      ArmTimer(plan.deadline);
      return;
    case ReadPlan::Kind::kStop:
      ArmTimer(absl::InfiniteFuture());
      if (wait_pending || write_pending) {
        // Nothing more is read or sent (the stream is closed): end the outstanding operations;
        // their completions come back here.
        std::error_code ignored;
        socket->cancel(ignored);
        if (wait_pending) return;
      }
      reader_stopped = true;
      ::asio::post(runtime->io, [self = shared_from_this()] { self->FinishReader(); });
      return;
  }
}

void Core::ArmTimer(absl::Time deadline) {
  if (deadline == timer_for || !timer.has_value()) return;
  timer_for = deadline;
  const uint64_t generation = ++timer_generation;
  if (deadline == absl::InfiniteFuture()) {
    timer->cancel();
    return;
  }
  const absl::Duration wait =
      std::clamp(deadline - absl::Now(), absl::ZeroDuration(), threaded::kMaxConditionWait);
  timer->expires_after(absl::ToChronoNanoseconds(wait));
  timer->async_wait([self = shared_from_this(), generation](const std::error_code&) {
    self->OnTimer(generation);
  });
}

void Core::OnTimer(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu);
  if (generation != timer_generation) return;  // re-armed or cancelled meanwhile
  timer_for = absl::InfiniteFuture();
  Replan();  // handles the deadline (and re-arms if it is still ahead: an early wake-up)
}

void Core::OnReadable(const std::error_code& ec) {
  std::unique_lock<std::mutex> lock(mu);
  wait_pending = false;
  if (reader_stopped || !socket.has_value()) return;
  if (ec == ::asio::error::operation_aborted || state.PlanRead().kind != ReadPlan::Kind::kRead) {
    Replan();
    return;
  }
  // Other errors: the read below reports them.
  reader_busy = true;
  const std::span<char> buffer = ThreadReadBuffer(options.read_buffer_bytes);
  for (int round = 0; round < kReadsPerWakeUp; ++round) {
    lock.unlock();
    std::error_code rec;
    const size_t n = socket->receive(::asio::buffer(buffer.data(), buffer.size()), 0, rec);
    lock.lock();
    if (rec == ::asio::error::interrupted) continue;
    if (WouldBlock(rec)) break;
    if (!rec && n > 0) {
      received += n;
      // If a handler drops the last reference here, the destructor runs inside it and removes
      // the handler, so the delivery loop touches the handle no more. Input after a local close
      // is discarded by the state; with the handle gone it is discarded here.
      if (handle != nullptr) {
        // The answers the handler writes during this read leave together when it returns.
        state.BeginCork();
        ReceiveInput(lock, state, *handle, std::string_view(buffer.data(), n));
        if (state.EndCork()) {
          auto writer = Writer();
          SendQueuedAsWriter(lock, state, writer.send, writer.carry, writer.now);
        }
      }
      if (n < buffer.size() || state.PlanRead().kind != ReadPlan::Kind::kRead) break;
      continue;
    }
    Carry(rec == ::asio::error::eof ? state.OnEndOfStream()
                                    : state.OnRemoteClosed(ErrorCloseReason("recv", rec)));
    break;
  }
  reader_busy = false;
  Replan();
}

void Core::FinishReader() {
  std::unique_lock<std::mutex> lock(mu);
  // ConnectionClosed, unless no handler is set yet (SetHandler delivers it then).
  if (handle != nullptr) DeliverEvents(lock, state, *handle);
  reader_finished = true;
  MaybeTransportDone();
  // The buffers of a connection that received much were freed (a smac handler frees its partial
  // frame on ConnectionClosed): give the memory back.
  if (received >= threaded::kReleaseMemoryAfterInputBytes) {
    lock.unlock();
    threaded::ReleaseFreedMemory();
  }
}

void Core::StartSend() {
  if (write_pending || !socket.has_value() || !state.ClaimTransport()) return;
  std::array<std::string_view, kMaxPieces> views;
  const size_t count = state.PeekOutput(absl::MakeSpan(views));
  NETLAYER_ASSERT(count > 0, "a claimed transport has something to send");
  for (size_t i = 0; i < count; ++i) {
    write_buffers[i] = ::asio::const_buffer(views[i].data(), views[i].size());
  }
  write_pending = true;
  socket->async_write_some(
      std::span<const ::asio::const_buffer>(write_buffers.data(), count),
      [self = shared_from_this()](const std::error_code& ec, size_t n) { self->OnWritten(ec, n); });
}

void Core::OnWritten(const std::error_code& ec, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  write_pending = false;
  if (ec && !WouldBlock(ec) && ec != ::asio::error::operation_aborted &&
      ec != ::asio::error::interrupted) {
    Carry(state.OnSendError(ErrorCloseReason("send", ec)));
  } else {
    Carry(state.OnSent(n, absl::Now()));
  }
  MaybeTransportDone();
}

void Core::MaybeTransportDone() {
  if (transport_done || !reader_finished || write_pending) return;
  transport_done = true;
  Carry(state.OnTransportDone());
}

AsioConnection::~AsioConnection() {
  std::unique_lock<std::mutex> lock(core_->mu);
  core_->handle = nullptr;
  // Without a handler nothing more is delivered (a delivery running on this thread, when the last
  // reference went inside a handler, stops after its callback). Then Close(), which never waits:
  // the flush (bounded by close_linger) and the drain (close_drain) go on in the io_context's
  // handlers, which hold the core.
  std::shared_ptr<ConnectionHandler> handler = core_->state.SetHandler(nullptr);
  core_->Carry(core_->state.Close(absl::Now()));
  lock.unlock();
}  // `handler` is released here, outside the lock

std::shared_ptr<ConnectionHandler> AsioConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  // A handler called from here may drop the application's last reference: keep the connection
  // alive until the delivery loop is done with it.
  std::shared_ptr<AsioConnection> keep_alive = weak_from_this().lock();
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  Actions actions;
  std::shared_ptr<ConnectionHandler> previous =
      SetHandlerAndDeliver(lock, c.state, *this, std::move(handler), actions);
  c.Carry(actions);
  lock.unlock();
  return previous;  // released outside the lock
}

absl::Status AsioConnection::WriteV(absl::Span<const std::string_view> pieces) {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  // With the writer claim this thread sends from the caller's buffers without blocking and
  // without the lock; only what the socket does not take goes to the async writer. The socket
  // is not released while a writer holds the claim.
  auto writer = c.Writer();
  return WriteThroughClaim(lock, c.state, pieces, writer.send, writer.carry, writer.now);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> StartConnection(
    const std::shared_ptr<RuntimeImpl>& runtime, Socket socket, const AsioOptions& options) {
  std::error_code ec;
  socket.non_blocking(true, ec);
  if (ec) return ErrorStatus("non-blocking mode", ec);
  const Endpoint local = socket.local_endpoint(ec);
  if (ec) return ErrorStatus("getsockname", ec);
  const Endpoint peer = socket.remote_endpoint(ec);
  // A peer that connected and reset before its connection was accepted (a connect/close burst):
  // this one connection is gone, nothing is wrong with the listener (StartConnection's callers
  // take kAborted as "drop it and go on").
  if (ec == ::asio::error::not_connected)
    return absl::AbortedError("getpeername: the peer is gone");
  if (ec) return ErrorStatus("getpeername", ec);
  if (IsTcp(local)) socket.set_option(::asio::ip::tcp::no_delay(true), ec);
  auto core = std::make_shared<Core>(runtime, std::move(socket), options);
  core->local = ToAddress(local);
  core->peer = ToAddress(peer);
  auto connection = std::make_shared<AsioConnection>(core);
  core->handle = connection.get();
  std::lock_guard<std::mutex> lock(core->mu);
  core->registration = runtime->RegisterStop(core, &Core::AbortForShutdown);
  if (core->registration == 0) {
    core->Carry(core->state.Abort());
    return absl::UnavailableError("the asio Runtime is shutting down");
  }
  core->Replan();  // the reader starts
  return connection;
}

}  // namespace netlayer::asio::internal
