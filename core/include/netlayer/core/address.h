// Address: where a connection goes or a listener listens.
//
// Text forms (Parse and ToString round-trip):
//   "127.0.0.1:8080"      IPv4 host and port
//   "[::1]:8080"          IPv6 host and port (brackets required)
//   "unix:/run/zeo.sock"  unix-domain socket path
//   "server1:8100"        a host name and port: a simulator host, or a DNS name on posix
// Port 0 asks a listener for an ephemeral port; the listener reports the real one.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace netlayer {

class Address {
 public:
  enum class Kind { kIPv4, kIPv6, kUnix, kHostName };

  // Parses one of the text forms above; InvalidArgument says what is wrong.
  static absl::StatusOr<Address> Parse(std::string_view text);
  static Address IPv4(std::string host, uint16_t port);
  static Address IPv6(std::string host, uint16_t port);
  static Address Unix(std::string path);
  static Address HostName(std::string host, uint16_t port);

  Kind kind() const { return kind_; }
  // The host (IPv4/IPv6 literal or name) or, for kUnix, the path.
  const std::string& host() const { return host_; }
  // 0 for kUnix.
  uint16_t port() const { return port_; }
  std::string ToString() const;

  friend bool operator==(const Address&, const Address&) = default;
  friend auto operator<=>(const Address&, const Address&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Address& a) { return os << a.ToString(); }

 private:
  Address(Kind kind, std::string host, uint16_t port)
      : kind_(kind), host_(std::move(host)), port_(port) {}
  Kind kind_;
  std::string host_;
  uint16_t port_;
};

}  // namespace netlayer
