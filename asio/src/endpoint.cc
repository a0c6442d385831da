#include "endpoint.h"

#include <asio/error.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace netlayer::asio::internal {

absl::StatusOr<Endpoint> LiteralEndpoint(const Address& address) {
  if (address.kind() == Address::Kind::kUnix) {
    if (address.host().empty() ||
        address.host().size() >= ::asio::local::stream_protocol::endpoint().capacity()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path empty or too long: ", address.ToString()));
    }
    return Endpoint(::asio::local::stream_protocol::endpoint(address.host()));
  }
  std::error_code ec;
  const ::asio::ip::address ip = ::asio::ip::make_address(address.host(), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IP address: ", address.ToString(), ": ", ec.message()));
  }
  return Endpoint(::asio::ip::tcp::endpoint(ip, address.port()));
}

bool LoopbackEndpoints(const Address& address, std::vector<Endpoint>& out) {
  if (address.kind() != Address::Kind::kHostName) return false;
  const std::string name = absl::AsciiStrToLower(address.host());
  if (name != "localhost" && !absl::EndsWith(name, ".localhost")) return false;
  out.emplace_back(::asio::ip::tcp::endpoint(::asio::ip::address_v4::loopback(), address.port()));
  out.emplace_back(::asio::ip::tcp::endpoint(::asio::ip::address_v6::loopback(), address.port()));
  return true;
}

bool IsTcp(const Endpoint& endpoint) {
  const int family = endpoint.protocol().family();
  return family == AF_INET || family == AF_INET6;
}

Address ToAddress(const Endpoint& endpoint) {
  if (IsTcp(endpoint)) {
    ::asio::ip::tcp::endpoint tcp;
    tcp.resize(endpoint.size());
    std::memcpy(tcp.data(), endpoint.data(), endpoint.size());
    const std::string host = tcp.address().to_string();
    return tcp.address().is_v4() ? Address::IPv4(host, tcp.port())
                                 : Address::IPv6(host, tcp.port());
  }
  ::asio::local::stream_protocol::endpoint local;
  local.resize(endpoint.size());
  std::memcpy(local.data(), endpoint.data(), endpoint.size());
  return Address::Unix(local.path());
}

absl::Status ErrorStatus(std::string_view what, const std::error_code& ec) {
  std::string text = absl::StrCat(std::string(what), ": ", ec.message());
  if (ec == ::asio::error::timed_out) return absl::DeadlineExceededError(text);
  if (ec == ::asio::error::address_in_use) return absl::AlreadyExistsError(text);
  if (ec == ::asio::error::access_denied) return absl::PermissionDeniedError(text);
  if (ec == ::asio::error::invalid_argument || ec == ::asio::error::address_family_not_supported ||
      ec == ::asio::error::name_too_long) {
    return absl::InvalidArgumentError(text);
  }
  return absl::UnavailableError(text);
}

CloseReason ErrorCloseReason(std::string_view what, const std::error_code& ec) {
  const bool reset = ec == ::asio::error::connection_reset || ec == ::asio::error::broken_pipe ||
                     ec == ::asio::error::connection_aborted;
  return CloseReason(reset ? CloseReason::Kind::kReset : CloseReason::Kind::kError,
                     absl::StrCat(std::string(what), ": ", ec.message()));
}

}  // namespace netlayer::asio::internal
