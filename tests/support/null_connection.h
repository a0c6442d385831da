// NullConnection: a Connection that does nothing, for tests that need one to pass through (a
// state machine's delivery loop hands it to handlers; an API must reject it as foreign).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "netlayer/core/address.h"
#include "netlayer/core/connection.h"

namespace netlayer::test_support {

class NullConnection final : public Connection {
 public:
  bool IsOpen() const override { return false; }
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler>) override {
    return nullptr;
  }
  absl::Status WriteV(absl::Span<const std::string_view>) override { return absl::OkStatus(); }
  void Close() override {}
  void Abort() override {}
  size_t QueuedOutputBytes() const override { return 0; }
  Address local_address() const override { return Address::HostName("local", 1); }
  Address peer_address() const override { return Address::HostName("peer", 1); }
};

}  // namespace netlayer::test_support
