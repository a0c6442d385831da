// The echo application, written once against netlayer::Host: server.cc and client.cc run it on
// posix (posix::Runtime), tests/scenario/echo_scenario_test.cc runs it in the simulator
// (sim::SimHost). Only the line that makes the Host differs.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "netlayer/core/host.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace echo {

struct EchoServer {
  std::shared_ptr<netlayer::rpc::Server> rpc;
  std::shared_ptr<netlayer::Listener> listener;
};

// Serves the method "echo" (it answers with its payload) on `address`.
inline absl::StatusOr<EchoServer> StartEchoServer(netlayer::Host& host,
                                                  const netlayer::Address& address) {
  EchoServer server{netlayer::rpc::Server::Create(host.env()), nullptr};
  server.rpc->Register(
      "echo", [](const netlayer::rpc::Request& request, netlayer::rpc::Responder responder) {
        (void)responder.Reply(request.payload);
      });
  auto listener = host.server_factory().Listen(
      address, [rpc = server.rpc](auto connection) { rpc->Serve(std::move(connection)); });
  if (!listener.ok()) return listener.status();
  server.listener = *listener;
  return server;
}

// Connects to `server` (three rounds of attempts at most), calls "echo" once, and closes.
inline absl::StatusOr<std::string> Echo(netlayer::Host& host, const netlayer::Address& server,
                                        std::string_view text, absl::Duration timeout) {
  netlayer::ConnectOptions schedule;
  schedule.max_attempts = 3;
  auto client = netlayer::rpc::Client::CreateReconnecting(host.env(), host.client_factory(),
                                                          {server}, schedule);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::string> reply = (*client)->Call("echo", text, host.env().Now() + timeout);
  (*client)->Close();
  return reply;
}

}  // namespace echo
