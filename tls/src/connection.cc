#include "netlayer/tls/connection.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <climits>
#include <thread>  // NOLINT(determinism): std::this_thread::get_id only; tls starts no thread

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "errors.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"
#include "openssl_util.h"

namespace netlayer::tls {
namespace {

// Plaintext handed to the application per delivery, at most: one full TLS record's worth (2^14)
// or several small records, read into a buffer on the stack. Nothing is allocated per delivery:
// a large message reaches the application as several deliveries, which its own decoder
// assembles (smac: into its payload buffer) as it would a socket's reads. (A per-delivery
// string grown to 64 KiB, freed beside smac's 64 KiB message buffer, made glibc trim the heap
// (madvise) and fault it back in on every message: 64 KiB ping-pong ran at 0.1x of plain.)
constexpr size_t kPlaintextChunk = size_t{16} << 10;

std::string NameToString(const X509_NAME* name) {
  return internal::WriteToString(
      [&](BIO* bio) { X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253); });
}

std::string IpToString(const ASN1_OCTET_STRING* ip) {
  const unsigned char* p = ASN1_STRING_get0_data(ip);
  const int n = ASN1_STRING_length(ip);
  if (n == 4) return absl::StrFormat("%d.%d.%d.%d", p[0], p[1], p[2], p[3]);
  std::string out;
  for (int i = 0; i + 1 < n; i += 2) {
    if (i > 0) out += ':';
    out += absl::StrFormat("%x", (p[i] << 8) | p[i + 1]);
  }
  return out;
}

bool IsIpLiteral(const std::string& name) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

const char* RoleName(Role role) { return role == Role::kClient ? "client" : "server"; }

}  // namespace

// The adapter as the wrapped connection's handler. Holds the adapter weakly: the application
// owns it; once it is gone the wrapped connection has been closed.
class TlsConnection::TransportHandler final : public ConnectionHandler {
 public:
  explicit TransportHandler(std::weak_ptr<TlsConnection> connection)
      : connection_(std::move(connection)) {}
  void InputData(Connection&, std::string_view data) override {
    if (auto c = connection_.lock()) c->OnTransportInput(data);
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    if (auto c = connection_.lock()) c->OnTransportClosed(reason);
  }

 private:
  std::weak_ptr<TlsConnection> connection_;
};

std::shared_ptr<TlsConnection> TlsConnection::Create(std::shared_ptr<TlsContext> context, Env& env,
                                                     std::shared_ptr<Connection> transport,
                                                     std::string server_name,
                                                     HandshakeCallback on_handshake) {
  NETLAYER_ASSERT(context != nullptr && transport != nullptr,
                  "a TLS connection needs a context and a transport");
  return std::shared_ptr<TlsConnection>(
      new TlsConnection(std::move(context), env, std::move(transport), std::move(server_name),
                        std::move(on_handshake)));
}

TlsConnection::TlsConnection(std::shared_ptr<TlsContext> context, Env& env,
                             std::shared_ptr<Connection> transport, std::string server_name,
                             HandshakeCallback on_handshake)
    : context_(std::move(context)),
      env_(env),
      transport_(std::move(transport)),
      server_name_(std::move(server_name)),
      state_(context_->options().limits),
      on_handshake_(std::move(on_handshake)) {
  ssl_ = context_->NewSsl();  // on the context's credentials of now (a reload changes later ones)
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  NETLAYER_ASSERT(network_in_ != nullptr && network_out_ != nullptr, "memory BIOs");
  // An empty input BIO means "no data yet" (retry), not end of stream.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);  // ssl_ owns both
  if (context_->role() == Role::kClient) {
    SSL_set_connect_state(ssl_);
    if (!server_name_.empty()) {
      if (IsIpLiteral(server_name_)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name_.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl_, server_name_.c_str());
        SSL_set1_host(ssl_, server_name_.c_str());
      }
    }
  } else {
    SSL_set_accept_state(ssl_);
  }
}

TlsConnection::~TlsConnection() {
  bool close_transport = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_ && handshake_complete_) {
      // Dropped without Close(): still a clean end for the peer.
      EncryptOutput();
      if (!stopped_) {
        SSL_shutdown(ssl_);
        FlushCiphertext();
      }
    }
    stopped_ = true;
    close_transport = !transport_closed_;
    transport_closed_ = true;
    CancelHandshakeTimer();
  }
  if (close_transport) transport_->Close();
  SSL_free(ssl_);
}

