// FakeWorld: a tiny single-threaded world for smac/rpc unit tests that need neither the simulator
// nor posix. It is an Env (a virtual clock with a RunAt queue; Notification::WaitUntil runs the
// world until notified or the deadline), makes in-memory connection pairs driven by core
// ConnectionState + NoLock + ReceiveInput/DeliverEvents, and offers a fake client factory and
// listeners (driven by core ConnectSchedule) so reconnecting clients can be tested.
//
// Bytes move only when the world runs (Step/RunUntilIdle/RunUntil/a Notification wait), in
// chunks of 1..max_chunk bytes drawn from a seeded generator, so tests see input split at
// arbitrary points. Timers run in (time, sequence) order after all bytes in flight have moved.
//
// Thread rules: one thread only (guarded test binaries may not start threads anyway).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/core/generator.h"
#include "netlayer/core/timer_queue.h"

namespace netlayer::testing {

class FakeWorld;

class MemoryConnection final : public Connection,
                               public std::enable_shared_from_this<MemoryConnection> {
 public:
  MemoryConnection(FakeWorld* world, Address local, Address peer, ConnectionLimits limits);
  bool IsOpen() const override { return state_.IsOpen(); }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  void Abort() override;
  size_t QueuedOutputBytes() const override { return state_.output_bytes(); }
  Address local_address() const override { return local_; }
  Address peer_address() const override { return peer_address_; }

  // Breaks the stream as a TCP reset: both ends closed with kReset, unread data lost.
  void Reset(const std::string& why = "connection reset by peer");
  // Stops moving bytes in both directions (a silent dead peer); Unfreeze resumes.
  void Freeze(bool frozen);
  ConnectionState& state() { return state_; }

 private:
  friend class FakeWorld;
  // Moves up to `max` bytes of output to the peer; true if anything happened.
  bool Pump(size_t max);
  void RemoteClosed(CloseReason reason);

  FakeWorld* world_;
  Address local_;
  Address peer_address_;
  ConnectionState state_;
  std::weak_ptr<MemoryConnection> peer_;
  bool eof_pending_ = false;  // local close flushed: tell the peer on the next pump
  bool frozen_ = false;
};

class FakeWorld final : public Env {
 public:
  explicit FakeWorld(uint64_t seed = 1, size_t max_chunk = 1 << 20);
  ~FakeWorld() override;

  // ---- Env ----
  absl::Time Now() const override { return now_; }
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;

  // ---- Connections ----
  struct Pair {
    std::shared_ptr<MemoryConnection> client;
    std::shared_ptr<MemoryConnection> server;
  };
  Pair NewPair(ConnectionLimits limits = {});
  // Bytes move in chunks of 1..max_chunk (drawn from the seed).
  void set_max_chunk(size_t max_chunk) { max_chunk_ = max_chunk; }

  // Listeners for the fake client factory: Connect to `address` succeeds while one is set (the
  // server end goes to `on_accept`), and fails "connection refused" otherwise.
  void Listen(const Address& address, std::function<void(std::shared_ptr<Connection>)> on_accept);
  void StopListening(const Address& address);
  ClientConnectionFactory& client_factory();
  int connect_attempts() const { return connect_attempts_; }

  // ---- Running ----
  // One step: move a chunk on every connection with bytes in flight; if none, run the next timer
  // due at or before `limit` (advancing the clock to it). False if there was nothing to do.
  bool Step(absl::Time limit = absl::InfiniteFuture());
  // Runs everything that is due now or earlier and every byte in flight (the clock stays).
  void RunUntilIdle();
  // Runs until `done()` or the clock would pass `deadline` (then the clock is set to it).
  bool RunUntil(const std::function<bool()>& done, absl::Time deadline);
  bool RunFor(const std::function<bool()>& done, absl::Duration d) {
    return RunUntil(done, now_ + d);
  }
  // Advances the clock by `d`, running everything due meanwhile.
  void Advance(absl::Duration d);

  Generator& generator() { return gen_; }
  // Nesting depth of callbacks being run by the world (a blocking wait inside one is a bug).
  int callback_depth() const { return callback_depth_; }

 private:
  friend class MemoryConnection;
  class Factory;
  bool PumpAll();

  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  Xoshiro256 gen_;
  size_t max_chunk_;
  TimerQueue timers_;
  // Strong references, as a real backend holds its sockets: a connection closed locally and then
  // dropped by the application still flushes and tells its peer. Forgotten once fully closed.
  std::vector<std::shared_ptr<MemoryConnection>> connections_;
  std::map<Address, std::function<void(std::shared_ptr<Connection>)>> listeners_;
  std::unique_ptr<Factory> factory_;
  int connect_attempts_ = 0;
  int callback_depth_ = 0;
  uint16_t next_port_ = 40000;
};

}  // namespace netlayer::testing
