// The mixed attack of netlayer-bench's attack group (issue 29): hundreds of misbehaving
// connections to an rpc server on 127.0.0.1, from one thread of this process, while the scale
// runner's well-behaved clients call it (scale_figures.h).
//
// The mix (AttackMix), each kind kept at its count for as long as the attack runs (a connection
// the server closes is opened again):
//   - silent: connect and say nothing (the server's handshake_timeout ends them);
//   - partial large frames: a valid hello, then the header of a frame of `partial_announced`
//     bytes and its first `partial_bytes`, then nothing (the server's memory budget and timeouts
//     end them);
//   - slow readers: a valid hello, then 65 KiB echo calls as fast as the socket takes them,
//     never reading a reply (the server's output bounds and budget push back);
//   the bytes of the partial frames and the slow readers' calls together are paced at
//   `bulk_bytes_per_second` (loopback would take them far faster);
//   - handshake garbage: `garbage_per_second` connections that send 300 pseudo-random bytes and
//     close;
//   - connect/close bursts: `bursts_per_second` bursts of `burst_size` connections closed with a
//     reset as soon as they are connected.
//
// Thread rules: Start, Stop and the counters from one thread (the runner's); the attack runs
// on its own thread between Start and Stop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace netlayer::bench {

struct AttackMix {
  int silent = 200;
  int partial_frames = 12;
  size_t partial_announced = size_t{60} << 20;
  size_t partial_bytes = size_t{48} << 20;
  int slow_readers = 32;
  double bulk_bytes_per_second = 256e6;
  int garbage_per_second = 50;
  int bursts_per_second = 10;
  int burst_size = 20;
};

class Attacker {
 public:
  Attacker(uint16_t port, AttackMix mix) : port_(port), mix_(mix) {}
  ~Attacker() { Stop(); }
  Attacker(const Attacker&) = delete;
  Attacker& operator=(const Attacker&) = delete;

  // Starts the attack thread; it opens the first connections at once.
  void Start();
  // Ends the attack: joins the thread, closes every hostile connection (with a reset).
  void Stop();

  // Hostile connections opened, and those the server ended (EOF or reset), since Start.
  uint64_t opened() const { return opened_.load(); }
  uint64_t ended_by_server() const { return ended_by_server_.load(); }

 private:
  void Run();

  const uint16_t port_;
  const AttackMix mix_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> opened_{0};
  std::atomic<uint64_t> ended_by_server_{0};
};

}  // namespace netlayer::bench
