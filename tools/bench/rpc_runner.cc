// rpc calls per second over the posix backend (or any Host: asio): an echo method, `threads`
// calling threads sharing one rpc::Client (one connection), each making blocking calls back to
// back, each call timed.
#include <functional>
#include <string>

#include "absl/time/clock.h"
#include "call_loop.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "rpc_figures.h"

namespace netlayer::bench {
namespace {

constexpr absl::Duration kSetupTimeout = absl::Seconds(10);

class RpcCalls : public Runner {
 public:
  RpcCalls(int threads, size_t payload_size, posix::PosixOptions options)
      : threads_(threads), payload_size_(payload_size), options_(options) {}
  RpcCalls(int threads, size_t payload_size, std::function<std::unique_ptr<Host>()> make_host)
      : threads_(threads), payload_size_(payload_size), make_host_(std::move(make_host)) {}

  absl::Status Start() override {
    Env* env = &env_;
    ClientConnectionFactory* clients;
    ServerConnectionFactory* servers;
    if (make_host_) {
      host_ = make_host_();
      env = &host_->env();
      clients = &host_->client_factory();
      servers = &host_->server_factory();
    } else {
      client_factory_ = std::make_unique<posix::PosixClientFactory>(options_);
      server_factory_ = std::make_unique<posix::PosixServerFactory>(options_);
      clients = client_factory_.get();
      servers = server_factory_.get();
    }
    server_ = rpc::Server::Create(*env);
    server_->Register("echo", [](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(request.payload);
    });
    absl::StatusOr<std::shared_ptr<Listener>> listener =
        servers->Listen(Address::IPv4("127.0.0.1", 0));
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    ConnectOptions options;
    options.max_attempts = 1;
    options.attempt_timeout = kSetupTimeout;
    options.give_up_after = kSetupTimeout;
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        clients->ConnectBlocking({listener_->address()}, options);
    if (!connection.ok()) return connection.status();
    std::shared_ptr<Connection> accepted = listener_->Accept(absl::Now() + kSetupTimeout);
    if (accepted == nullptr) return absl::DeadlineExceededError("rpc: no connection accepted");
    server_->Serve(std::move(accepted));
    client_ = rpc::Client::Create(*env, std::move(*connection));
    if (!client_->WaitReady(absl::Now() + kSetupTimeout)) {
      return absl::DeadlineExceededError("rpc: handshake did not complete: " +
                                         client_->last_error().ToString());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    return RunCallLoop(
        threads_, payload_size_, duration,
        [this](const std::string& payload) {
          rpc::CallResult result = client_->Call("echo", payload, absl::Now() + absl::Seconds(10));
          if (!result.ok()) return result.status();
          if (*result != payload) return absl::DataLossError("rpc: wrong reply");
          return absl::OkStatus();
        },
        latency_);
  }

  const LatencyHistogram* latency() const override { return &latency_; }

  absl::Status Stop() override {
    if (client_) client_->Close();
    if (server_) server_->Close();
    if (listener_) listener_->Close();
    client_.reset();
    server_.reset();
    listener_.reset();
    return absl::OkStatus();
  }

 private:
  int threads_;
  size_t payload_size_;
  posix::PosixOptions options_;
  std::function<std::unique_ptr<Host>()> make_host_;
  LatencyHistogram latency_;
  posix::PosixEnv env_;         // outlives everything below (declared first)
  std::unique_ptr<Host> host_;  // with make_host_: outlives everything below
  std::unique_ptr<posix::PosixClientFactory> client_factory_;
  std::unique_ptr<posix::PosixServerFactory> server_factory_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<rpc::Client> client_;
};

}  // namespace

std::unique_ptr<Runner> MakeRpcCalls(int threads, size_t payload_size,
                                     posix::PosixOptions options) {
  return std::make_unique<RpcCalls>(threads, payload_size, options);
}

std::unique_ptr<Runner> MakeRpcCallsOn(int threads, size_t payload_size,
                                       std::function<std::unique_ptr<Host>()> make_host) {
  return std::make_unique<RpcCalls>(threads, payload_size, std::move(make_host));
}

}  // namespace netlayer::bench
