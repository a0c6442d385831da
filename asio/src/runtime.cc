#include "netlayer/asio/asio.h"
#include "netlayer/core/assert.h"
#include "runtime_impl.h"

namespace netlayer::asio {
namespace internal {

RuntimeImpl::RuntimeImpl(int thread_count) : work(::asio::make_work_guard(io)) {
  NETLAYER_ASSERT(thread_count >= 1, "a Runtime needs at least one io thread");
  threads.reserve(static_cast<size_t>(thread_count));
  for (int i = 0; i < thread_count; ++i) threads.emplace_back([this] { io.run(); });
}

uint64_t RuntimeImpl::Register(std::function<void()> stop) {
  std::lock_guard<std::mutex> lock(mu);
  if (shutting_down) return 0;
  const uint64_t id = next_id++;
  stoppers.emplace(id, std::move(stop));
  return id;
}

void RuntimeImpl::Unregister(uint64_t id) {
  std::function<void()> doomed;
  std::lock_guard<std::mutex> lock(mu);
  auto it = stoppers.find(id);
  if (it == stoppers.end()) return;
  doomed = std::move(it->second);  // destroyed after the lock is released (declared first)
  stoppers.erase(it);
}

void RuntimeImpl::Shutdown() {
  for (const std::thread& t : threads) {
    NETLAYER_ASSERT(t.get_id() != std::this_thread::get_id(),
                    "a Runtime may not be destroyed on one of its io threads");
  }
  std::map<uint64_t, std::function<void()>> stopping;
  {
    std::lock_guard<std::mutex> lock(mu);
    shutting_down = true;
    stopping.swap(stoppers);
  }
  for (auto& [id, stop] : stopping) stop();  // in registration order
  stopping.clear();
  env.Shutdown();
  // Everything is aborted or closed: the io threads finish what is in flight (completions of
  // cancelled operations, the last deliveries) and return once nothing is left.
  work.reset();
  for (std::thread& t : threads) t.join();
  threads.clear();
}

}  // namespace internal

Runtime::Runtime(int threads, AsioOptions options)
    : impl_(std::make_shared<internal::RuntimeImpl>(threads)),
      clients_(std::make_unique<AsioClientFactory>(*this, options)),
      servers_(std::make_unique<AsioServerFactory>(*this, options)) {}

Runtime::~Runtime() { impl_->Shutdown(); }

Env& Runtime::env() { return impl_->env; }

ClientConnectionFactory& Runtime::client_factory() { return *clients_; }

ServerConnectionFactory& Runtime::server_factory() { return *servers_; }

int Runtime::threads() const { return static_cast<int>(impl_->threads.size()); }

}  // namespace netlayer::asio