void TlsConnection::Start() {
  std::unique_lock<std::mutex> lock(mu_);
  NETLAYER_ASSERT(!started_, "TlsConnection::Start is called once");
  started_ = true;
  std::weak_ptr<TlsConnection> weak = weak_from_this();
  transport_handler_ = std::make_shared<TransportHandler>(weak);
  handshake_timer_ = env_.RunAt(env_.Now() + context_->options().handshake_timeout, [weak] {
    if (auto c = weak.lock()) c->OnHandshakeTimeout();
  });
  Drive(lock);
  // Installs the adapter as the transport's handler: input that reached the transport before
  // now is delivered from here.
  Complete(lock);
}

// ---- Application side ----

bool TlsConnection::IsOpen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.IsOpen();
}

std::shared_ptr<ConnectionHandler> TlsConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  // A handler called from here may drop the application's last reference: keep the adapter
  // alive until this call is done with it.
  std::shared_ptr<TlsConnection> self = weak_from_this().lock();
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<ConnectionHandler> old = state_.SetHandler(std::move(handler));
  // Delivers what waited, then reads on: plaintext held back by the input bound, then (Complete)
  // the transport again if it was paused.
  Drive(lock);
  Complete(lock);
  return old;
}

absl::Status TlsConnection::WriteV(absl::Span<const std::string_view> pieces) {
  std::unique_lock<std::mutex> lock(mu_);
  size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (state_.IsOpen() && total > 0) {
    const size_t queued = state_.output_bytes() + transport_->QueuedOutputBytes();
    const size_t limit = state_.limits().max_output_bytes;
    if (total > limit || queued > limit - total) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tls output full: ", queued, " bytes queued (plaintext and ciphertext), writing ", total,
          " more would pass the limit of ", limit));
    }
  }
  ConnectionState::WriteStart start = state_.BeginWrite(pieces);
  if (!start.status.ok()) return start.status;
  if (start.send_direct) {
    // This write holds the writer claim: encrypt it straight from the caller's buffers once the
    // handshake is done (else all of it waits in the queue for the handshake).
    size_t sent = 0;
    bool ok = true;
    if (handshake_complete_ && !stopped_) {
      for (size_t i = 0; i < pieces.size() && ok; ++i) {
        if (pieces[i].empty()) continue;
        size_t written = 0;
        ERR_clear_error();
        // BUGGIFY: a direct send cut short after its first piece's first half; OnDirectSent
        // queues the rest, ahead of later writes.
        const bool cut = NETLAYER_BUGGIFY("tls.buggify.direct-send-short");
        const size_t n = cut ? (pieces[i].size() + 1) / 2 : pieces[i].size();
        ok = SSL_write_ex(ssl_, pieces[i].data(), n, &written) == 1 && written == n;
        if (ok) sent += written;
        if (cut) break;
      }
      FlushCiphertext();
    }
    state_.OnDirectSent(pieces, sent);
    state_.EndWriterClaim(env_.Now());
    if (!ok) {
      internal::Failure f = internal::ClassifyFailure(ssl_, /*handshaking=*/false);
      Fail(f.error, std::move(f.detail));
    }
  }
  EncryptOutput();
  Complete(lock);
  return absl::OkStatus();
}

void TlsConnection::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  const bool shut_now = state_.Close(env_.Now()).shutdown_write;
  if (!stopped_) {
    if (shut_now) {
      if (handshake_complete_) {
        SendCloseNotify();
      } else {
        Finish(std::nullopt);  // nothing was agreed yet: just close the stream
      }
    } else {
      EncryptOutput();  // output waits for the handshake; sent (then close_notify) after it
    }
  }
  Complete(lock);
}

void TlsConnection::Abort() {
  std::unique_lock<std::mutex> lock(mu_);
  const bool reset = state_.Abort().reset;
  bool abort_transport = false;
  if (reset && !stopped_) {
    stopped_ = true;  // no close_notify: the stream is reset
    CancelHandshakeTimer();
    if (on_handshake_) {
      after_.handshake_callback = std::exchange(on_handshake_, nullptr);
      after_.handshake_status = absl::CancelledError("tls connection aborted");
    }
    abort_transport = !transport_closed_;
    transport_closed_ = true;
  }
  Complete(lock);
  if (abort_transport) transport_->Abort();
}

size_t TlsConnection::QueuedOutputBytes() const {
  size_t plaintext;
  {
    std::lock_guard<std::mutex> lock(mu_);
    plaintext = state_.output_bytes();
  }
  return plaintext + transport_->QueuedOutputBytes();
}

bool TlsConnection::handshake_complete() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handshake_complete_;
}

