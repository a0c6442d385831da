// The seed's IConnection and IConnectionHandler.
//
// A Connection is a bidirectional byte stream owned jointly (shared_ptr) by the application and
// the backend. Its promises (DESIGN.md §3), enforced once in core::ConnectionState and checked
// on every backend by tests/contract:
//   1. Input and close that arrive before a handler is set are queued and delivered in order
//      once one is set.
//   2. A handler is never re-entered and never called from two threads at once for one
//      connection.
//   3. Close() sends what was written before it; nothing written is silently dropped while open.
//   4. ConnectionClosed fires exactly once for a remote close or error, never for a local Close().
//   5. Write after close fails cleanly (an error, not a crash) and never blocks.
//   6. Bytes arrive in order, never duplicated; they may arrive split or merged at any boundary.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/core/address.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/peer_identity.h"

namespace netlayer {

class Connection;

// Receives a connection's events. Thread rules: called by the backend's delivery thread (posix:
// the connection's input thread, or the thread that called SetHandler to drain queued events;
// sim: the world's thread), never twice at once and never re-entered for one connection, and
// never with a backend lock held, so a handler may call any Connection method, including Write,
// SetHandler and Close.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // `data` is valid only during the call; it is never empty.
  virtual void InputData(Connection& connection, std::string_view data) = 0;
  // The stream ended by the peer or by an error. Not called after a local Close().
  virtual void ConnectionClosed(Connection& connection, const CloseReason& reason) = 0;

  // Optional zero-copy reads (a backend may ignore it; the default offers nothing). Same thread
  // rules as InputData. A backend that supports it (posix) may ask before a read for a buffer
  // where the handler wants the next input bytes (say, the rest of a large message's payload),
  // read up to its size into it, and then call InputData with a view of the bytes written at its
  // start, instead of reading into its own buffer and handing over a copy. Between this call and
  // that InputData no other method of this handler is called, and the backend holds its reference
  // to the handler. The read may also find nothing, or the connection may close meanwhile: then
  // no InputData follows and the span's contents are unspecified (the handler must not rely on
  // them; the next call may offer the same span again). Empty: read into the backend's buffer.
  virtual absl::Span<char> InputBuffer(Connection& connection) {
    (void)connection;
    return {};
  }
};

// Thread rules: every method may be called from any thread, concurrently. No method blocks.
class Connection {
 public:
  virtual ~Connection() = default;

  // True while the connection is open: not closed locally and no close or error seen.
  virtual bool IsOpen() const = 0;

  // Installs `handler` (nullptr removes it) and returns the previous one. Events queued while no
  // handler was set are delivered to the new one, in order, before any later event.
  virtual std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) = 0;

  // Queues the concatenation of `pieces` for sending, atomically with respect to other writers
  // (so one frame written from several threads never interleaves). Never blocks. Small writes a
  // handler makes from inside InputData may wait until InputData returns, so that the answers
  // to one read leave together (posix and sim; ConnectionState::BeginCork).
  // Errors: FailedPrecondition once closed; ResourceExhausted if the output queue's bound would
  // be exceeded (nothing is queued then; the connection stays open).
  virtual absl::Status WriteV(absl::Span<const std::string_view> pieces) = 0;
  absl::Status Write(std::string_view data) { return WriteV(absl::MakeConstSpan(&data, 1)); }

  // Closes locally: output written before is still sent, then the stream closes. Undelivered
  // input is discarded and no ConnectionClosed is delivered. Idempotent.
  virtual void Close() = 0;

  // Aborts locally: unsent output is discarded and the stream is reset (a TCP peer sees
  // ECONNRESET; a simulated peer a kReset close). Like Close(), undelivered input is discarded and
  // no ConnectionClosed is delivered to this end. After Close() it cuts the flush short. No-op
  // once the stream has ended. Idempotent.
  virtual void Abort() = 0;

  // Bytes written but not yet handed to the network (for back-pressure decisions).
  virtual size_t QueuedOutputBytes() const = 0;

  virtual Address local_address() const = 0;
  virtual Address peer_address() const = 0;

  // Who the peer proved to be: a TLS connection's verified certificate once its handshake
  // completed (tls::TlsConnection). nullopt for a plain connection, or a peer without one.
  virtual std::optional<PeerIdentity> peer_identity() const { return std::nullopt; }
};

}  // namespace netlayer
