// rpc::Server: method handlers, deferred replies, and one-way pushes to clients.
//
// Serve(connection) runs the protocol on one accepted connection (a Session): the server sends
// its hello at once, the client's hello must come first, then calls. A handler answers through
// the Responder it is given, now or later from any thread (a deferred reply). An unknown method
// gets an error reply (kUnimplemented); a malformed message closes that one connection with a
// kProtocolError reason naming the problem, while every other session keeps being served.
//
// Thread rules: every method may be called from any thread. Handlers for one session run on that
// connection's delivery thread, one at a time, in arrival order; handlers of different sessions
// may run concurrently (posix). No internal lock is held while a handler runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/env.h"
#include "netlayer/core/mutex.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/peer_options.h"
#include "netlayer/rpc/peer_session.h"
#include "netlayer/rpc/peer_timer.h"
#include "netlayer/rpc/stats.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc {

class Client;
class Server;
class Session;
namespace internal {
struct ServerShared;  // counters and the draining flag, shared by a server and its sessions
}
namespace testing {
// Test hook (rpc/src/testing_plants.h, internal; not API): planted bugs for scenarios.
struct Plants;
void SetPlants(Client& client, const Plants& plants);
void SetPlants(Server& server, const Plants& plants);
}  // namespace testing

// Answers one call, exactly once: Reply or Fail, now or later, from any thread (one thread at a
// time: a Responder itself is not synchronised). Move-only. A Responder destroyed without
// answering a call fails it (kInternal, "handler dropped the call"), so a client never waits
// forever. For a one-way call every method is a no-op returning OK.
//
// Every call gets exactly one answer on the wire (docs/PROTOCOL.md §5): the first Reply/Fail
// answers it, whatever it returns. A reply that cannot be sent (larger than the frame limit, or
// the connection's output queue is full) becomes an error reply RESOURCE_EXHAUSTED naming why;
// if even that cannot be sent, the connection is closed, so the client fails the call at once.
// Reply/Fail then return that ResourceExhausted status (the call *was* answered).
// Errors: FailedPrecondition for a second answer (never an abort) or when the session has ended
// (its client already failed the call with kUnavailable).
class Responder {
 public:
  Responder() = default;
  Responder(Responder&& other) noexcept;
  Responder& operator=(Responder&& other) noexcept;
  ~Responder();

  absl::Status Reply(std::string_view payload);
  // An OK `status` is sent as kUnknown ("handler failed with an OK status").
  absl::Status Fail(const absl::Status& status);
  bool answered() const { return session_.expired() || answered_; }
  bool one_way() const { return one_way_; }

 private:
  friend class Session;
  Responder(std::weak_ptr<Session> session, uint64_t id, bool one_way)
      : session_(std::move(session)), id_(id), one_way_(one_way), answered_(one_way) {}
  absl::Status Answer(const absl::Status& status, std::string_view payload);
  std::weak_ptr<Session> session_;
  uint64_t id_ = 0;
  bool one_way_ = true;
  bool answered_ = true;
};

struct Request {
  Session& session;
  std::string_view method;
  std::string_view payload;  // valid only during the handler call: copy what you keep
  uint64_t id;
  bool one_way;
  // The client's verified identity (its TLS certificate: subject, SANs), nullopt without one
  // (plaintext, or a TLS server that does not require client certificates). Session's.
  const std::optional<PeerIdentity>& peer_identity() const;
};

using MethodHandler = std::function<void(const Request& request, Responder responder)>;

struct ServerOptions;
// InvalidArgument naming the problem: no codec, min_version > max_version, a protocol name not
// 1..255 bytes, a handshake_timeout that is not positive, a negative idle_timeout, a non-zero
// max_hello_size smaller than the client's hello, framing limits that do not agree
// (smac::ValidateMessageOptions against connection_max_output_bytes).
absl::Status ValidateServerOptions(const ServerOptions& options);

// The protocol, framing, codec and the client's hello bound (max_hello_size, a protection) come
// from PeerOptions (peer_options.h).
struct ServerOptions : PeerOptions {
  // ---- Protections (docs/OPERATIONS.md lists each, with what a client sees) ----
  // The client's hello must arrive within this of the accept; else the session closes
  // (kTimeout). Fixed when the session starts: bytes trickling in never extend it.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // A session that receives no whole message for this long is closed with kTimeout; a partial
  // frame dripping in does not count. 0 turns it off. The client's heartbeat (on by default,
  // a ping every 10 s) keeps a live idle client well inside it.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Open sessions (handshaking or ready). Serve closes a connection over it at once, logging why;
  // established sessions are not affected. 0: no limit.
  size_t max_sessions = 1024;
  // Open sessions per peer host (the peer address without its port; every unix-domain client
  // counts as one host). 0 (the default): no limit.
  size_t max_sessions_per_host = 0;
  // Calls of one session handed to handlers and not answered yet. A call over it is answered at
  // once with an error reply RESOURCE_EXHAUSTED (no handler runs). 0: no limit. The default
  // matches ClientOptions::max_pending_calls, so a default client is never refused.
  size_t max_inflight_calls = 4096;
  // Server-wide memory budget for what peers can make this server hold: the buffers of partial
  // frames over 64 KiB (smac::kUnbudgetedBytes), charged as they grow with the bytes that
  // arrive (smac::MemoryBudget), together with the output queued on every session. A frame that
  // would pass it closes its session (kError, "smac: a frame of N bytes was refused ... the
  // memory budget for large frames (B bytes) is spent ..."), a reply over 64 KiB that would pass
  // it becomes an error reply RESOURCE_EXHAUSTED ("... the server's memory budget ... is spent");
  // other sessions and small calls are served on. So N sessions together hold at most this
  // plus 64 KiB of partial frame each (docs/OPERATIONS.md §3). 0: no budget.
  size_t memory_budget_bytes = size_t{512} << 20;
  // (The output a session may queue for a client that does not read is bounded by the
  // connection's ConnectionLimits::max_output_bytes, set in the backend factory's options; a
  // reply over it becomes a small RESOURCE_EXHAUSTED error reply, or the session closes.)