std::optional<PeerIdentity> TlsConnection::peer_identity() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peer_;
}

std::string TlsConnection::alpn_protocol() const {
  std::lock_guard<std::mutex> lock(mu_);
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string TlsConnection::protocol_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handshake_complete_ ? SSL_get_version(ssl_) : "";
}

std::string TlsConnection::cipher() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handshake_complete_ ? SSL_get_cipher_name(ssl_) : "";
}

TlsError TlsConnection::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

// ---- Transport side ----

void TlsConnection::OnTransportInput(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopped_) return;  // closed or failed: nothing more is read
  // Also while paused (!transport_reading_): a delivery the transport began before the pause
  // still arrives. At most one such event; it waits in the input BIO like the rest.
  while (!data.empty()) {
    const int n = static_cast<int>(std::min<size_t>(data.size(), INT_MAX));
    const int written = BIO_write(network_in_, data.data(), n);
    NETLAYER_ASSERT(written == n, "a memory BIO takes every byte");
    data.remove_prefix(static_cast<size_t>(n));
  }
  Drive(lock);
  Complete(lock);
}

void TlsConnection::OnTransportClosed(const CloseReason& reason) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!stopped_) {
    // Processed by Drive once every byte before it has been read (it may wait for the input
    // bound to allow it).
    transport_eof_ = reason;
    transport_closed_ = true;
    Drive(lock);
  }
  Complete(lock);
}

void TlsConnection::OnHandshakeTimeout() {
  std::unique_lock<std::mutex> lock(mu_);
  handshake_timer_.reset();  // it fired
  if (!stopped_ && !handshake_complete_) {
    NETLAYER_REACHABLE("tls.handshake.deadline");
    Fail(TlsError::kHandshakeTimeout,
         absl::StrCat("the handshake did not complete within ",
                      absl::FormatDuration(context_->options().handshake_timeout)));
    DeliverEvents(lock, state_, *this);
  }
  Complete(lock);
}

// ---- The engine ----

void TlsConnection::Drive(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    while (started_ && !stopped_) {
      read_blocked_ = false;
      if (!handshake_complete_ && !StepHandshake()) break;  // in progress, or failed
      EncryptOutput();
      if (stopped_) break;
      std::array<char, kPlaintextChunk> buffer;
      const size_t n = ReadPlaintext(absl::MakeSpan(buffer));
      FlushCiphertext();
      if (n > 0) {
        // Unlocks around the handler; other threads may drive meanwhile.
        ReceiveInput(lock, state_, *this, std::string_view(buffer.data(), n));
        continue;
      }
      if (!state_.WantRead()) {
        // Held back by the input bound: so is what ended the stream, if anything did. Until
        // deliveries make room the transport is not read either (Complete pauses it).
        read_blocked_ = true;
        break;
      }
      // Everything readable has been read: now what ended the stream, in order.
      if (peer_sent_close_notify_) {
        SSL_shutdown(ssl_);  // answer with our close_notify
        FlushCiphertext();
        Finish(CloseReason(CloseReason::Kind::kPeerClosed, "tls close_notify"));
      } else if (deferred_failure_) {
        Fail(*deferred_failure_, deferred_detail_);
      } else if (transport_eof_) {
        const CloseReason& r = *transport_eof_;
        if (!handshake_complete_) {
          Log(LogLayer::kTls)
              .info("tls {} handshake interrupted (peer {}): {}", RoleName(role()),
                    transport_->peer_address().ToString(), r.ToString());
          context_->CountHandshakeFailure(std::nullopt);
          Finish(CloseReason(r.kind(), absl::StrCat("tls handshake interrupted: ", r.ToString())));
        } else if (r.kind() == CloseReason::Kind::kPeerClosed) {
          Fail(TlsError::kTruncated, "the stream ended without close_notify");
        } else {
          Finish(r);  // a reset, an error: as the wrapped connection reported it
        }
      }
      break;
    }
    FlushCiphertext();
    DeliverEvents(lock, state_, *this);
    // Whoever delivers (this thread or another that held the delivery claim) resumes reading
    // what the input bound held back, once the application took enough; Complete then resumes
    // the transport.
    if (stopped_ || !started_ || !read_blocked_ || !state_.WantRead()) break;
  }
}

