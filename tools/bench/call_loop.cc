#include "call_loop.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace netlayer::bench {

absl::StatusOr<double> RunCallLoop(int threads, size_t payload_size, Seconds duration,
                                   const EchoCall& call, LatencyHistogram& latency) {
  return RunCallLoop(
      threads, payload_size, duration,
      [&call](int, const std::string& payload) { return call(payload); }, latency);
}

absl::StatusOr<double> RunCallLoop(int threads, size_t payload_size, Seconds duration,
                                   const ThreadCall& call, LatencyHistogram& latency) {
  using Clock = std::chrono::steady_clock;
  std::atomic<uint64_t> calls{0};
  std::mutex mu;
  absl::Status first_error;  // GUARDED_BY(mu)
  std::vector<LatencyHistogram> per_thread(threads);
  std::atomic<bool> go{false};
  Clock::time_point deadline;  // written before `go`, read after it
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::string payload(payload_size, static_cast<char>('a' + t));
      LatencyHistogram& mine_latency = per_thread[t];
      uint64_t mine = 0;
      Clock::time_point now = Clock::now();
      do {
        if (!payload.empty()) payload[0] = static_cast<char>('a' + mine % 26);
        const Clock::time_point before = now;
        absl::Status error = call(t, payload);
        now = Clock::now();
        if (!error.ok()) {
          std::lock_guard lock(mu);
          if (first_error.ok()) first_error = error;
          break;
        }
        mine_latency.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - before).count()));
        ++mine;
      } while (now < deadline);
      calls.fetch_add(mine);
    });
  }
  const Clock::time_point start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
  go.store(true, std::memory_order_release);
  for (std::thread& w : workers) w.join();
  auto end = Clock::now();
  if (!first_error.ok()) return first_error;
  latency.Reset();
  for (const LatencyHistogram& h : per_thread) latency.Merge(h);
  return calls.load() / Seconds(end - start).count();
}

}  // namespace netlayer::bench
