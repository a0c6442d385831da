// TestPki: throwaway certificate authorities and certificates made at run time with the OpenSSL
// API, for tests, scenarios and examples (no private key is ever checked in). Not for
// production: keys are unencrypted and validity is whatever the caller asks.
//
//   auto ca = *tls::TestPki::Create("test-ca", env.Now());
//   tls::TestCertificate server = *ca.Issue({.common_name = "server", .dns_names = {"server"}});
//   options.certificate_chain_pem = server.certificate_pem;
//   options.private_key_pem = server.private_key_pem;
//   options.ca_pem = ca.ca_certificate_pem();
//
// Keys are ECDSA P-256. With `random` set (e.g. the world's generator), keys, serial numbers
// and signatures are drawn from a generator seeded by one draw from it, so a scenario's
// certificates are the same bytes on every run of a seed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/generator.h"

namespace netlayer::tls {

struct TestCertificate {
  std::string certificate_pem;  // the leaf (what TlsOptions::certificate_chain_pem takes)
  std::string private_key_pem;  // PKCS#8, unencrypted
};

struct IssueOptions {
  std::string common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries ("127.0.0.1", "::1")
  // Validity; InfinitePast/InfiniteFuture: the CA's creation time -1 h / +30 days.
  absl::Time not_before = absl::InfinitePast();
  absl::Time not_after = absl::InfiniteFuture();
};

class TestPki {
 public:
  // A self-signed CA valid from `now` - 1 h to `now` + 365 days.
  static absl::StatusOr<TestPki> Create(std::string name, absl::Time now,
                                        Generator* random = nullptr);
  TestPki(TestPki&&) noexcept;
  TestPki& operator=(TestPki&&) noexcept;
  ~TestPki();

  const std::string& ca_certificate_pem() const;
  // A certificate signed by this CA, usable for TLS servers and clients.
  absl::StatusOr<TestCertificate> Issue(const IssueOptions& options);

 private:
  struct Impl;
  explicit TestPki(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netlayer::tls
