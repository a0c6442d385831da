// TlsContext: one side's TLS configuration (certificate, key, trust anchors, versions, ALPN,
// verification), built once and shared by every connection of that side. See docs/TLS.md.
//
//   tls::TlsOptions options;
//   options.certificate_chain_file = "server.pem";
//   options.private_key_file = "server.key";
//   options.ca_file = "clients-ca.pem";
//   options.client_auth = tls::ClientAuth::kRequired;
//   auto context = *tls::TlsContext::Create(tls::Role::kServer, options);
//
// Deterministic in the simulator: set `random` (e.g. &world.generator()) and OpenSSL's
// randomness for this context is drawn from a generator seeded by one draw from it, in a library
// context of its own; the time certificates are checked against is always the connection's
// Env::Now() (virtual time in the simulator). Production leaves `random` unset: OpenSSL's own
// sources.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/generator.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;

namespace netlayer::tls {

enum class Role { kClient, kServer };
enum class TlsVersion { kTls12, kTls13 };
// Server: whether clients must present a certificate (verified against the CA bundle).
enum class ClientAuth {
  kNone,      // no client certificate is asked for
  kOptional,  // asked for; verified if sent; a client without one is accepted
  kRequired,  // mutual authentication: a client without a valid one is rejected
};

struct TlsOptions {
  // Our certificate chain (PEM, leaf first) and private key (PEM, unencrypted): in memory, or
  // from files (the `_pem` fields win when both are set). Required for a server; a client
  // needs them only for mutual authentication.
  std::string certificate_chain_pem;
  std::string certificate_chain_file;
  std::string private_key_pem;
  std::string private_key_file;
  // The CA bundle the peer's certificate must chain to (PEM; both may be set).
  std::string ca_pem;
  std::string ca_file;

  // Client: verify the server's certificate and its name. On by default; turning it off makes
  // the connection encrypted but unauthenticated (tests only).
  bool verify_peer = true;
  // Client: the name the server's certificate must carry (a DNS name or an IP literal), also
  // sent as SNI. Empty: the host of the address connected to (TlsClientFactory).
  std::string server_name;
  // Server: client certificates.
  ClientAuth client_auth = ClientAuth::kNone;

  // ALPN. Client: the protocols offered; server: the ones accepted, in preference order. When
  // set on both sides they must share one, or the handshake fails (kAlpnMismatch); empty: no ALPN.
  std::vector<std::string> alpn = {"netlayer-rpc"};

  TlsVersion min_version = TlsVersion::kTls13;
  TlsVersion max_version = TlsVersion::kTls13;

  // A handshake not complete this long after the connection was wrapped fails (kTimeout), on a
  // fixed deadline that trickling bytes cannot extend.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Server: handshakes in progress per listener; more connections are closed at once.
  size_t max_pending_handshakes = 1024;
  // Server: handshaken connections waiting for Accept() (iterator-form listeners).
  size_t max_accept_queue = 1024;

  // The application-facing side of each connection. max_output_bytes counts plaintext not yet
  // encrypted plus ciphertext queued on the wrapped connection; keep it under the wrapped
  // connection's own bound (64 MiB by default) so encrypted output always fits there.
  ConnectionLimits limits{.max_output_bytes = size_t{32} << 20,
                          .max_pending_input_bytes = size_t{16} << 20};

  // Simulation: draw OpenSSL's randomness for this context from a generator seeded by one draw
  // from `random` (which must outlive Create only). nullptr: OpenSSL's own sources.
  Generator* random = nullptr;
};

namespace internal {
class Crypto;
}

class TlsContext {
 public:
  // InvalidArgument for inconsistent options or unreadable certificates/keys (the message names
  // the field and OpenSSL's reason).
  static absl::StatusOr<std::shared_ptr<TlsContext>> Create(Role role, TlsOptions options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Role role() const { return role_; }
  const TlsOptions& options() const { return options_; }
  bool deterministic() const;

  // For the adapter.
  SSL_CTX* ssl_ctx() const { return ctx_; }
  // ALPN protocols in wire format (length-prefixed).
  const std::string& alpn_wire() const { return alpn_wire_; }

 private:
  TlsContext(Role role, TlsOptions options) : role_(role), options_(std::move(options)) {}
  absl::Status Init();

  const Role role_;
  const TlsOptions options_;
  std::shared_ptr<internal::Crypto> crypto_;
  SSL_CTX* ctx_ = nullptr;
  std::string alpn_wire_;
};

}  // namespace netlayer::tls
