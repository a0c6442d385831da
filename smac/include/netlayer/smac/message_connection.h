// MessageConnection: turns any core Connection into a connection of whole messages (smac
// frames), keeping every connection promise of netlayer/core/connection.h at message level:
//   1. Messages and the close notification that arrive before a MessageHandler is set are queued
//      and delivered, in order, once one is set.
//   2. A MessageHandler is never re-entered and never called from two threads at once.
//   3. Close() sends every message sent before it (the core connection flushes).
//   4. ConnectionClosed fires exactly once for a remote close, an error or a protocol error,
//      never after a local Close().
//   5. Send after close fails cleanly (FailedPrecondition), never blocks.
//   6. Messages arrive whole, in order, never duplicated.
// Promises 1, 2 and 4 are kept by core's DeliveryQueue, the same code that keeps them for bytes in
// ConnectionState (here with messages that never merge and a hard bound on queued bytes).
// A frame whose header announces more than max_message_size closes the connection: the handler
// gets a CloseReason of kind kProtocolError naming the size and the limit. A partial frame's
// buffer grows as its bytes arrive (frame.h), may be charged to a shared MemoryBudget
// (MessageOptions::budget), and is freed as soon as the core connection reports its close. Each message is written
// with ONE Connection::WriteV({header, payload pieces...}), so messages sent from several threads
// never interleave, and the adapter never concatenates or copies the payload itself. On a
// backend that reads into a handler's buffer (ConnectionHandler::InputBuffer: posix), the payload
// of a large frame is read straight into the decoder's buffer, without a copy.
//
// Thread rules: every method may be called from any thread, concurrently; none blocks. Handlers
// are called on the core connection's delivery thread (or the thread calling SetHandler when it
// drains queued messages), never with an internal lock held, so a handler may call any method.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/delivery_queue.h"
#include "netlayer/core/mutex.h"
#include "netlayer/smac/frame.h"

namespace netlayer::smac {

class MessageConnection;

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // One whole message; `message` is valid only during the call (it may be empty).
  virtual void MessageReceived(MessageConnection& connection, std::string_view message) = 0;
  // The stream ended by the peer, an error, or a protocol error. Not called after Close().
  virtual void ConnectionClosed(MessageConnection& connection, const CloseReason& reason) = 0;
};

struct MessageOptions {
  // Largest message accepted from the peer and allowed in Send. Checked on the header, before
  // any allocation.
  size_t max_message_size = kDefaultMaxMessageSize;
  // When non-zero, the peer's FIRST message may be at most this large (checked on its header,
  // like max_message_size; the limit counts the payload, not the 4-byte header); later messages
  // are bounded by max_message_size. A protocol whose first message is a small hello (rpc) sets
  // it so that a peer cannot make us buffer a whole max_message_size frame before it has said
  // who it is. 0: the first message has the same limit as the others.
  size_t max_first_message_size = 0;
  // Bytes of whole messages received but not yet delivered because no handler is set. Past it the
  // connection is closed (kError) rather than growing without bound.
  size_t max_queued_bytes = size_t{128} << 20;
  // When set, the buffers of partial frames over kUnbudgetedBytes (64 KiB) are charged to this
  // budget, shared with other connections (rpc::Server sets it from memory_budget_bytes); a
  // frame it cannot take closes the connection (kError, "smac: a frame of N bytes was refused
  // ... the memory budget ... is spent"). nullptr: no budget.
  std::shared_ptr<MemoryBudget> budget;
};

// Limits that agree: InvalidArgument naming a combination that cannot work: max_message_size 0
// or over the format's 2^32-1; max_first_message_size over max_message_size; max_queued_bytes
// below max_message_size (one whole message could never be queued); and, when
// `connection_max_output_bytes` is non-zero (the connection's output bound,
// ConnectionLimits::max_output_bytes, or TlsOptions::limits over TLS), a largest frame
// (max_message_size + 4) it could never carry. OK for the defaults (64 MiB frames, 72 MiB).
absl::Status ValidateMessageOptions(const MessageOptions& options,
                                    size_t connection_max_output_bytes = 0);

class MessageConnection : public std::enable_shared_from_this<MessageConnection> {
 public:
  // Takes over `connection`: installs itself as its handler (input already queued there is
  // decoded and queued here). The core connection holds only a weak reference back: destroying
  // the last MessageConnection pointer closes the connection (as Close() does).
  static std::shared_ptr<MessageConnection> Create(std::shared_ptr<Connection> connection,
                                                   MessageOptions options = {});
  ~MessageConnection();

  MessageConnection(const MessageConnection&) = delete;
  MessageConnection& operator=(const MessageConnection&) = delete;

  // Installs `handler` (nullptr removes it) and returns the previous one; queued events are
  // delivered to the new handler in order before any later event.
  std::shared_ptr<MessageHandler> SetHandler(std::shared_ptr<MessageHandler> handler);

  // Sends one message whose payload is the concatenation of `pieces` (sent without copying them
  // here). InvalidArgument if it is larger than max_message_size; otherwise the core
  // connection's Write errors (FailedPrecondition once closed, ResourceExhausted when its output
  // queue is full; then nothing is sent).
  absl::Status SendV(absl::Span<const std::string_view> pieces);
  absl::Status Send(std::string_view message) { return SendV(absl::MakeConstSpan(&message, 1)); }

  // Local close: flushes what was sent, drops undelivered messages, no ConnectionClosed.
  void Close();
  // Closes the connection because the application found the peer's messages unacceptable: the
  // core connection is closed (flushing), and the handler gets ConnectionClosed(kProtocolError,
  // detail) once, after the messages already queued. For layers above (rpc).
  void CloseWithProtocolError(std::string detail) {
    CloseWithReason(CloseReason(CloseReason::Kind::kProtocolError, std::move(detail)));
  }
  // The general form: closes the core connection (flushing) and reports `reason` to the handler
  // once (e.g. kTimeout from a heartbeat). Does nothing more if already closed.
  void CloseWithReason(CloseReason reason);

  bool IsOpen() const;
  Connection& connection() const { return *connection_; }
  const MessageOptions& options() const { return options_; }
  size_t QueuedOutputBytes() const { return connection_->QueuedOutputBytes(); }

 private:
  class Adapter;    // the core ConnectionHandler
  struct Dispatch;  // maps delivered events onto a MessageHandler

  MessageConnection(std::shared_ptr<Connection> connection, MessageOptions options);
  // Core input (from Adapter, on the core delivery thread: never concurrently).
  void OnInput(std::string_view data);
  void OnCoreClosed(const CloseReason& reason);
  // Queues or directly delivers one message. REQUIRES: called from OnInput.
  void OnMessage(std::string_view message, std::string* owned);
  // Queues the close notification (once) and delivers what waits. REQUIRES lock held; returns
  // held.
  void QueueCloseAndDeliver(MutexLock& lock, CloseReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<Connection> connection_;
  const MessageOptions options_;
  // Only touched on the core delivery thread. Shared with the Adapter: a backend reading into
  // the decoder's buffer (ConnectionHandler::InputBuffer) holds the Adapter, which keeps the
  // buffer alive even if this MessageConnection is destroyed meanwhile.
  const std::shared_ptr<FrameDecoder> decoder_;
  bool first_message_seen_ = false;  // only touched on the core delivery thread

  mutable Mutex mu_;
  // The handler slot, the queued messages and close, the delivery claim. closed(): closed
  // locally, remotely or by a protocol error.
  DeliveryQueue<MessageHandler> deliveries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netlayer::smac
