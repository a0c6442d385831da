#include "netlayer/tls/context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "crypto.h"
#include "errors.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/tls/connection.h"
#include "openssl_util.h"

namespace netlayer::tls {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The PEM text of a field given in memory or as a file ("" if neither).
absl::StatusOr<std::string> Pem(const std::string& pem, const std::string& file,
                                const char* field) {
  if (!pem.empty()) return pem;
  if (!file.empty()) return ReadFile(file, field);
  return std::string();
}

using internal::BioPtr;
using internal::MemBio;
using internal::X509Ptr;

// Every certificate in a PEM text, in order; InvalidArgument if none or one is malformed.
absl::StatusOr<std::vector<X509Ptr>> ReadCertificates(const std::string& pem, const char* field) {
  BioPtr bio = MemBio(pem);
  std::vector<X509Ptr> certs;
  ERR_clear_error();
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  // The loop ends with a "no start line" error at the end of the text: expected.
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_REASON(last) == PEM_R_NO_START_LINE && !certs.empty()) {
    ERR_clear_error();
  } else if (last != 0 || certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": no valid PEM certificate (", internal::DrainOpenSslErrors(), ")"));
  }
  return certs;
}

// "/CN=server, serial 1A2B": the certificate's subject (one line) and serial number (hex).
std::string Summary(X509* cert) {
  std::string subject;
  if (char* line = X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0)) {
    subject = line;
    OPENSSL_free(line);
  }
  std::string serial;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return absl::StrCat(subject, ", serial ", serial);
}

int VersionOf(TlsVersion v) { return v == TlsVersion::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION; }

// Server ALPN, before anything else of the ClientHello is processed: a client that offers no
// ALPN at all gets the fatal alert no_application_protocol (docs/TLS.md §4), as one offering
// only others' protocols does (SelectAlpn). OpenSSL calls the ALPN selection only when the
// extension is present, so the absent case is checked here.
int RequireAlpn(SSL* ssl, int* alert, void*) {
  const unsigned char* extension = nullptr;
  size_t length = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &extension,
                                &length) == 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
  // First on the error queue, so the failure is classified (and described) by it.
  ERR_raise_data(ERR_LIB_SSL, SSL_R_NO_APPLICATION_PROTOCOL,
                 "the client offered no application protocol (ALPN)");
  return SSL_CLIENT_HELLO_ERROR;
}