  // A session ended (not called for Session::Close or Server::Close).
  std::function<void(Session& session, const CloseReason& reason)> on_session_closed;
  // A session completed its handshake.
  std::function<void(Session& session)> on_session_ready;
};

// One client connection on the server.
class Session : public std::enable_shared_from_this<Session> {
 public:
  ~Session();
  uint64_t id() const { return id_; }
  // A one-way message to the client (ZEO's invalidations). FailedPrecondition before the
  // handshake completed or after close; else the connection's Write errors.
  absl::Status Push(std::string_view method, std::string_view payload);
  bool IsOpen() const;
  bool ready() const;
  uint16_t version() const;
  void Close();
  Address peer_address() const;
  // The client's verified identity (Connection::peer_identity(), taken when the session was
  // served: a TLS server factory hands over connections after their handshake). Fixed.
  const std::optional<PeerIdentity>& peer_identity() const { return peer_identity_; }

 private:
  friend class Server;
  friend class Responder;
  class Handler;

  Session(std::weak_ptr<Server> server, std::shared_ptr<const ServerOptions> options,
          std::shared_ptr<internal::ServerShared> shared, Env& env, uint64_t id,
          std::string peer_host, std::shared_ptr<smac::MessageConnection> conn,
          std::shared_ptr<const testing::Plants> plants);
  // Calls handed to a handler and not answered yet.
  size_t InflightCalls() const;
  // Bytes written to this session's connection and not yet sent (Connection::QueuedOutputBytes).
  size_t QueuedOutputBytes() const;
  // Shutdown's deadline: answers every call still in flight with `status`; the handlers'
  // later answers are dropped (their Reply returns FailedPrecondition).
  void AbandonInflight(const absl::Status& status);
  void Start();
  void OnMessage(std::string_view message);
  void OnClosed(const CloseReason& reason);
  void OnPeerTimer();
  // Counts why the session closes (stats: handshake_failures / session_closes, a protection's
  // refusal), once. REQUIRES mu_ held.
  void CountCloseLocked(bool handshaking, const CloseReason& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Arms the peer session's timer for its NextTimer(). REQUIRES mu_ held.
  void ArmPeerTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the one answer to call `id`: a reply with `payload` if `status` is OK, else an error
  // reply. One that cannot be sent becomes an error reply RESOURCE_EXHAUSTED, and if that cannot
  // be sent either the connection closes (kError): never silence. Returns OK, the
  // ResourceExhausted sent instead, or FailedPrecondition if the connection was already closed.
  absl::Status Answer(uint64_t id, const absl::Status& status, std::string_view payload);
  // Answer without waking a shutdown. `abandoning`: AbandonInflight's own answer (else an
  // answer to an abandoned call is dropped).
  // `counted`, `latency`: for an abandoned call, its method and time in flight (else taken
  // from inflight_).
  absl::Status SendAnswer(uint64_t id, const absl::Status& status, std::string_view payload,
                          bool abandoning = false, std::string counted = {},
                          absl::Duration latency = absl::Seconds(-1));

  std::weak_ptr<Server> server_;
  const std::shared_ptr<const ServerOptions> options_;  // shared with the server
  const std::shared_ptr<internal::ServerShared> shared_;
  Env& env_;
  const uint64_t id_;
  const std::string peer_host_;  // for max_sessions_per_host
  const std::shared_ptr<smac::MessageConnection> conn_;
  const std::shared_ptr<const testing::Plants> plants_;  // test hook; nullptr: none
  const std::optional<PeerIdentity> peer_identity_;

  mutable Mutex mu_;
  PeerSession peer_ ABSL_GUARDED_BY(mu_);            // handshake, ping/pong, idle timeout
  PeerTimer peer_timer_ ABSL_GUARDED_BY(mu_);        // for peer_
  bool closed_ ABSL_GUARDED_BY(mu_) = false;         // closed locally, or its close was reported
  bool close_counted_ ABSL_GUARDED_BY(mu_) = false;  // in the stats (once per session)
  // The calls handed to a handler and not answered yet, by id (max_inflight_calls; a duplicate
  // id is a protocol error): the method they count under and when they were handed over.
  struct Inflight {
    std::string method;
    absl::Time since;
  };
  std::map<uint64_t, Inflight> inflight_ ABSL_GUARDED_BY(mu_);
  // Calls AbandonInflight answered; a handler's late answer to one of them is dropped.
  std::set<uint64_t> abandoned_ ABSL_GUARDED_BY(mu_);
};

class Server : public std::enable_shared_from_this<Server> {
 public:
  // With options that ValidateServerOptions rejects, the server is created closed (the problem
  // is logged): Serve closes each connection at once and returns nullptr. Nothing aborts.
  static std::shared_ptr<Server> Create(Env& env, ServerOptions options = {});
  // Closes every session.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers (or replaces) the handler for `method`. Usually before serving. A method name that
  // is empty or over kMaxMethodLength bytes (no client can call it) or an empty handler is not
  // registered; the mistake is logged (an application's mistake never aborts).
  void Register(std::string method, MethodHandler handler);
  // Runs the protocol on an accepted connection; the server keeps the session until it closes.
  // nullptr (the connection closed at once, nothing sent) once the server is closed, or when
  // max_sessions / max_sessions_per_host are reached (the refusal is logged with the reason).
  std::shared_ptr<Session> Serve(std::shared_ptr<Connection> connection);
  // Open sessions, in the order they were served.
  std::vector<std::shared_ptr<Session>> Sessions() const;
  // Connections Serve refused because of max_sessions / max_sessions_per_host.
  uint64_t refused_connections() const;
  // What PushToAll did: how many sessions accepted the push, and each session it failed for
  // with why (FailedPrecondition: not ready yet or closing; else the connection's Write error).
  struct PushResult {
    size_t delivered = 0;
    std::vector<std::pair<uint64_t, absl::Status>> failed;  // (Session::id(), why), by id
  };
  // Pushes to every open session (Sessions(), in order). A session that is not ready yet counts
  // as failed: a client connecting concurrently may miss the push and should catch up once
  // ready (docs/SCENARIOS.md, "Catch up after reconnect").
  PushResult PushToAll(std::string_view method, std::string_view payload);
  // Closes every session (no on_session_closed callbacks). Does not wait for handlers running
  // on other threads (nor does the destructor); their Responders then return
  // FailedPrecondition, and the client has already seen the connection close.
  void Close();