bool TlsConnection::StepHandshake() {
  // Certificates are checked against the Env's clock (virtual time in the simulator).
  X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl_), absl::ToTimeT(env_.Now()));
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r != 1) {
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
    internal::Failure f = internal::ClassifyFailure(ssl_, /*handshaking=*/true);
    NETLAYER_REACHABLE("tls.handshake.failed");
    Fail(f.error, std::move(f.detail));
    return false;
  }
  handshake_complete_ = true;
  if (!context_->alpn_wire().empty()) {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    if (n == 0) {
      Fail(TlsError::kAlpnMismatch, role() == Role::kClient
                                        ? "the server agreed to no application protocol (ALPN)"
                                        : "the client offered no application protocol (ALPN)");
      return false;
    }
  }
  CaptureIdentity();
  context_->CountHandshake();
  CancelHandshakeTimer();
  if (on_handshake_) {
    after_.handshake_callback = std::exchange(on_handshake_, nullptr);
    after_.handshake_status = absl::OkStatus();
  }
  Log(LogLayer::kTls)
      .debug("tls {} handshake complete (peer {}): {} {}, peer certificate '{}'", RoleName(role()),
             transport_->peer_address().ToString(), SSL_get_version(ssl_),
             SSL_get_cipher_name(ssl_), peer_ ? peer_->subject : std::string("(none)"));
  return true;
}

size_t TlsConnection::ReadPlaintext(absl::Span<char> out) {
  if (!handshake_complete_ || peer_sent_close_notify_ || deferred_failure_) return 0;
  size_t filled = 0;
  while (filled < out.size()) {
    if (!state_.WantRead()) break;  // at the input bound (Drive sees it)
    size_t n = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_, out.data() + filled, out.size() - filled, &n);
    if (r == 1) {
      filled += n;
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_sent_close_notify_ = true;
      break;
    }
    internal::Failure f = internal::ClassifyFailure(ssl_, /*handshaking=*/false);
    deferred_failure_ = f.error;
    deferred_detail_ = std::move(f.detail);
    break;
  }
  return filled;
}

void TlsConnection::EncryptOutput() {
  if (!handshake_complete_ || stopped_) return;
  std::array<std::string_view, 16> pieces;
  while (state_.ClaimTransport()) {
    const size_t n = state_.PeekOutput(absl::MakeSpan(pieces));
    size_t total = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      if (pieces[i].empty()) continue;
      size_t written = 0;
      ERR_clear_error();
      ok = SSL_write_ex(ssl_, pieces[i].data(), pieces[i].size(), &written) == 1 &&
           written == pieces[i].size();
      if (ok) total += written;
    }
    FlushCiphertext();
    const bool flushed_after_close = state_.OnSent(total, env_.Now()).shutdown_write;
    if (!ok) {
      internal::Failure f = internal::ClassifyFailure(ssl_, /*handshaking=*/false);
      Fail(f.error, std::move(f.detail));
      return;
    }
    if (stopped_) return;
    if (flushed_after_close) {
      SendCloseNotify();
      return;
    }
  }
}

void TlsConnection::FlushCiphertext() {
  const size_t pending = BIO_ctrl_pending(network_out_);
  if (pending == 0) return;
  std::string ciphertext(pending, '\0');
  const int n = BIO_read(network_out_, ciphertext.data(), static_cast<int>(pending));
  NETLAYER_ASSERT(n == static_cast<int>(pending), "a memory BIO gives what it holds");
  if (transport_closed_) return;  // nowhere to send it
  absl::Status s = transport_->Write(ciphertext);
  if (!s.ok() && !stopped_ && s.code() == absl::StatusCode::kResourceExhausted) {
    // Cannot happen within the adapter's own bound over a default transport; never silently.
    Log(LogLayer::kTls).warn("tls {}: {}", RoleName(role()), s.ToString());
    Finish(CloseReason(CloseReason::Kind::kError,
                       absl::StrCat("tls: the wrapped connection refused output: ", s.message())));
  }
  // FailedPrecondition: the wrapped connection has closed; its ConnectionClosed follows.
}

void TlsConnection::SendCloseNotify() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  FlushCiphertext();
  Finish(std::nullopt);
}

void TlsConnection::Fail(TlsError error, std::string detail) {
  if (stopped_) return;
  error_ = error;
  // An ALPN mismatch is found just after OpenSSL's handshake completed: still a failed one.
  if (!handshake_complete_ || error == TlsError::kAlpnMismatch) {
    context_->CountHandshakeFailure(error);
  }
  CloseReason reason(CloseReason::Kind::kProtocolError,
                     absl::StrCat("tls ", TlsErrorName(error), ": ", detail));
  reason.set_permanent(IsAuthenticationFailure(error));
  Log(LogLayer::kTls)
      .warn("tls {} {} (peer {}): {}", RoleName(role()),
            handshake_complete_ ? "connection failed" : "handshake failed",
            transport_->peer_address().ToString(), reason.ToString());
  FlushCiphertext();  // the alert OpenSSL queued for the peer goes before the close
  Finish(std::move(reason));
}

