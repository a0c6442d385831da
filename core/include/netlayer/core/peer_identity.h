// PeerIdentity: who the peer of a connection proved to be, as a security layer (tls) verified
// it: its certificate's subject and subjectAltNames. Connection::peer_identity() returns it;
// rpc hands it to handlers (rpc::Request::peer_identity(), rpc::Session::peer_identity()).
#pragma once

#include <string>
#include <vector>

namespace netlayer {

struct PeerIdentity {
  std::string subject;                    // RFC 2253, e.g. "CN=client-1,O=netlayer"
  std::string common_name;                // the subject's CN ("" if none)
  std::string issuer;                     // RFC 2253
  std::vector<std::string> dns_names;     // subjectAltName DNS entries, in certificate order
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text
  // True if the certificate was verified against the CA bundle (always, unless the client set
  // verify_peer = false).
  bool verified = false;

  friend bool operator==(const PeerIdentity&, const PeerIdentity&) = default;
};

}  // namespace netlayer
