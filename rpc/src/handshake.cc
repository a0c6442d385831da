#include "netlayer/rpc/handshake.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "wire.h"

namespace netlayer::rpc {
namespace {
constexpr uint8_t kServerHelloType = 0x01;
constexpr uint8_t kClientHelloType = 0x02;

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("rpc handshake: ", internal::AV(what)));
}

// Checks magic and type; on success `r` is positioned after them.
absl::Status ReadPreamble(internal::Reader& r, uint8_t type, std::string_view what) {
  std::string_view magic;
  if (!r.Bytes(kHandshakeMagic.size(), &magic) || magic != kHandshakeMagic) {
    return Bad(absl::StrCat("expected a ", internal::AV(what), " starting with \"NLRP\", got \"",
                            absl::CHexEscape(absl::string_view(
                                r.whole().data(), std::min<size_t>(r.whole().size(), 16))),
                            r.whole().size() > 16 ? "..." : "", "\" (", r.whole().size(),
                            " bytes)"));
  }
  uint8_t t = 0;
  if (!r.U8(&t)) return Bad(absl::StrCat(internal::AV(what), " truncated after the magic"));
  if (t != type) {
    return Bad(absl::StrCat("expected a ", internal::AV(what), " (type ", type, "), got type ", t));
  }
  return absl::OkStatus();
}

absl::Status ReadName(internal::Reader& r, std::string* name, std::string_view what) {
  uint8_t len = 0;
  std::string_view bytes;
  if (!r.U8(&len) || !r.Bytes(len, &bytes)) {
    return Bad(absl::StrCat(internal::AV(what), " truncated in the protocol name"));
  }
  if (len == 0) return Bad(absl::StrCat(internal::AV(what), " has an empty protocol name"));
  name->assign(bytes);
  return absl::OkStatus();
}
}  // namespace

absl::Status CheckHelloSettings(const EnvelopeCodec* codec, std::string_view protocol,
                                uint16_t min_version, uint16_t max_version) {
  if (codec == nullptr) return absl::InvalidArgumentError("no envelope codec (codec is null)");
  if (min_version > max_version) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_version ", min_version, " > max_version ", max_version));
  }
  if (protocol.empty() || protocol.size() > kMaxProtocolNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the protocol name must be 1..", kMaxProtocolNameLength, " bytes, got ", protocol.size()));
  }
  return absl::OkStatus();
}

std::string EncodeServerHello(const ServerHello& hello) {
  NETLAYER_ASSERT(!hello.protocol.empty() && hello.protocol.size() <= kMaxProtocolNameLength,
                  "protocol name must be 1..255 bytes");
  NETLAYER_ASSERT(hello.min_version <= hello.max_version, "min_version <= max_version");
  std::string out(kHandshakeMagic);
  internal::PutU8(&out, kServerHelloType);
  internal::PutU16(&out, hello.min_version);
  internal::PutU16(&out, hello.max_version);
  internal::PutU8(&out, static_cast<uint8_t>(hello.protocol.size()));
  out += hello.protocol;
  return out;
}

std::string EncodeClientHello(const ClientHello& hello) {
  NETLAYER_ASSERT(!hello.protocol.empty() && hello.protocol.size() <= kMaxProtocolNameLength,
                  "protocol name must be 1..255 bytes");
  std::string out(kHandshakeMagic);
  internal::PutU8(&out, kClientHelloType);
  internal::PutU16(&out, hello.version);
  internal::PutU8(&out, static_cast<uint8_t>(hello.protocol.size()));
  out += hello.protocol;
  return out;
}

absl::StatusOr<ServerHello> DecodeServerHello(std::string_view message) {
  internal::Reader r(message);
  if (absl::Status s = ReadPreamble(r, kServerHelloType, "server hello"); !s.ok()) return s;
  ServerHello hello;
  if (!r.U16(&hello.min_version) || !r.U16(&hello.max_version)) {
    return Bad("server hello truncated in the version range");
  }
  if (hello.min_version > hello.max_version) {
    return Bad(absl::StrCat("server hello has min_version ", hello.min_version, " > max_version ",
                            hello.max_version));
  }
  if (absl::Status s = ReadName(r, &hello.protocol, "server hello"); !s.ok()) return s;
  if (!r.empty()) return Bad(absl::StrCat("server hello has ", r.left(), " trailing bytes"));
  return hello;
}

absl::StatusOr<ClientHello> DecodeClientHello(std::string_view message) {
  internal::Reader r(message);
  if (absl::Status s = ReadPreamble(r, kClientHelloType, "client hello"); !s.ok()) return s;
  ClientHello hello;
  if (!r.U16(&hello.version)) return Bad("client hello truncated in the version");
  if (absl::Status s = ReadName(r, &hello.protocol, "client hello"); !s.ok()) return s;
  if (!r.empty()) return Bad(absl::StrCat("client hello has ", r.left(), " trailing bytes"));
  return hello;
}

absl::StatusOr<uint16_t> ChooseVersion(const ServerHello& server, std::string_view protocol,
                                       uint16_t client_min, uint16_t client_max) {
  if (server.protocol != protocol) {
    return absl::FailedPreconditionError(
        absl::StrCat("rpc handshake: the server speaks protocol \"",
                     absl::CHexEscape(server.protocol), "\", this client speaks \"",
                     absl::CHexEscape(absl::string_view(protocol.data(), protocol.size())), "\""));
  }
  const uint16_t lo = std::max(server.min_version, client_min);
  const uint16_t hi = std::min(server.max_version, client_max);
  if (lo > hi) {
    return absl::FailedPreconditionError(
        absl::StrCat("rpc handshake: no common version: the server supports ", server.min_version,
                     "..", server.max_version, ", this client ", client_min, "..", client_max));
  }
  return hi;
}

absl::Status CheckClientHello(const ClientHello& client, const ServerHello& server) {
  if (client.protocol != server.protocol) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rpc handshake: the client answered for protocol \"", absl::CHexEscape(client.protocol),
        "\", this server speaks \"", server.protocol, "\""));
  }
  if (client.version < server.min_version || client.version > server.max_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("rpc handshake: the client chose version ", client.version,
                     ", this server supports ", server.min_version, "..", server.max_version));
  }
  return absl::OkStatus();
}

}  // namespace netlayer::rpc