  // Graceful shutdown. At once: Serve refuses new connections (close the Listener too, so the
  // kernel stops queueing them), and calls that arrive on open sessions are answered
  // kUnavailable ("the server is shutting down") without running a handler. The calls already
  // handed to handlers may still answer until `deadline`; at the deadline each one left is
  // answered kUnavailable (a handler's later answer is dropped). Then every session is closed,
  // which sends what is queued on it first (Connection::Close flushes), and `done` runs once
  // (on the thread of the last answer, the timer's, or inline here), with OK if every call was
  // answered by its handler, DeadlineExceeded naming how many were failed at the deadline.
  // A second Shutdown while one runs gets the first one's outcome too. After Shutdown the server
  // is closed, as after Close().
  void ShutdownAsync(absl::Time deadline, std::function<void(const absl::Status&)> done = {});
  // ShutdownAsync, waiting for it: blocks (on the simulator: runs the world) until done. May not
  // be called from a handler or any callback of this server's connections.
  absl::Status Shutdown(absl::Time deadline);
  bool shutting_down() const;

  // A snapshot of the counters (stats.h).
  ServerStats stats() const;

 private:
  friend class Session;
  friend void testing::SetPlants(Server& server, const testing::Plants& plants);
  explicit Server(Env& env, ServerOptions options);
  std::shared_ptr<const MethodHandler> Find(std::string_view method) const;
  // Output queued on every session now (for the memory budget).
  size_t QueuedOutputTotal() const;
  void Forget(uint64_t session_id);
  // While shutting down: once no session has a call in flight, finish the shutdown.
  void CheckDrained();
  // Closes every session and runs the shutdown callbacks (once), with `outcome`.
  void FinishShutdown(const absl::Status& outcome);
  void OnShutdownDeadline();

  Env& env_;
  const std::shared_ptr<const ServerOptions> options_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<const MethodHandler>, std::less<>> methods_
      ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, size_t, std::less<>> per_host_ ABSL_GUARDED_BY(mu_);  // open sessions
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  const std::shared_ptr<internal::ServerShared> shared_;
  // Shutdown in progress: the callbacks to run once it finishes, and its deadline timer.
  bool shutdown_finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status shutdown_outcome_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(const absl::Status&)>> shutdown_done_ ABSL_GUARDED_BY(mu_);
  std::optional<TimerId> shutdown_timer_ ABSL_GUARDED_BY(mu_);
  // Test hook: planted bugs for the sessions served from now on (nullptr: none).
  std::shared_ptr<const testing::Plants> plants_ ABSL_GUARDED_BY(mu_);
};

inline const std::optional<PeerIdentity>& Request::peer_identity() const {
  return session.peer_identity();
}

}  // namespace netlayer::rpc
