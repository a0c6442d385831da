#include "errors.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"

namespace netlayer::tls {

const char* TlsErrorName(TlsError error) {
  switch (error) {
    case TlsError::kNone: return "none";
    case TlsError::kUnknownCa: return "unknown-ca";
    case TlsError::kBadName: return "bad-name";
    case TlsError::kExpired: return "expired";
    case TlsError::kNoPeerCertificate: return "no-peer-certificate";
    case TlsError::kBadCertificate: return "bad-certificate";
    case TlsError::kProtocolVersion: return "protocol-version";
    case TlsError::kAlpnMismatch: return "alpn-mismatch";
    case TlsError::kHandshakeTimeout: return "handshake-timeout";
    case TlsError::kTruncated: return "truncated";
    case TlsError::kProtocolError: return "protocol-error";
  }
  return "?";
}

bool IsAuthenticationFailure(TlsError error) {
  switch (error) {
    case TlsError::kUnknownCa:
    case TlsError::kBadName:
    case TlsError::kExpired:
    case TlsError::kNoPeerCertificate:
    case TlsError::kBadCertificate:
    case TlsError::kProtocolVersion:
    case TlsError::kAlpnMismatch:
      return true;
    default:
      return false;
  }
}

namespace internal {
namespace {

TlsError FromVerifyResult(long v) {
  switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsError::kExpired;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return TlsError::kBadName;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return TlsError::kUnknownCa;
    default:
      return TlsError::kBadCertificate;
  }
}

// A TLS alert the peer sent, by its description code (RFC 8446 §6).
TlsError FromAlert(int alert) {
  switch (alert) {
    case SSL_AD_UNKNOWN_CA: return TlsError::kUnknownCa;
    case SSL_AD_CERTIFICATE_EXPIRED: return TlsError::kExpired;
    case SSL_AD_CERTIFICATE_REQUIRED: return TlsError::kNoPeerCertificate;
    case SSL_AD_PROTOCOL_VERSION: return TlsError::kProtocolVersion;
    case SSL_AD_NO_APPLICATION_PROTOCOL: return TlsError::kAlpnMismatch;
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
      return TlsError::kBadCertificate;
    default: return TlsError::kProtocolError;
  }
}

// OpenSSL 3.0 names some TLS 1.3 alerts "unknown".
std::string AlertText(int alert) {
  switch (alert) {
    case SSL_AD_CERTIFICATE_REQUIRED: return "certificate required";
    case SSL_AD_MISSING_EXTENSION: return "missing extension";
    default: return SSL_alert_desc_string_long(alert);
  }
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Failure ClassifyFailure(SSL* ssl, bool handshaking) {
  const char* first_data = nullptr;
  int first_flags = 0;
  const unsigned long first = ERR_peek_error_data(&first_data, &first_flags);
  // Our own callbacks' words (RequireAlpn), copied before the queue is drained.
  const std::string first_text =
      (first_flags & ERR_TXT_STRING) != 0 && first_data != nullptr ? first_data : "";
  const int reason = ERR_GET_REASON(first);
  const long verify = SSL_get_verify_result(ssl);
  const std::string errors = DrainOpenSslErrors();
  if (handshaking && verify != X509_V_OK) {
    const TlsError error = FromVerifyResult(verify);
    return {error, absl::StrCat("the peer's certificate failed verification: ",
                                X509_verify_cert_error_string(verify))};
  }
  if (first == 0) {
    return {TlsError::kProtocolError, "TLS engine failed without a reason (unexpected EOF?)"};
  }
  if (ERR_GET_LIB(first) == ERR_LIB_SSL) {
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
      const int alert = reason - SSL_AD_REASON_OFFSET;
      return {FromAlert(alert), absl::StrCat("the peer sent the alert '", AlertText(alert), "'")};
    }
    switch (reason) {
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return {TlsError::kNoPeerCertificate, "the client sent no certificate"};
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_UNSUPPORTED_SSL_VERSION:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_VERSION_TOO_HIGH:
        return {TlsError::kProtocolVersion, absl::StrCat("no TLS version in common (", errors, ")")};
      case SSL_R_NO_APPLICATION_PROTOCOL:
        return {TlsError::kAlpnMismatch,
                first_text.empty() ? "no application protocol (ALPN) in common" : first_text};
      default:
        break;
    }
  }
  return {TlsError::kProtocolError, errors};
}

}  // namespace internal
}  // namespace netlayer::tls
