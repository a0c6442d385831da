// The rpc handshake (docs/PROTOCOL.md §3): the server speaks first with its protocol name and the
// range of versions it supports; the client answers with the version it chose, or closes with a
// clear error. Each hello is one smac message. Pure codec + decision functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "netlayer/rpc/envelope.h"

namespace netlayer::rpc {

inline constexpr std::string_view kHandshakeMagic = "NLRP";
inline constexpr size_t kMaxProtocolNameLength = 255;
// The largest hello of either kind (a server hello with a 255-byte protocol name): the default
// limit on the peer's first frame (ServerOptions/ClientOptions::max_hello_size).
inline constexpr size_t kMaxHelloSize = 10 + kMaxProtocolNameLength;

struct ServerHello {
  std::string protocol;  // 1..255 bytes, e.g. "netlayer-rpc"
  uint16_t min_version = 1;
  uint16_t max_version = 1;
  friend bool operator==(const ServerHello&, const ServerHello&) = default;
};

struct ClientHello {
  std::string protocol;  // echoes the server's name
  uint16_t version = 1;  // the version chosen
  friend bool operator==(const ClientHello&, const ClientHello&) = default;
};

// What one side's settings must satisfy to say hello: a codec, a protocol name of 1..255 bytes,
// min_version <= max_version. InvalidArgument naming the problem (for option validation).
absl::Status CheckHelloSettings(const EnvelopeCodec* codec, std::string_view protocol,
                                uint16_t min_version, uint16_t max_version);

// REQUIRES: 1 <= protocol.size() <= 255 and min_version <= max_version (asserted).
std::string EncodeServerHello(const ServerHello& hello);
std::string EncodeClientHello(const ClientHello& hello);

// Bounds-checked decoders. InvalidArgument naming what is wrong ("rpc handshake: ... "), e.g.
// garbage instead of a hello, a truncated hello, trailing bytes, an empty name, min > max.
absl::StatusOr<ServerHello> DecodeServerHello(std::string_view message);
absl::StatusOr<ClientHello> DecodeClientHello(std::string_view message);

// The client's choice: the highest version both support. FailedPrecondition with a clear
// message on a protocol name mismatch or when the ranges do not overlap.
absl::StatusOr<uint16_t> ChooseVersion(const ServerHello& server, std::string_view protocol,
                                       uint16_t client_min, uint16_t client_max);

// The server's check of the client's answer; FailedPrecondition if it is not acceptable.
absl::Status CheckClientHello(const ClientHello& client, const ServerHello& server);

}  // namespace netlayer::rpc
