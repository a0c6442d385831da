// TlsConnection: TLS over any Connection (a backend's, or another adapter's), through OpenSSL
// memory BIOs, so it runs the same over the simulator and over posix. See docs/TLS.md.
//
// It is a driver of core's ConnectionState, like every backend: the application-facing side
// (handler slot, delivery queue, close-once, output bound, the six promises of connection.h)
// is ConnectionState's, and the wrapped connection is its transport. The adapter is the wrapped
// connection's handler: ciphertext arriving there goes through OpenSSL, and the plaintext goes
// to ConnectionState exactly as a backend hands it the bytes of a socket.
//
//   - Writes made before the handshake completes wait in the output queue (bounded) and are
//     encrypted once it has.
//   - Close() encrypts what was written, then sends close_notify, then closes the wrapped
//     connection (which flushes). A close_notify from the peer is ConnectionClosed(kPeerClosed).
//   - Every failure closes the connection once with CloseReason kProtocolError and detail
//     "tls <error>: <what happened>" (TlsError below), logged (netlayer.tls, warning) on the
//     side that sees it. A reset or close of the wrapped connection passes through with its own
//     kind (kReset, ...), except a close after the handshake without close_notify: kTruncated.
//
//   - Back-pressure passes through: while the application's pending plaintext is at its bound
//     (limits.max_pending_input_bytes: no handler set, or a slow one), the adapter removes itself
//     as the wrapped connection's handler, so the wrapped connection queues input up to its own
//     bound and its backend stops reading (the sender sees it). Once deliveries make room, the
//     adapter installs itself again and reads on; input and a close that arrived meanwhile wait
//     in the wrapped connection and come in order.
//
// Thread rules: as connection.h. Internally one std::mutex guards OpenSSL and the state; no
// lock is held while a handler runs; the wrapped connection's Write is called with that mutex
// held (a transport's Write never calls handlers), its SetHandler and Close without it. Calls to
// the wrapped connection's SetHandler are made by one thread at a time (a claim, not a lock: the
// call may deliver synchronously into the adapter).
//
// Abort() (close with reset), when core's Connection gains it, forwards to the wrapped
// connection's Abort() after the local state closes: nothing is encrypted or sent first.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>  // NOLINT(determinism): std::thread::id only; tls starts no thread
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/env.h"
#include "netlayer/tls/context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace netlayer::tls {

// Why a TLS connection failed. In a CloseReason's detail as "tls <name>: ...".
enum class TlsError {
  kNone,
  kUnknownCa,          // a certificate does not chain to a trusted CA (or the peer said so)
  kBadName,            // the server's certificate does not carry the expected name
  kExpired,            // a certificate is expired or not yet valid (or the peer said so)
  kNoPeerCertificate,  // the server requires a client certificate and the client sent none
  kBadCertificate,     // another certificate problem (the peer's "bad certificate" alert, ...)
  kProtocolVersion,    // no TLS version in common
  kAlpnMismatch,       // no application protocol (ALPN) in common
  kHandshakeTimeout,   // the handshake did not complete in TlsOptions::handshake_timeout
  kTruncated,          // the stream ended after the handshake without close_notify
  kProtocolError,      // garbage, a bad record, any other failure
};
const char* TlsErrorName(TlsError error);  // "unknown-ca", "bad-name", ...
// An authentication failure, which retrying with the same settings would repeat: unknown-ca,
// bad-name, expired, no-peer-certificate, bad-certificate, protocol-version, alpn-mismatch. Its
// close reason is CloseReason::permanent() (a reconnecting rpc::Client stops at it).
bool IsAuthenticationFailure(TlsError error);

// The peer's certificate, as verified during the handshake (core/peer_identity.h).
using PeerIdentity = ::netlayer::PeerIdentity;

class TlsConnection final : public Connection, public std::enable_shared_from_this<TlsConnection> {
 public:
  // Called once: OK when the handshake completed, else the failure (kUnavailable carrying the
  // close reason). Runs without the adapter's lock, on whichever thread drove the handshake.
  using HandshakeCallback = absl::AnyInvocable<void(const absl::Status&) &&>;

  // Wraps `transport` (which must have no handler yet: the adapter becomes it). `server_name`
  // (client role): the name to verify and send as SNI ("" with verify_peer off). Nothing happens
  // until Start().
  static std::shared_ptr<TlsConnection> Create(std::shared_ptr<TlsContext> context, Env& env,
                                               std::shared_ptr<Connection> transport,
                                               std::string server_name = "",
                                               HandshakeCallback on_handshake = nullptr);
  // Installs the adapter as the transport's handler, arms the handshake deadline and (client)
  // sends the ClientHello. Call once.
  void Start();

  ~TlsConnection() override;

