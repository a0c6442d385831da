#include "netlayer/tls/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "crypto.h"
#include "errors.h"
#include "openssl_util.h"

namespace netlayer::tls {
namespace {

using internal::KeyPtr;
using internal::X509Ptr;

absl::Status Error(const char* what) {
  return absl::InternalError(absl::StrCat("TestPki: ", what, ": ", internal::DrainOpenSslErrors()));
}

std::string ToPem(X509* cert) {
  return internal::WriteToString([&](BIO* bio) { PEM_write_bio_X509(bio, cert); });
}

std::string ToPem(EVP_PKEY* key) {
  return internal::WriteToString([&](BIO* bio) {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Error("building an extension");
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : Error("adding an extension");
}

}  // namespace

struct TestPki::Impl {
  std::shared_ptr<internal::Crypto> crypto;
  KeyPtr ca_key;
  X509Ptr ca_cert;
  std::string ca_pem;
  absl::Time created;
  long next_serial = 1;

  absl::StatusOr<KeyPtr> NewKey() {
    KeyPtr key(EVP_PKEY_Q_keygen(crypto->libctx(), nullptr, "EC", "P-256"));
    if (!key) return Error("generating a P-256 key");
    return key;
  }

  // A certificate for `key` named `cn`, signed by `signer` (issuer `issuer`, or itself).
  absl::StatusOr<X509Ptr> NewCert(EVP_PKEY* key, const std::string& cn, absl::Time not_before,
                                  absl::Time not_after, X509* issuer, EVP_PKEY* signer) {
    X509Ptr cert(X509_new_ex(crypto->libctx(), nullptr));
    if (!cert) return Error("X509_new_ex");
    X509_set_version(cert.get(), X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), next_serial++);
    ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(not_before));
    ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after));
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("netlayer test"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(),
                         issuer != nullptr ? X509_get_subject_name(issuer) : name);
    if (X509_set_pubkey(cert.get(), key) != 1) return Error("X509_set_pubkey");
    X509* issuer_or_self = issuer != nullptr ? issuer : cert.get();
    if (issuer == nullptr) {
      if (absl::Status s = AddExtension(cert.get(), issuer_or_self, NID_basic_constraints,
                                        "critical,CA:TRUE");
          !s.ok()) {
        return s;
      }
      if (absl::Status s = AddExtension(cert.get(), issuer_or_self, NID_key_usage,
                                        "critical,keyCertSign,cRLSign");
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s =
            AddExtension(cert.get(), issuer_or_self, NID_subject_key_identifier, "hash");
        !s.ok()) {
      return s;
    }
    if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) return Error("X509_sign");
    return cert;
  }
};

TestPki::TestPki(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestPki::TestPki(TestPki&&) noexcept = default;
TestPki& TestPki::operator=(TestPki&&) noexcept = default;
TestPki::~TestPki() = default;

absl::StatusOr<TestPki> TestPki::Create(std::string name, absl::Time now, Generator* random) {
  auto impl = std::make_unique<Impl>();
  absl::StatusOr<std::shared_ptr<internal::Crypto>> crypto = internal::Crypto::For(random);
  if (!crypto.ok()) return crypto.status();
  impl->crypto = *std::move(crypto);
  impl->created = now;
  absl::StatusOr<KeyPtr> key = impl->NewKey();
  if (!key.ok()) return key.status();
  impl->ca_key = *std::move(key);
  absl::StatusOr<X509Ptr> cert = impl->NewCert(impl->ca_key.get(), name, now - absl::Hours(1),
                                               now + absl::Hours(24 * 365), nullptr,
                                               impl->ca_key.get());
  if (!cert.ok()) return cert.status();
  impl->ca_cert = *std::move(cert);
  impl->ca_pem = ToPem(impl->ca_cert.get());
  return TestPki(std::move(impl));
}

const std::string& TestPki::ca_certificate_pem() const { return impl_->ca_pem; }

absl::StatusOr<TestCertificate> TestPki::Issue(const IssueOptions& options) {
  absl::StatusOr<KeyPtr> key = impl_->NewKey();
  if (!key.ok()) return key.status();
  const absl::Time not_before = options.not_before == absl::InfinitePast()
                                    ? impl_->created - absl::Hours(1)
                                    : options.not_before;
  const absl::Time not_after = options.not_after == absl::InfiniteFuture()
                                   ? impl_->created + absl::Hours(24 * 30)
                                   : options.not_after;
  absl::StatusOr<X509Ptr> cert = impl_->NewCert(key->get(), options.common_name, not_before,
                                                not_after, impl_->ca_cert.get(),
                                                impl_->ca_key.get());
  if (!cert.ok()) return cert.status();
  // The leaf's extensions (NewCert signed it already: re-sign after adding them).
  std::string san;
  for (const std::string& dns : options.dns_names) absl::StrAppend(&san, san.empty() ? "" : ",", "DNS:", dns);
  for (const std::string& ip : options.ip_addresses) absl::StrAppend(&san, san.empty() ? "" : ",", "IP:", ip);
  X509* c = cert->get();
  X509* ca = impl_->ca_cert.get();
  if (!san.empty()) {
    if (absl::Status s = AddExtension(c, ca, NID_subject_alt_name, san); !s.ok()) return s;
  }
  for (auto [nid, value] : {std::pair<int, const char*>{NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, "critical,digitalSignature"},
                            {NID_ext_key_usage, "serverAuth,clientAuth"},
                            {NID_authority_key_identifier, "keyid:always"}}) {
    if (absl::Status s = AddExtension(c, ca, nid, value); !s.ok()) return s;
  }
  if (X509_sign(c, impl_->ca_key.get(), EVP_sha256()) == 0) return Error("X509_sign");
  return TestCertificate{ToPem(c), ToPem(key->get())};
}

}  // namespace netlayer::tls
