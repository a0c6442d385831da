// netlayer's own figures. The smac runners work over any backend's factories (they use only the
// core and smac interfaces); main.cc gives them the posix backend's.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "harness.h"
#include "netlayer/core/factory.h"

namespace netlayer::bench {

// A backend's factories for one runner, and the address its listener binds.
struct Factories {
  std::shared_ptr<ClientConnectionFactory> client;
  std::shared_ptr<ServerConnectionFactory> server;
  std::string listen_address = "127.0.0.1:0";
};
using FactoriesMaker = std::function<absl::StatusOr<Factories>()>;

// Ping-pong of smac messages of `size` bytes: the client's handler sends the next message when
// the echo of the last arrives; the server's handler echoes. Round trips per second.
std::unique_ptr<Runner> MakeSmacPingPong(FactoriesMaker make, size_t size);

// Bulk, one direction, smac messages of `size` bytes: the main thread sends as fast as the
// receiver's acknowledgements allow (a window of about 8 MiB, one ack per ~1 MiB, so Write never
// hits the output bound); MB/s of payload until the receiver acknowledged the last message.
std::unique_ptr<Runner> MakeSmacBulk(FactoriesMaker make, size_t size);

}  // namespace netlayer::bench
