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
// Thread rules: StatsCounters is internally synchronised (any thread); snapshots are values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "netlayer/core/mutex.h"

namespace netlayer::rpc {

inline constexpr size_t kMaxStatsMethods = 256;

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
  bool shutting_down = false;
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
  std::string ToJson() const;
};

namespace internal {

// The shared counting behind both snapshots.
class StatsCounters {
 public:
  void AddBytesIn(size_t message_bytes);  // one whole message (its frame header is added)
  void AddBytesOut(size_t message_bytes);
  void AddCall(std::string_view method);
  void AddStatus(absl::StatusCode code);
  // Fills the common fields of a snapshot.
  void Fill(std::map<std::string, uint64_t>& by_method, std::map<std::string, uint64_t>& by_status,
            uint64_t& bytes_in, uint64_t& bytes_out) const;

 private:
  mutable Mutex mu_;
  std::map<std::string, uint64_t, std::less<>> by_method_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> by_status_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_in_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_out_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace internal
}  // namespace netlayer::rpc