// Server ALPN: the first of our protocols the client offers, or a fatal no_application_protocol
// alert when the client offers some but none of ours.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  const auto* context = static_cast<const TlsContext*>(arg);
  const std::string& ours = context->alpn_wire();
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(ours.data()),
                            static_cast<unsigned int>(ours.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

absl::Status ValidateTlsLimits(const TlsOptions& options) {
  const size_t output = options.limits.max_output_bytes;
  if (output < CiphertextBound(options.largest_write_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TlsOptions: limits.max_output_bytes (", output, ") cannot hold the largest write (",
        options.largest_write_bytes, " bytes, one frame) once encrypted (",
        CiphertextBound(options.largest_write_bytes),
        " bytes): raise limits.max_output_bytes or lower the frame limit"));
  }
  if (options.transport_max_output_bytes < CiphertextBound(output)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TlsOptions: the wrapped connection's output bound (transport_max_output_bytes ",
        options.transport_max_output_bytes, ") cannot hold limits.max_output_bytes (", output,
        ") once encrypted (", CiphertextBound(output),
        " bytes): raise the backend's ConnectionLimits::max_output_bytes or lower "
        "limits.max_output_bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::Create(Role role, TlsOptions options) {
  // No atexit clean-up: connection threads are detached (posix) and may still be inside OpenSSL
  // while the process exits; OpenSSL freeing its locks and tables under them would be a
  // use-after-free at exit (TSan saw the lock freed under a finishing connect thread). Only the
  // first initialisation in a process decides; later calls are cheap no-ops.
  OPENSSL_init_ssl(
      OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
      nullptr);
  std::shared_ptr<TlsContext> context(new TlsContext(role, std::move(options)));
  if (absl::Status s = context->Init(); !s.ok()) return s;
  return context;
}

bool TlsContext::deterministic() const { return crypto_->deterministic(); }

absl::Status TlsContext::Init() {
  const TlsOptions& o = options_;
  if (VersionOf(o.min_version) > VersionOf(o.max_version)) {
    return absl::InvalidArgumentError("TlsOptions: min_version is above max_version");
  }
  if (o.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("TlsOptions: handshake_timeout must be positive");
  }
  if (absl::Status s = ValidateTlsLimits(o); !s.ok()) return s;
  if (o.max_pending_handshakes == 0 || o.max_accept_queue == 0) {
    return absl::InvalidArgumentError(
        "TlsOptions: max_pending_handshakes and max_accept_queue must be positive");
  }
  for (const std::string& p : o.alpn) {
    if (p.empty() || p.size() > 255) {
      return absl::InvalidArgumentError("TlsOptions: an ALPN protocol name is 1..255 bytes");
    }
    alpn_wire_.push_back(static_cast<char>(p.size()));
    alpn_wire_ += p;
  }

  absl::StatusOr<std::shared_ptr<internal::Crypto>> crypto = internal::Crypto::For(o.random);
  if (!crypto.ok()) return crypto.status();
  crypto_ = *std::move(crypto);

  TlsCredentials credentials{o.certificate_chain_pem,
                             o.certificate_chain_file,
                             o.private_key_pem,
                             o.private_key_file,
                             o.ca_pem,
                             o.ca_file};
  std::string summary;
  absl::StatusOr<SSL_CTX*> ctx = Build(credentials, &summary);
  if (!ctx.ok()) return ctx.status();
  std::lock_guard<std::mutex> lock(mu_);
  ctx_ = *ctx;
  credentials_ = std::move(credentials);
  summary_ = std::move(summary);
  return absl::OkStatus();
}

// The whole SSL_CTX of this context for `c`: on any failure nothing is kept (the old one, on a
// reload, stays in use).
absl::StatusOr<SSL_CTX*> TlsContext::Build(const TlsCredentials& c, std::string* summary) const {
  const TlsOptions& o = options_;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> owned(
      SSL_CTX_new_ex(crypto_->libctx(), nullptr,
                     role_ == Role::kClient ? TLS_client_method() : TLS_server_method()),
      &SSL_CTX_free);
  SSL_CTX* const ctx = owned.get();
  if (ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_new_ex failed: ", internal::DrainOpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx, VersionOf(o.min_version));
  SSL_CTX_set_max_proto_version(ctx, VersionOf(o.max_version));
  // No session tickets, no session cache, no renegotiation: every handshake is a full one, and
  // nothing on the wire depends on OpenSSL's clock (deterministic in the simulator).
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

  // Our certificate and key.
  absl::StatusOr<std::string> chain_pem =
      Pem(c.certificate_chain_pem, c.certificate_chain_file, "certificate_chain");
  if (!chain_pem.ok()) return chain_pem.status();
  absl::StatusOr<std::string> key_pem = Pem(c.private_key_pem, c.private_key_file, "private_key");
  if (!key_pem.ok()) return key_pem.status();
  if (chain_pem->empty() != key_pem->empty()) {
    return absl::InvalidArgumentError(
        "TlsOptions: a certificate chain needs its private key and the other way round");
  }
  if (role_ == Role::kServer && chain_pem->empty()) {
    return absl::InvalidArgumentError("TlsOptions: a server needs a certificate and a key");
  }
  if (!chain_pem->empty()) {
    absl::StatusOr<std::vector<X509Ptr>> chain =
        ReadCertificates(*chain_pem, "TlsOptions.certificate_chain");
    if (!chain.ok()) return chain.status();
    if (SSL_CTX_use_certificate(ctx, (*chain)[0].get()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TlsOptions.certificate_chain: ", internal::DrainOpenSslErrors()));
    }
    for (size_t i = 1; i < chain->size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("TlsOptions.certificate_chain: ", internal::DrainOpenSslErrors()));
      }
    }
    // The key lives in this context's library context, so signing draws its randomness there.
    BioPtr bio = MemBio(*key_pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, nullptr, nullptr,
                                               crypto_->libctx(), nullptr);
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("TlsOptions.private_key: ", internal::DrainOpenSslErrors()));
    }
    const int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TlsOptions.private_key does not match the certificate: ",
                       internal::DrainOpenSslErrors()));
    }
    *summary = Summary((*chain)[0].get());
  }

  // Trust anchors.
  std::string ca_pem = c.ca_pem;
  if (!c.ca_file.empty()) {
    absl::StatusOr<std::string> file = ReadFile(c.ca_file, "TlsOptions.ca_file");
    if (!file.ok()) return file.status();
    ca_pem += "\n" + *file;
  }
  const bool verifies = role_ == Role::kClient ? o.verify_peer : o.client_auth != ClientAuth::kNone;
  if (verifies && ca_pem.empty()) {
    return absl::InvalidArgumentError(
        role_ == Role::kClient ? "TlsOptions: verify_peer needs a CA bundle (ca_pem or ca_file)"
                               : "TlsOptions: client_auth needs a CA bundle (ca_pem or ca_file)");
  }
  if (!ca_pem.empty()) {
    absl::StatusOr<std::vector<X509Ptr>> cas = ReadCertificates(ca_pem, "TlsOptions.ca");
    if (!cas.ok()) return cas.status();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509Ptr& ca : *cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("TlsOptions.ca: ", internal::DrainOpenSslErrors()));
      }
    }
  }

  if (role_ == Role::kClient) {
    SSL_CTX_set_verify(ctx, o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!alpn_wire_.empty() &&
        SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                                static_cast<unsigned int>(alpn_wire_.size())) != 0) {
      return absl::InternalError("SSL_CTX_set_alpn_protos failed");
    }
  } else {
    int mode = SSL_VERIFY_NONE;
    if (o.client_auth == ClientAuth::kOptional) mode = SSL_VERIFY_PEER;
    if (o.client_auth == ClientAuth::kRequired) {
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, nullptr);
    if (!alpn_wire_.empty()) {
      SSL_CTX_set_alpn_select_cb(ctx, &SelectAlpn, const_cast<TlsContext*>(this));
      SSL_CTX_set_client_hello_cb(ctx, &RequireAlpn, nullptr);
    }
  }
  return owned.release();
}

