// Counters an rpc::Server and an rpc::Client keep, readable as a snapshot (Server::stats(),
// Client::stats()) and as JSON (ToJson), e.g. for an operator's "stats" command.
//
// Bytes are counted as framed on the wire (the 4-byte smac header included), after the
// handshake's hellos too. Calls are counted by method when they are made (client) or handed to
// a handler (server), and by the status code of their answer (client: of the result it got,
// including local failures such as kDeadlineExceeded; server: of the answer it sent). The
// per-method map holds at most kMaxStatsMethods names; further methods count under "(other)".
// queued_output_bytes is a level, not a counter: the bytes written to the connections (the
// server: summed over its sessions) and not yet sent, as Connection::QueuedOutputBytes() counts
// them; a peer that stops reading makes it grow towards the output bound.
//
// Per method (`methods`, for metrics: calls by method and status, a latency histogram): the
// calls started, their answers by status code, and their latency in kLatencyBucketsSeconds
// buckets. Client: from the call's start to its result (local failures included); server: from
// the call being handed to its handler to its answer being sent (calls refused before a handler
// ran, by max_inflight_calls or a shutdown, count in calls_by_status and `refusals` only).
// Counting a call takes the locks it did before: the counters' mutex once when it starts and once
// when it ends; added are one clock read (Env::Now()) at the end (the start's is the one the
// session already made) and, on the server, a copy of the method name with the call in flight.
//
// Thread rules: StatsCounters is internally synchronised (any thread); snapshots are values.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netlayer/core/mutex.h"