void TlsConnection::Finish(std::optional<CloseReason> reason) {
  if (stopped_) return;
  stopped_ = true;
  absl::Status handshake_status =
      absl::CancelledError("tls connection closed before its handshake completed");
  if (reason) {
    handshake_status = reason->ToStatus();
    state_.OnRemoteClosed(*std::move(reason));
  }
  if (!transport_closed_) {
    transport_closed_ = true;
    after_.close_transport = true;
  } else if (transport_eof_) {
    after_.close_transport = true;  // already closed by the peer: Close() only releases it
  }
  CancelHandshakeTimer();
  if (on_handshake_) {
    after_.handshake_callback = std::exchange(on_handshake_, nullptr);
    after_.handshake_status = std::move(handshake_status);
  }
}

void TlsConnection::CancelHandshakeTimer() {
  // Under mu_ (Env::CancelTimer never waits for a running timer): once the handshake is seen
  // complete or the connection stopped, nothing of this connection uses the Env any more, so
  // the application may destroy it.
  if (handshake_timer_) env_.CancelTimer(*std::exchange(handshake_timer_, std::nullopt));
}

void TlsConnection::CaptureIdentity() {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return;
  PeerIdentity id;
  id.subject = NameToString(X509_get_subject_name(cert));
  id.issuer = NameToString(X509_get_issuer_name(cert));
  std::array<char, 256> cn{};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn.data(),
                                static_cast<int>(cn.size())) > 0) {
    id.common_name = cn.data();
  }
  if (auto* names = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS) {
        const ASN1_IA5STRING* s = name->d.dNSName;
        id.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  static_cast<size_t>(ASN1_STRING_length(s)));
      } else if (name->type == GEN_IPADD) {
        id.ip_addresses.push_back(IpToString(name->d.iPAddress));
      }
    }
    GENERAL_NAMES_free(names);
  }
  id.verified = SSL_get_verify_result(ssl_) == X509_V_OK &&
                (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0;
  peer_ = std::move(id);
}

void TlsConnection::Complete(std::unique_lock<std::mutex>& lock) {
  After after = std::exchange(after_, After{});
  // One thread at a time changes the transport's handler; a thread that finds the claim taken
  // leaves its decision to the claimant, which checks again after each call. Except a pause
  // decided inside the claimant's own call (installing delivers what the transport queued, on
  // this thread, into OnTransportInput): removing the handler there at once stops the
  // transport's delivery loop after the current event, instead of taking all it queued. That
  // call comes after the claimant's install took effect, and removing never delivers.
  bool sync = false;
  bool pause_now = false;
  const bool want = WantTransportInput();
  if (want != transport_reading_) {
    if (!syncing_transport_) {
      syncing_transport_ = true;
      syncing_thread_ = std::this_thread::get_id();
      sync = true;
    } else if (!want && syncing_thread_ == std::this_thread::get_id()) {
      transport_reading_ = false;
      pause_now = true;
    }
  }
  lock.unlock();
  if (after.close_transport) transport_->Close();
  if (after.handshake_callback) std::move(after.handshake_callback)(after.handshake_status);
  if (pause_now) transport_->SetHandler(nullptr);
  if (sync) SyncTransportHandler();
}

bool TlsConnection::WantTransportInput() const {
  // Once stopped the transport is closed (or closing by the peer): its handler stays as it is.
  if (!started_ || stopped_) return transport_reading_;
  // Paused while the application's input is at its bound: the transport then queues input up
  // to its own bound and its backend stops reading, which is the back-pressure the peer sees.
  return state_.WantRead();
}

void TlsConnection::SyncTransportHandler() {
  for (;;) {
    bool install;
    {
      std::lock_guard<std::mutex> lock(mu_);
      NETLAYER_ASSERT(syncing_transport_, "the transport handler claim is held");
      install = WantTransportInput();
      if (install == transport_reading_) {
        syncing_transport_ = false;
        return;
      }
      transport_reading_ = install;
    }
    // Without mu_: installing delivers what the transport queued meanwhile, synchronously
    // (OnTransportInput, on this thread; a pause decided there is carried out there, see
    // Complete); removing stops its delivery loop after the current event. Neither re-enters
    // this loop (Complete sees the claim taken).
    transport_->SetHandler(install ? transport_handler_ : nullptr);
  }
}

}  // namespace netlayer::tls