TlsContext::~TlsContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

SSL* TlsContext::NewSsl() const {
  std::lock_guard<std::mutex> lock(mu_);
  SSL* ssl = SSL_new(ctx_);  // takes its own reference to ctx_
  NETLAYER_ASSERT(ssl != nullptr, "SSL_new succeeds (out of memory otherwise)");
  return ssl;
}

absl::Status TlsContext::ReplaceCredentials(TlsCredentials credentials) {
  std::string summary;
  absl::StatusOr<SSL_CTX*> ctx = Build(credentials, &summary);
  SSL_CTX* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ctx.ok()) {
      ++reload_failures_;
    } else {
      ++reloads_;
      old = std::exchange(ctx_, *ctx);
      credentials_ = std::move(credentials);
      summary = std::exchange(summary_, summary);  // now the old one, for the log
    }
  }
  if (!ctx.ok()) {
    Log(LogLayer::kTls)
        .error("tls: new credentials refused, the current ones stay: {}", ctx.status().ToString());
    return ctx.status();
  }
  if (old != nullptr) SSL_CTX_free(old);  // connections made on it hold their own reference
  Log(LogLayer::kTls)
      .info("tls: credentials replaced for new connections: certificate {} (was {})",
            certificate_summary(), summary.empty() ? "none" : summary);
  return absl::OkStatus();
}

absl::Status TlsContext::Reload() { return ReplaceCredentials(credentials()); }

TlsCredentials TlsContext::credentials() const {
  std::lock_guard<std::mutex> lock(mu_);
  return credentials_;
}

std::string TlsContext::certificate_summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return summary_;
}

void TlsContext::CountHandshakeFailure(std::optional<TlsError> error) const {
  size_t slot = error ? static_cast<size_t>(*error) : kFailureSlots - 1;
  if (slot >= kFailureSlots) slot = kFailureSlots - 1;
  failures_[slot].fetch_add(1, std::memory_order_relaxed);
}

TlsStats TlsContext::stats() const {
  TlsStats out;
  out.handshakes = handshakes_.load(std::memory_order_relaxed);
  // Every TlsError but kNone and kTruncated (which ends an established connection).
  for (size_t i = 1; i + 1 < kFailureSlots; ++i) {
    const auto error = static_cast<TlsError>(i);
    if (error == TlsError::kTruncated) continue;
    out.handshake_failures[TlsErrorName(error)] = failures_[i].load(std::memory_order_relaxed);
  }
  out.handshake_failures["interrupted"] =
      failures_[kFailureSlots - 1].load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  out.reloads = reloads_;
  out.reload_failures = reload_failures_;
  return out;
}

}  // namespace netlayer::tls
