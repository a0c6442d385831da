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

int VersionOf(TlsVersion v) { return v == TlsVersion::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION; }

// Server ALPN: the first of our protocols the client offers, or a fatal no_application_protocol
// alert when the client offers some but none of ours. (A client offering none is checked after
// the handshake.)
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

TlsContext::~TlsContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
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

  ERR_clear_error();
  ctx_ = SSL_CTX_new_ex(crypto_->libctx(), nullptr,
                        role_ == Role::kClient ? TLS_client_method() : TLS_server_method());
  if (ctx_ == nullptr) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_new_ex failed: ", internal::DrainOpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx_, VersionOf(o.min_version));
  SSL_CTX_set_max_proto_version(ctx_, VersionOf(o.max_version));
  // No session tickets, no session cache, no renegotiation: every handshake is a full one, and
  // nothing on the wire depends on OpenSSL's clock (deterministic in the simulator).
  SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx_, 0);
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);

  // Our certificate and key.
  absl::StatusOr<std::string> chain_pem =
      Pem(o.certificate_chain_pem, o.certificate_chain_file, "certificate_chain");
  if (!chain_pem.ok()) return chain_pem.status();
  absl::StatusOr<std::string> key_pem = Pem(o.private_key_pem, o.private_key_file, "private_key");
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
    if (SSL_CTX_use_certificate(ctx_, (*chain)[0].get()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TlsOptions.certificate_chain: ", internal::DrainOpenSslErrors()));
    }
    for (size_t i = 1; i < chain->size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx_, (*chain)[i].get()) != 1) {
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
    const int used = SSL_CTX_use_PrivateKey(ctx_, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx_) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TlsOptions.private_key does not match the certificate: ",
                       internal::DrainOpenSslErrors()));
    }
  }

  // Trust anchors.
  std::string ca_pem = o.ca_pem;
  if (!o.ca_file.empty()) {
    absl::StatusOr<std::string> file = ReadFile(o.ca_file, "TlsOptions.ca_file");
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
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    for (X509Ptr& ca : *cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("TlsOptions.ca: ", internal::DrainOpenSslErrors()));
      }
    }
  }

  if (role_ == Role::kClient) {
    SSL_CTX_set_verify(ctx_, o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!alpn_wire_.empty() &&
        SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                                static_cast<unsigned int>(alpn_wire_.size())) != 0) {
      return absl::InternalError("SSL_CTX_set_alpn_protos failed");
    }
  } else {
    int mode = SSL_VERIFY_NONE;
    if (o.client_auth == ClientAuth::kOptional) mode = SSL_VERIFY_PEER;
    if (o.client_auth == ClientAuth::kRequired) {
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx_, mode, nullptr);
    if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx_, &SelectAlpn, this);
  }
  return absl::OkStatus();
}

}  // namespace netlayer::tls