  // Connection.
  bool IsOpen() const override;
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  // A reset without close_notify: the wrapped connection is aborted (the peer sees a reset).
  void Abort() override;
  size_t QueuedOutputBytes() const override;
  Address local_address() const override { return transport_->local_address(); }
  Address peer_address() const override { return transport_->peer_address(); }

  // TLS.
  Role role() const { return context_->role(); }
  bool handshake_complete() const;
  // The peer's certificate once the handshake completed (nullopt before, or if it sent none).
  std::optional<PeerIdentity> peer_identity() const override;
  // The ALPN protocol agreed ("" if none), the version ("TLSv1.3") and cipher suite.
  std::string alpn_protocol() const;
  std::string protocol_version() const;
  std::string cipher() const;
  // Why it failed (kNone while healthy or after a clean close).
  TlsError error() const;

 private:
  class TransportHandler;
  // What an entry point must do after releasing mu_.
  struct After {
    bool close_transport = false;
    HandshakeCallback handshake_callback;
    absl::Status handshake_status;
  };

  TlsConnection(std::shared_ptr<TlsContext> context, Env& env,
                std::shared_ptr<Connection> transport, std::string server_name,
                HandshakeCallback on_handshake);

  // Entry points from the transport and the timer.
  void OnTransportInput(std::string_view data);
  void OnTransportClosed(const CloseReason& reason);
  void OnHandshakeTimeout();

  // Runs the engine: handshake, plaintext in (delivered, lock released meanwhile), output out.
  // REQUIRES and ensures: lock held.
  void Drive(std::unique_lock<std::mutex>& lock);
  // Each REQUIRES mu_ held.
  bool StepHandshake();
  // Reads the plaintext OpenSSL has now into `out` (several records while they fit); returns
  // how many bytes it wrote.
  size_t ReadPlaintext(absl::Span<char> out);
  void EncryptOutput();
  void FlushCiphertext();
  void SendCloseNotify();
  void Fail(TlsError error, std::string detail);
  void Finish(std::optional<CloseReason> deliver);
  void CaptureIdentity();
  void CancelHandshakeTimer();
  // Releases the lock and does what After says, then pauses or resumes reading the transport.
  // REQUIRES lock held; returns with it released.
  void Complete(std::unique_lock<std::mutex>& lock);
  // Whether the adapter should be the transport's handler now (reading it). REQUIRES mu_ held.
  bool WantTransportInput() const;
  // Installs or removes the adapter as the transport's handler until that matches
  // WantTransportInput(). REQUIRES mu_ not held and the claim (syncing_transport_) taken.
  void SyncTransportHandler();

  const std::shared_ptr<TlsContext> context_;
  Env& env_;
  const std::shared_ptr<Connection> transport_;
  const std::string server_name_;

  mutable std::mutex mu_;
  ConnectionState state_;       // GUARDED_BY(mu_)
  SSL* ssl_ = nullptr;          // GUARDED_BY(mu_)
  BIO* network_in_ = nullptr;   // ciphertext from the transport, read by OpenSSL
  BIO* network_out_ = nullptr;  // ciphertext written by OpenSSL, for the transport
  bool started_ = false;
  bool handshake_complete_ = false;  // GUARDED_BY(mu_)
  bool stopped_ = false;             // GUARDED_BY(mu_): the engine is done (closed or failed)
  bool transport_closed_ = false;    // GUARDED_BY(mu_): Close() was (to be) called on it
  std::optional<TlsError> deferred_failure_;  // GUARDED_BY(mu_): after the plaintext before it
  std::string deferred_detail_;               // GUARDED_BY(mu_)
  bool peer_sent_close_notify_ = false;       // GUARDED_BY(mu_)
  bool read_blocked_ = false;                 // GUARDED_BY(mu_): reading stopped at the input bound
  // The adapter as the transport's handler (made by Start; holds the adapter weakly).
  std::shared_ptr<ConnectionHandler> transport_handler_;  // GUARDED_BY(mu_) (const after Start)
  bool transport_reading_ = false;  // GUARDED_BY(mu_): installed as the transport's handler
  bool syncing_transport_ = false;  // GUARDED_BY(mu_): a thread is calling transport SetHandler
  std::thread::id syncing_thread_;  // GUARDED_BY(mu_): which one. NOLINT(determinism): an id
  std::optional<CloseReason> transport_eof_;  // GUARDED_BY(mu_): the transport's close, pending
  TlsError error_ = TlsError::kNone;          // GUARDED_BY(mu_)
  std::optional<PeerIdentity> peer_;          // GUARDED_BY(mu_)
  std::optional<TimerId> handshake_timer_;    // GUARDED_BY(mu_)
  HandshakeCallback on_handshake_;            // GUARDED_BY(mu_): taken once
  After after_;                               // GUARDED_BY(mu_): collected for Complete
};

}  // namespace netlayer::tls
