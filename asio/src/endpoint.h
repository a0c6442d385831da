// Internal: Address <-> Asio endpoints, and Asio errors as statuses and close reasons.
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netlayer/core/address.h"
#include "netlayer/core/close_reason.h"

namespace netlayer::asio::internal {

// Every stream socket of this backend is a generic stream socket: TCP over IPv4 or IPv6, or a
// unix-domain stream, one type for all.
using Protocol = ::asio::generic::stream_protocol;
using Endpoint = Protocol::endpoint;
using Socket = Protocol::socket;

// The endpoint of an IPv4 or IPv6 literal or a unix path; InvalidArgument for a literal that does
// not parse. REQUIRES: address.kind() != kHostName (those go through the resolver).
absl::StatusOr<Endpoint> LiteralEndpoint(const Address& address);
// "localhost" and names under ".localhost" (RFC 6761): 127.0.0.1 then ::1, with no resolver.
bool LoopbackEndpoints(const Address& address, std::vector<Endpoint>& out);

// The Address of an endpoint (IPv4, IPv6 or unix; an unnamed unix socket is "unix:").
Address ToAddress(const Endpoint& endpoint);
bool IsTcp(const Endpoint& endpoint);

// Unavailable for connection errors, DeadlineExceeded for timeouts, AlreadyExists for an address
// in use, InvalidArgument / PermissionDenied where they fit.
absl::Status ErrorStatus(std::string_view what, const std::error_code& ec);
// The CloseReason for an error seen on an open connection (kReset for resets and broken pipes).
CloseReason ErrorCloseReason(std::string_view what, const std::error_code& ec);

}  // namespace netlayer::asio::internal
