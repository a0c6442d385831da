// Crypto: the OpenSSL library context a TlsContext (or TestPki) works in.
//
// Production: OpenSSL's default library context, its own randomness (the OS) and nothing else.
// Deterministic (a Generator was given): a dedicated OSSL_LIB_CTX with the default provider plus
// a small built-in provider, "netlayer-deterministic", whose one algorithm is an EVP_RAND that
// fills every request from a Xoshiro256 seeded by one draw from the given generator. It is made
// the library context's DRBG type and seed source (RAND_set_DRBG_type /
// RAND_set_seed_source_type), so every random byte OpenSSL draws for objects of this context
// (hello randoms, key shares, ECDSA nonces, session ids, key generation) is a function of that
// seed. (OpenSSL 3.0's own "TEST-RAND" only replays entropy handed to it through parameters and
// fails when that runs out, so it is not used.)
//
// Internal to netlayer::tls.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "netlayer/core/generator.h"

namespace netlayer::tls::internal {

class Crypto {
 public:
  // OpenSSL's default context and randomness.
  static std::shared_ptr<Crypto> Default();
  // A dedicated context whose randomness is drawn from Xoshiro256(seed).
  static absl::StatusOr<std::shared_ptr<Crypto>> Deterministic(uint64_t seed);
  // Deterministic(random->Next()) if `random` is set, else Default().
  static absl::StatusOr<std::shared_ptr<Crypto>> For(Generator* random);

  ~Crypto();
  Crypto(const Crypto&) = delete;
  Crypto& operator=(const Crypto&) = delete;

  // nullptr for the default context (OpenSSL's convention).
  OSSL_LIB_CTX* libctx() const { return libctx_; }
  bool deterministic() const { return libctx_ != nullptr; }

  struct Source;  // the generator behind a deterministic context (crypto.cc)

 private:
  Crypto() = default;
  OSSL_LIB_CTX* libctx_ = nullptr;
  OSSL_PROVIDER* default_provider_ = nullptr;
  OSSL_PROVIDER* rand_provider_ = nullptr;
  std::unique_ptr<Source> source_;
};

}  // namespace netlayer::tls::internal
