// An outside project using the installed package: headers by their namespaced paths (a user's
// own core/... cannot collide), and, when installed, an rpc echo on loopback as README.md shows
// it, written once against netlayer::Host and run on posix::Runtime and on asio::Runtime.
#include <cstdio>
#include <memory>
#include <string>

#include "netlayer/core/address.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/host.h"
#if defined(NETLAYER_HAS_rpc)
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#endif
#if defined(NETLAYER_HAS_posix)
#include "netlayer/posix/runtime.h"
#endif
#if defined(NETLAYER_HAS_asio)
#include "netlayer/asio/asio.h"
#endif

namespace {

#if defined(NETLAYER_HAS_rpc)
// An echo server and one call to it, on any Host. 0 if the reply came back.
int EchoOn(netlayer::Host& host, const std::string& text) {
  auto server = netlayer::rpc::Server::Create(host.env());
  server->Register("echo", [](const netlayer::rpc::Request& r, netlayer::rpc::Responder responder) {
    (void)responder.Reply(std::string(r.payload.data(), r.payload.size()));
  });
  auto listener = host.server_factory().Listen(
      *netlayer::Address::Parse("127.0.0.1:0"),
      [server](std::shared_ptr<netlayer::Connection> c) { server->Serve(std::move(c)); });
  if (!listener.ok()) {
    std::printf("listen on %s: %s\n", host.name().c_str(), listener.status().ToString().c_str());
    return 1;
  }
  netlayer::ConnectOptions options;
  options.max_attempts = 3;
  auto client = netlayer::rpc::Client::CreateReconnecting(host.env(), host.client_factory(),
                                                          {(*listener)->address()}, options);
  if (!client.ok()) return 1;
  auto reply = (*client)->Call("echo", text, absl::Now() + absl::Seconds(10));
  (*client)->Close();
  (*listener)->Close();
  server->Close();
  if (!reply.ok() || *reply != text) {
    std::printf("call on %s: %s\n", host.name().c_str(),
                reply.ok() ? reply->c_str() : reply.status().ToString().c_str());
    return 1;
  }
  std::printf("rpc over %s: %s\n", host.name().c_str(), reply->c_str());
  return 0;
}
#endif

}  // namespace

int main() {
  auto address = netlayer::Address::Parse("[::1]:8100");
  if (!address.ok()) return 1;
  auto schedule = netlayer::ConnectSchedule::Create({*address}, netlayer::ConnectOptions{});
  if (!schedule.ok()) return 1;
#if defined(NETLAYER_HAS_posix) && defined(NETLAYER_HAS_rpc)
  {
    netlayer::posix::Runtime runtime;  // the env, both factories and their threads
    if (EchoOn(runtime, "ping") != 0) return 1;
  }
#endif
#if defined(NETLAYER_HAS_asio) && defined(NETLAYER_HAS_rpc)
  {
    netlayer::asio::Runtime runtime(2);  // an io_context, two threads running it, the factories
    if (EchoOn(runtime, "pong") != 0) return 1;
  }
#endif
  std::printf("consumer ok: %s\n", address->ToString().c_str());
  return 0;
}
