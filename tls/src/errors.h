// How an OpenSSL failure becomes a TlsError and a readable detail. Internal to netlayer::tls.
#pragma once

#include <string>

#include "netlayer/tls/connection.h"

typedef struct ssl_st SSL;

namespace netlayer::tls::internal {

// Takes every error off this thread's OpenSSL error queue, as one line ("" if none).
std::string DrainOpenSslErrors();

struct Failure {
  TlsError error;
  std::string detail;
};

// Classifies the failure of an SSL_* call that returned SSL_ERROR_SSL or SSL_ERROR_SYSCALL on
// `ssl` (the verify result and this thread's error queue, which it drains). `handshaking`: the
// handshake had not completed.
Failure ClassifyFailure(SSL* ssl, bool handshaking);

}  // namespace netlayer::tls::internal
