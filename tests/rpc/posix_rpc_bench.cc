// rpc_posix_bench [calls_per_thread] [threads...]: calls/second over ONE loopback connection,
// for each thread count (default 1 and 8). A measurement tool, not a test: it asserts nothing
// about speed. Example: build/<dir>/tests/rpc/rpc_posix_bench 20000 1 8
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

using namespace netlayer;

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  std::vector<int> thread_counts;
  for (int i = 2; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 8};

  posix::PosixEnv env;
  posix::PosixServerFactory server_factory;
  posix::PosixClientFactory client_factory;
  auto server = rpc::Server::Create(env);
  server->Register("echo",
                   [](const rpc::Request& r, rpc::Responder resp) { (void)resp.Reply(r.payload); });
  auto listener = server_factory.Listen(*Address::Parse("127.0.0.1:0"),
                                        [&](std::shared_ptr<Connection> c) { server->Serve(c); });
  if (!listener.ok()) {
    std::fprintf(stderr, "listen: %s\n", listener.status().ToString().c_str());
    return 1;
  }
  for (int threads : thread_counts) {
    auto conn = client_factory.ConnectBlocking({(*listener)->address()}, ConnectOptions{});
    if (!conn.ok()) {
      std::fprintf(stderr, "connect: %s\n", conn.status().ToString().c_str());
      return 1;
    }
    auto client = rpc::Client::Create(env, *conn);
    if (!client->WaitReady(absl::Now() + absl::Seconds(10))) return 1;
    // Warm-up.
    for (int i = 0; i < 1000; ++i)
      (void)client->Call("echo", "warm", absl::Now() + absl::Seconds(10));
    std::atomic<int> failures{0};
    const std::string payload(16, 'p');
    const absl::Time start = absl::Now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (int i = 0; i < calls; ++i) {
          auto r = client->Call("echo", payload, absl::Now() + absl::Seconds(30));
          if (!r.ok() || *r != payload) ++failures;
        }
      });
    }
    for (auto& w : workers) w.join();
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    const double total = static_cast<double>(calls) * threads;
    std::printf(
        "rpc posix loopback: %d thread(s) x %d calls (16 B) on one connection: %.0f calls/s"
        " (%.2f s, %d failures)\n",
        threads, calls, total / secs, secs, failures.load());
    client->Close();
  }
  (*listener)->Close();
  server->Close();
  return 0;
}
