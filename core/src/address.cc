#include "netlayer/core/address.h"

#include <charconv>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace netlayer {
namespace {

absl::StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", std::string(whole), "': port must be a number 0..65535"));
  }
  return static_cast<uint16_t>(value);
}

bool IsIPv4Literal(std::string_view host) {
  int parts = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t dot = host.find('.', i);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view part = host.substr(i, dot - i);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || part.size() > 3 || ec != std::errc() || end != part.data() + part.size() ||
        value > 255) {
      return false;
    }
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

absl::StatusOr<Address> Address::Parse(std::string_view text) {
  if (text.substr(0, 5) == "unix:") {
    std::string_view path = text.substr(5);
    if (path.empty()) return absl::InvalidArgumentError("address 'unix:': empty socket path");
    // sun_path holds 108 bytes including the terminating NUL.
    if (path.size() > 107) {
      return absl::InvalidArgumentError(absl::StrCat("address '", std::string(text),
                                                     "': unix socket path longer than 107 bytes"));
    }
    if (path.find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError("unix socket path contains a NUL byte");
    }
    return Unix(std::string(path));
  }
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", std::string(text), "': expected [IPv6]:port"));
    }
    std::string_view host = text.substr(1, close - 1);
    if (host.empty() || host.find(':') == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", std::string(text), "': not an IPv6 literal"));
    }
    std::string_view zone;
    if (size_t percent = host.find('%'); percent != std::string_view::npos) {
      zone = host.substr(percent + 1);
      host = host.substr(0, percent);
    }
    for (char c : zone) {
      if (!IsHostNameChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("address '", std::string(text), "': bad IPv6 zone"));
      }
    }
    for (char c : host) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') {
        return absl::InvalidArgumentError(
            absl::StrCat("address '", std::string(text), "': not an IPv6 literal"));
      }
    }
    auto port = ParsePort(text.substr(close + 2), text);
    if (!port.ok()) return port.status();
    return IPv6(std::string(text.substr(1, close - 1)), *port);
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address '", std::string(text), "': expected host:port, [IPv6]:port or unix:/path"));
  }
  std::string_view host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address '", std::string(text),
                                                   "': an IPv6 host needs brackets: [host]:port"));
  }
  auto port = ParsePort(text.substr(colon + 1), text);
  if (!port.ok()) return port.status();
  if (IsIPv4Literal(host)) return IPv4(std::string(host), *port);
  for (char c : host) {
    if (!IsHostNameChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", std::string(text), "': bad character in host name"));
    }
  }
  return HostName(std::string(host), *port);
}

Address Address::IPv4(std::string host, uint16_t port) {
  return {Kind::kIPv4, std::move(host), port};
}
Address Address::IPv6(std::string host, uint16_t port) {
  return {Kind::kIPv6, std::move(host), port};
}
Address Address::Unix(std::string path) { return {Kind::kUnix, std::move(path), 0}; }
Address Address::HostName(std::string host, uint16_t port) {
  return {Kind::kHostName, std::move(host), port};
}

std::string Address::ToString() const {
  switch (kind_) {
    case Kind::kUnix:
      return absl::StrCat("unix:", host_);
    case Kind::kIPv6:
      return absl::StrCat("[", host_, "]:", port_);
    case Kind::kIPv4:
    case Kind::kHostName:
      break;
  }
  return absl::StrCat(host_, ":", port_);
}

}  // namespace netlayer
