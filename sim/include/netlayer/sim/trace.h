// Trace: the simulator's record of every meaningful event, and the run's fingerprint.
//
// Each event has a sequence number (0, 1, 2, ... in the order recorded), a virtual time, the
// host it happened on ("-" for the world itself), a kind and a free-text detail. The trace keeps
// only the last `capacity` events in memory (a ring), plus a running hash of all of them; a sink
// can stream every event elsewhere (a file, written by a tool: sim/ itself makes no syscalls).
//
// The fingerprint: 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) run
// over the bytes of every event's canonical line followed by '\n', in order, never reset. The
// canonical line is
//     <seq> <nanoseconds since the world's start> <host> <kind> <detail>
// with integers in decimal. Two runs have the same hash iff (with overwhelming probability)
// they recorded the same events at the same virtual times.
//
// Thread rules: not thread-safe; the world's single thread uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace netlayer::sim {

enum class TraceKind {
  kWorld,    // the world itself: start, idle, event budget exhausted, liveness phase
  kHost,     // host added, crashed, restarted
  kTimer,    // an application timer (Env::RunAt) fired
  kListen,   // a listener opened or closed
  kConnect,  // a connect attempt, its result, a schedule wait, a cancel
  kAccept,   // a connection arrived at a listener
  kSend,     // bytes taken from a connection's output queue into the network (a write)
  kDeliver,  // bytes handed to the receiving connection (a read)
  kClose,    // FIN sent, end of stream delivered, local close
  kReset,    // a connection reset (either end sees an error)
  kFault,    // a fault injected or healed (random or scripted)
  kApp,      // an application note (World::Note)
};

// "world", "host", "timer", "listen", "connect", "accept", "send", "deliver", "close", "reset",
// "fault", "app".
const char* TraceKindName(TraceKind kind);

struct TraceEvent {
  uint64_t seq = 0;
  absl::Duration time;  // virtual time since the world's start
  std::string host;     // "-" for world-level events
  TraceKind kind = TraceKind::kWorld;
  std::string detail;
  // Structured copies of what the detail says, for tools (a timeline): not part of the
  // canonical line. `conn` is the stream id ("conn#N"), 0 if none; `peer` the other host of a
  // send, delivery, accept, close or reset ("" if none); `bytes` the size of a send or delivery.
  uint64_t conn = 0;
  std::string peer;
  uint64_t bytes = 0;

  // "<seq> <ns> <host> <kind> <detail>": what the hash is computed over.
  std::string CanonicalLine() const;
  // "[    1.250000000s] client   deliver  conn#1 c<-s 37 bytes": for people.
  std::string HumanLine() const;
  // {"seq":12,"t_ns":1250000000,"host":"client","kind":"deliver","detail":"..."}, followed by
  // "conn", "peer" and "bytes" when set.
  std::string JsonLine() const;
};

class Trace {
 public:
  using Sink = std::function<void(const TraceEvent&)>;

  static constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

  // REQUIRES: capacity >= 1.
  explicit Trace(size_t capacity);

  void Add(absl::Duration time, std::string_view host, TraceKind kind, std::string detail);
  // Adds `event` with its seq set to the next number.
  void Add(TraceEvent event);

  // The running FNV-1a hash of every event so far.
  uint64_t hash() const { return hash_; }
  // "0123456789abcdef": the hash as 16 lowercase hex digits.
  std::string HashHex() const;
  // Events recorded so far (including those no longer in memory).
  uint64_t count() const { return next_seq_; }
  size_t capacity() const { return capacity_; }
  // The events still in memory, oldest first (at most capacity()).
  std::vector<TraceEvent> Recent() const;
  // The last `n` events still in memory, oldest first.
  std::vector<TraceEvent> Last(size_t n) const;

  // Every later event is also passed to `sink` (nullptr removes it).
  void SetSink(Sink sink) { sink_ = std::move(sink); }

 private:
  size_t capacity_;
  uint64_t next_seq_ = 0;
  uint64_t hash_ = kFnvOffsetBasis;
  std::deque<TraceEvent> ring_;
  Sink sink_;
};

// FNV-1a 64 of `bytes` continued from `hash`.
uint64_t Fnv1a64(uint64_t hash, std::string_view bytes);

}  // namespace netlayer::sim
