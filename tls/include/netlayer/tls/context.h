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

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/generator.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
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
  // encrypted plus ciphertext queued on the wrapped connection. The default (68 MiB) holds one
  // largest write (below) encrypted, and its own encryption fits the wrapped connection's
  // default bound (72 MiB). ValidateTlsLimits checks both.
  ConnectionLimits limits{.max_output_bytes = size_t{68} << 20,
                          .max_pending_input_bytes = size_t{16} << 20};
  // Limits that agree (checked by ValidateTlsLimits, so by TlsContext::Create):
  // the largest single write the application makes: for rpc and smac one frame,
  // MessageOptions::max_message_size + 4 (the default: 64 MiB + 4). limits.max_output_bytes must
  // hold it encrypted (CiphertextBound), or such a write could never be sent.
  size_t largest_write_bytes = (size_t{64} << 20) + 4;
  // The output bound of the connections this adapter wraps (the backend factory's
  // ConnectionLimits::max_output_bytes; default 72 MiB). It must hold
  // CiphertextBound(limits.max_output_bytes), or the adapter's admitted output could be refused
  // below it once encrypted.
  size_t transport_max_output_bytes = ConnectionLimits{}.max_output_bytes;

  // Simulation: draw OpenSSL's randomness for this context from a generator seeded by one draw
  // from `random` (which must outlive Create only). nullptr: OpenSSL's own sources.
  Generator* random = nullptr;
};

// The most ciphertext `plaintext` bytes can become: a record per 16 KiB of plaintext, each with
// at most kMaxRecordOverhead bytes of header, content type, explicit nonce (TLS 1.2) and tag.
inline constexpr size_t kMaxRecordPlaintext = 16384;
inline constexpr size_t kMaxRecordOverhead = 32;
constexpr size_t CiphertextBound(size_t plaintext) {
  return plaintext + (plaintext / kMaxRecordPlaintext + 1) * kMaxRecordOverhead;
}

// InvalidArgument naming the combination that cannot work: limits.max_output_bytes below
// CiphertextBound(largest_write_bytes) (a largest frame could never be written), or
// transport_max_output_bytes below CiphertextBound(limits.max_output_bytes) (encrypted output the
// adapter admitted could be refused by the wrapped connection). OK for the defaults.
absl::Status ValidateTlsLimits(const TlsOptions& options);

namespace internal {
class Crypto;
}
enum class TlsError;  // connection.h

// What a context's credentials are: our certificate chain and key, and the CA bundle, each in
// memory or from a file (as TlsOptions; the `_pem` fields win when both are set).
struct TlsCredentials {
  std::string certificate_chain_pem;
  std::string certificate_chain_file;
  std::string private_key_pem;
  std::string private_key_file;
  std::string ca_pem;
  std::string ca_file;
};

// Counters of a context (TlsContext::stats()), for metrics: the handshakes of its connections
// that completed, those that failed by why (TlsErrorName: "unknown-ca", "handshake-timeout",
// ...; "interrupted": the stream ended or broke mid-handshake), and the credential reloads.
struct TlsStats {
  uint64_t handshakes = 0;
  std::map<std::string, uint64_t> handshake_failures;  // every name present, 0 included
  uint64_t reloads = 0;          // ReplaceCredentials / Reload that took effect
  uint64_t reload_failures = 0;  // refused (the old credentials stayed)
};

class TlsContext {
 public:
  // InvalidArgument for inconsistent options (ValidateTlsLimits included) or unreadable
  // certificates/keys (the message names the field and OpenSSL's reason).
  static absl::StatusOr<std::shared_ptr<TlsContext>> Create(Role role, TlsOptions options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Role role() const { return role_; }
  // The options the context was created with (credentials() has the current credentials).
  const TlsOptions& options() const { return options_; }
  bool deterministic() const;

  // ---- Reload (docs/TLS.md, "Reloading credentials") ----
  // Replaces the certificate chain, key and CA bundle for the connections made from now on;
  // connections already made (handshaking or established) keep what they started with. The new
  // credentials are loaded and checked completely first, as Create checks them (the chain
  // parses, the key parses and matches the certificate, the CA bundle parses; a server needs a
  // certificate, a verifying side a CA bundle); if anything fails the old credentials stay, the
  // failure is returned (InvalidArgument naming the field and OpenSSL's reason) and logged
  // (netlayer.tls, error). Thread-safe: any thread, concurrently with new connections.
  absl::Status ReplaceCredentials(TlsCredentials credentials);
  // ReplaceCredentials(credentials()): re-reads the files named (a SIGHUP's certificate
  // rotation: write the new files, then reload).
  absl::Status Reload();
  TlsCredentials credentials() const;
  // The subject and serial (hex) of our current certificate ("" without one), for logs.
  std::string certificate_summary() const;
  TlsStats stats() const;

  // For the adapter: a new SSL object on the current credentials (never null; asserts).
  SSL* NewSsl() const;
  // ALPN protocols in wire format (length-prefixed).
  const std::string& alpn_wire() const { return alpn_wire_; }
  // For the adapter's counters (TlsStats): a handshake completed, or failed with `error`
  // (nullopt: interrupted).
  void CountHandshake() const { handshakes_.fetch_add(1, std::memory_order_relaxed); }
  void CountHandshakeFailure(std::optional<TlsError> error) const;

 private:
  TlsContext(Role role, TlsOptions options) : role_(role), options_(std::move(options)) {}
  absl::Status Init();
  // A new SSL_CTX with these credentials (and the options' other settings); its summary.
  absl::StatusOr<SSL_CTX*> Build(const TlsCredentials& credentials, std::string* summary) const;

  const Role role_;
  const TlsOptions options_;
  std::shared_ptr<internal::Crypto> crypto_;
  std::string alpn_wire_;
  mutable std::mutex mu_;
  SSL_CTX* ctx_ = nullptr;        // GUARDED_BY(mu_); SSL objects hold their own reference
  TlsCredentials credentials_;    // GUARDED_BY(mu_)
  std::string summary_;           // GUARDED_BY(mu_)
  uint64_t reloads_ = 0;          // GUARDED_BY(mu_)
  uint64_t reload_failures_ = 0;  // GUARDED_BY(mu_)
  static constexpr size_t kFailureSlots = 12;  // every TlsError, and "interrupted" last
  mutable std::atomic<uint64_t> handshakes_{0};
  mutable std::array<std::atomic<uint64_t>, kFailureSlots> failures_{};
};

}  // namespace netlayer::tls