namespace netlayer::rpc {

inline constexpr size_t kMaxStatsMethods = 256;

// The upper bounds (seconds) of the latency histogram's buckets; a last bucket counts the rest.
inline constexpr std::array<double, 16> kLatencyBucketsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

struct MethodStats {
  uint64_t calls = 0;                         // started (client) / handed to a handler (server)
  std::map<std::string, uint64_t> by_status;  // answered, by code name ("OK", ...)
  // latency_counts[i]: answers with a latency <= kLatencyBucketsSeconds[i] and above the bound
  // before (not cumulative); the last entry: above the last bound.
  std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> latency_counts{};
  uint64_t latency_count = 0;  // answers timed (the sum of latency_counts)
  int64_t latency_sum_ns = 0;  // their latencies, summed
};

// What the server's protections refused, by kind (ServerStats::refusals' keys):
//   max_sessions, max_sessions_per_host, shutting_down    connections Serve closed at once
//   max_inflight_calls, shutting_down_call                calls answered without a handler
//   memory_budget_frame, memory_budget_reply              the memory budget (frames, replies)
//   reply_over_frame_limit, reply_output_full             replies turned into error replies
//   handshake_timeout, idle_timeout                       sessions closed by the deadlines
//   hello_too_large, frame_too_large                      sessions closed by the frame limits
enum class Refusal {
  kMaxSessions,
  kMaxSessionsPerHost,
  kShuttingDown,
  kMaxInflightCalls,
  kShuttingDownCall,
  kMemoryBudgetFrame,
  kMemoryBudgetReply,
  kReplyOverFrameLimit,
  kReplyOutputFull,
  kHandshakeTimeout,
  kIdleTimeout,
  kHelloTooLarge,
  kFrameTooLarge,
};
inline constexpr size_t kRefusalKinds = 13;
const char* RefusalName(Refusal refusal);  // "max_sessions", ...

struct ServerStats {
  uint64_t sessions_open = 0;      // sessions being served now
  uint64_t sessions_accepted = 0;  // connections Serve took
  uint64_t sessions_refused = 0;   // max_sessions, max_sessions_per_host, or shutting down
  std::map<std::string, uint64_t> calls_by_method;  // calls and one-way calls handed to handlers
  std::map<std::string, uint64_t> calls_by_status;  // answers sent, by code name ("OK", ...)
  uint64_t pushes = 0;                              // Session::Push accepted
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t inflight_calls = 0;       // handed to a handler, not answered yet
  uint64_t queued_output_bytes = 0;  // written to the sessions' connections, not yet sent
  // The memory budget (ServerOptions::memory_budget_bytes; 0: none): its limit, the bytes of
  // partial-frame buffers charged to it now and at most so far, and the frames and replies it
  // refused.
  uint64_t memory_budget_bytes = 0;
  uint64_t frame_buffer_bytes = 0;
  uint64_t peak_frame_buffer_bytes = 0;
  uint64_t budget_refusals = 0;
  bool shutting_down = false;
  std::map<std::string, MethodStats> methods;  // by method name (as calls_by_method)
  // Each protection's refusals, by RefusalName (every kind present, 0 included).
  std::map<std::string, uint64_t> refusals;
  // Sessions that closed before their handshake completed, by close-reason kind ("timeout",
  // "protocol error", "peer closed", ...: KindName), and ready sessions that closed, by kind.
  std::map<std::string, uint64_t> handshake_failures;
  std::map<std::string, uint64_t> session_closes;
  // {"sessions_open":1,...,"calls_by_method":{"echo":3},...}
  std::string ToJson() const;
};

struct ClientStats {
  uint64_t connections = 0;       // handshakes completed
  uint64_t reconnects = 0;        // handshakes completed after the first
  uint64_t connect_failures = 0;  // failed attempts (connect errors, closes before the handshake)
  uint64_t disconnects = 0;       // ready connections lost
  std::map<std::string, uint64_t> calls_by_method;
  std::map<std::string, uint64_t> calls_by_status;
  uint64_t pushes = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t pending_calls = 0;
  uint64_t queued_output_bytes = 0;  // written to the current connection, not yet sent
  bool ready = false;
  std::map<std::string, MethodStats> methods;  // by method name (as calls_by_method)
  // Connections that closed before the rpc handshake completed, by close-reason kind
  // (KindName: "protocol error" for a TLS rejection, "peer closed", "timeout", ...); they count
  // in connect_failures too.
  std::map<std::string, uint64_t> handshake_failures;
  std::string ToJson() const;
};

namespace internal {

// The shared counting behind both snapshots.
class StatsCounters {
 public:
  void AddBytesIn(size_t message_bytes);  // one whole message (its frame header is added)
  void AddBytesOut(size_t message_bytes);
  void AddCall(std::string_view method);
  // An answer with `code`; `method` "" counts it in by_status only (a call refused before it
  // was counted by AddCall); a negative `latency` is not timed.
  void AddAnswer(std::string_view method, absl::StatusCode code,
                 absl::Duration latency = absl::Seconds(-1));
  void AddStatus(absl::StatusCode code) { AddAnswer({}, code); }
  void AddRefusal(Refusal refusal) {
    refusals_[static_cast<size_t>(refusal)].fetch_add(1, std::memory_order_relaxed);
  }
  // A connection closed before its handshake completed (`handshaking`) or after.
  void AddClose(bool handshaking, std::string_view kind);
  // Fills the common fields of a snapshot.
  void Fill(std::map<std::string, uint64_t>& by_method, std::map<std::string, uint64_t>& by_status,
            uint64_t& bytes_in, uint64_t& bytes_out) const;
  void FillMethods(std::map<std::string, MethodStats>& methods) const;
  void FillRefusals(std::map<std::string, uint64_t>& refusals) const;
  void FillCloses(std::map<std::string, uint64_t>& handshake_failures,
                  std::map<std::string, uint64_t>& closes) const;

 private:
  // The entry of `method` (created while under kMaxStatsMethods; then "(other)").
  MethodStats& MethodLocked(std::string_view method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<std::string, MethodStats, std::less<>> by_method_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> by_status_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t, std::less<>> handshake_failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t, std::less<>> closes_ ABSL_GUARDED_BY(mu_);
  std::array<std::atomic<uint64_t>, kRefusalKinds> refusals_{};
  uint64_t bytes_in_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_out_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace internal
}  // namespace netlayer::rpc
