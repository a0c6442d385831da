// An outside project using the installed package: headers by their namespaced paths (a user's
// own core/... cannot collide), and, when installed, an rpc echo over the posix backend on
// loopback, as README.md shows it, and the same over the asio backend.
#include <cstdio>

#include "netlayer/core/address.h"
#include "netlayer/core/connect_schedule.h"
#if defined(NETLAYER_HAS_posix) && defined(NETLAYER_HAS_rpc)
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#endif
#if defined(NETLAYER_HAS_asio) && defined(NETLAYER_HAS_rpc)
#include "netlayer/asio/asio.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#endif

int main() {
  auto address = netlayer::Address::Parse("[::1]:8100");
  if (!address.ok()) return 1;
  auto schedule = netlayer::ConnectSchedule::Create({*address}, netlayer::ConnectOptions{});
  if (!schedule.ok()) return 1;
#if defined(NETLAYER_HAS_posix) && defined(NETLAYER_HAS_rpc)
  netlayer::posix::PosixEnv env;
  auto server = netlayer::rpc::Server::Create(env);
  server->Register("echo", [](const netlayer::rpc::Request& r, netlayer::rpc::Responder responder) {
    (void)responder.Reply(std::string(r.payload.data(), r.payload.size()));
  });
  netlayer::posix::PosixServerFactory servers;
  auto listener = servers.Listen(
      *netlayer::Address::Parse("127.0.0.1:0"),
      [server](std::shared_ptr<netlayer::Connection> c) { server->Serve(std::move(c)); });
  if (!listener.ok()) {
    std::printf("listen: %s\n", listener.status().ToString().c_str());
    return 1;
  }
  netlayer::posix::PosixClientFactory factory;
  netlayer::ConnectOptions options;
  options.max_attempts = 3;
  auto client =
      netlayer::rpc::Client::CreateReconnecting(env, factory, {(*listener)->address()}, options);
  if (!client.ok()) return 1;
  auto reply = (*client)->Call("echo", "ping", absl::Now() + absl::Seconds(10));
  if (!reply.ok() || *reply != "ping") {
    std::printf("call: %s\n", reply.ok() ? reply->c_str() : reply.status().ToString().c_str());
    return 1;
  }
  (*client)->Close();
  (*listener)->Close();
  server->Close();
  std::printf("rpc over posix: %s\n", reply->c_str());
#endif
#if defined(NETLAYER_HAS_asio) && defined(NETLAYER_HAS_rpc)
  {
    netlayer::asio::Runtime runtime(2);  // an io_context and two threads running it
    auto asio_server = netlayer::rpc::Server::Create(runtime.env());
    asio_server->Register("echo",
                          [](const netlayer::rpc::Request& r, netlayer::rpc::Responder responder) {
                            (void)responder.Reply(std::string(r.payload.data(), r.payload.size()));
                          });
    netlayer::asio::AsioServerFactory asio_servers(runtime);
    auto asio_listener =
        asio_servers.Listen(*netlayer::Address::Parse("127.0.0.1:0"),
                            [asio_server](std::shared_ptr<netlayer::Connection> c) {
                              asio_server->Serve(std::move(c));
                            });
    if (!asio_listener.ok()) return 1;
    netlayer::asio::AsioClientFactory asio_clients(runtime);
    netlayer::ConnectOptions asio_options;
    asio_options.max_attempts = 3;
    auto asio_client = netlayer::rpc::Client::CreateReconnecting(
        runtime.env(), asio_clients, {(*asio_listener)->address()}, asio_options);
    if (!asio_client.ok()) return 1;
    auto asio_reply = (*asio_client)->Call("echo", "pong", absl::Now() + absl::Seconds(10));
    if (!asio_reply.ok() || *asio_reply != "pong") return 1;
    (*asio_client)->Close();
    (*asio_listener)->Close();
    asio_server->Close();
    std::printf("rpc over asio: %s\n", asio_reply->c_str());
  }
#endif
  std::printf("consumer ok: %s\n", address->ToString().c_str());
  return 0;
}
