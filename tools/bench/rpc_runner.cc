// rpc calls per second over the posix backend: an echo method, `threads` calling threads
// sharing one rpc::Client (one connection), each making blocking calls back to back.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "rpc_figures.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr absl::Duration kSetupTimeout = absl::Seconds(10);
constexpr size_t kPayloadSize = 16;

class RpcCalls : public Runner {
 public:
  RpcCalls(int threads, posix::PosixOptions options) : threads_(threads), options_(options) {}

  absl::Status Start() override {
    client_factory_ = std::make_unique<posix::PosixClientFactory>(options_);
    server_factory_ = std::make_unique<posix::PosixServerFactory>(options_);
    server_ = rpc::Server::Create(env_);
    server_->Register("echo", [](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(request.payload);
    });
    absl::StatusOr<std::shared_ptr<Listener>> listener =
        server_factory_->Listen(Address::IPv4("127.0.0.1", 0));
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    ConnectOptions options;
    options.max_attempts = 1;
    options.attempt_timeout = kSetupTimeout;
    options.give_up_after = kSetupTimeout;
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        client_factory_->ConnectBlocking({listener_->address()}, options);
    if (!connection.ok()) return connection.status();
    std::shared_ptr<Connection> accepted = listener_->Accept(absl::Now() + kSetupTimeout);
    if (accepted == nullptr) return absl::DeadlineExceededError("rpc: no connection accepted");
    server_->Serve(std::move(accepted));
    client_ = rpc::Client::Create(env_, std::move(*connection));
    if (!client_->WaitReady(absl::Now() + kSetupTimeout)) {
      return absl::DeadlineExceededError("rpc: handshake did not complete: " +
                                         client_->last_error().ToString());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    std::atomic<uint64_t> calls{0};
    std::mutex mu;
    absl::Status first_error;
    std::atomic<bool> go{false};
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        std::string payload(kPayloadSize, static_cast<char>('a' + t));
        uint64_t mine = 0;
        do {
          payload[0] = static_cast<char>('a' + mine % 26);
          rpc::CallResult result = client_->Call("echo", payload, absl::Now() + absl::Seconds(10));
          absl::Status error;
          if (!result.ok()) {
            error = result.status();
          } else if (*result != payload) {
            error = absl::DataLossError("rpc: wrong reply");
          }
          if (!error.ok()) {
            std::lock_guard lock(mu);
            if (first_error.ok()) first_error = error;
            break;
          }
          ++mine;
        } while (Clock::now() < deadline);
        calls.fetch_add(mine);
      });
    }
    start = Clock::now();
    go.store(true, std::memory_order_release);
    for (std::thread& t : threads) t.join();
    auto end = Clock::now();
    if (!first_error.ok()) return first_error;
    return calls.load() / Seconds(end - start).count();
  }

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
  posix::PosixOptions options_;
  posix::PosixEnv env_;  // outlives everything below (declared first)
  std::unique_ptr<posix::PosixClientFactory> client_factory_;
  std::unique_ptr<posix::PosixServerFactory> server_factory_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<rpc::Client> client_;
};

}  // namespace

std::unique_ptr<Runner> MakeRpcCalls(int threads, posix::PosixOptions options) {
  return std::make_unique<RpcCalls>(threads, options);
}

}  // namespace netlayer::bench
