// rpc::Client: many threads making calls at once over one connection (ZEO's synchronous calls,
// seed goal 13), one API: a blocking Call and a future/callback form. No "modes".
//
// Semantics (DESIGN.md §6, docs/PROTOCOL.md):
//   - Calls are matched to replies by message id; ids are never reused by one client, so a reply
//     can never complete the wrong call, even across reconnects.
//   - A call's callback runs as its reply arrives, on the connection's delivery thread, in
//     arrival order with the server's one-way messages (pushes) around it: a reply is never
//     processed after a push that the server sent later (ZEO issues 155, 166, 209).
//   - Connection loss fails every call sent on that connection at once with kUnavailable.
//   - Calls made while not connected (before the handshake, or while a reconnecting client is
//     reconnecting) wait, in order, and are sent once connected; each fails with
//     kDeadlineExceeded at its deadline. A non-reconnecting client fails them with kUnavailable
//     when its connection is lost.
//   - Every call has a deadline (an Env timer); the number of calls waiting for a reply or for a
//     connection is bounded (ResourceExhausted past it).
//   - Blocking waits go through Env::NewNotification: on the simulator they run the world, on
//     posix they block the calling thread.
//
// Thread rules: every method may be called from any thread, concurrently. Call, CallFuture::Wait
// and WaitReady block, and may not be called from inside a callback of this client (asserted).
// Callbacks (CallCallback, on_push, on_ready, on_disconnected) run without internal locks held
// and may call any method except the blocking ones.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/core/generator.h"
#include "netlayer/core/mutex.h"
#include "netlayer/rpc/call_table.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/peer_options.h"
#include "netlayer/rpc/peer_session.h"
#include "netlayer/rpc/peer_timer.h"
#include "netlayer/rpc/stats.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc {

// The protocol, framing, codec and hello bound come from PeerOptions (peer_options.h).
class Client;
class Server;
namespace testing {
// Test hook (rpc/src/testing_plants.h, internal; not API): planted bugs for scenarios.
struct Plants;
void SetPlants(Client& client, const Plants& plants);
void SetPlants(Server& server, const Plants& plants);
}  // namespace testing

struct ClientOptions : PeerOptions {
  // Calls waiting for a reply or for a connection, plus one-way calls waiting for a connection.
  size_t max_pending_calls = 4096;
  // The server's hello must arrive within this; else the connection closes (kTimeout).
  absl::Duration handshake_timeout = absl::Seconds(30);
  // Heartbeat, on by default (off when zero): while connected, a ping every heartbeat_interval;
  // if nothing at all arrives for heartbeat_timeout, the connection is closed with CloseReason
  // kTimeout (a silent dead peer: a server whose machine lost power, a path partitioned for
  // good, a half-open TCP connection). The pings also keep the connection inside a server's
  // idle_timeout (ServerOptions: 60 s by default), so a live idle client is never dropped.
  //
  // The bound (docs/OPERATIONS.md, "A server that dies silently"): the close happens when the
  // client's clock reaches T + heartbeat_timeout, T being when the last whole message from the
  // server was received: no later (the check is a timer armed for exactly that moment, not a
  // poll at the pings) and no earlier. At that moment, in this order: every call sent on the
  // connection fails kUnavailable (their callbacks run), on_disconnected runs with the kTimeout
  // reason, and a reconnecting client starts its connect schedule (first attempt at once; calls
  // made from then on wait for the new connection, each until its deadline). Only a process
  // that is not running (a stopped host) notices later: when it runs again. In world time, a
  // clock that drifts by d runs the timeout as heartbeat_timeout / (1 + d).
  // A heartbeat_timeout shorter than heartbeat_interval closes a live idle connection: keep it
  // a few intervals long (the default is three).
  absl::Duration heartbeat_interval = absl::Seconds(10);
  absl::Duration heartbeat_timeout = absl::Seconds(30);
  // A one-way message from the server (a push), in arrival order with replies.
  std::function<void(std::string_view method, std::string_view payload)> on_push;
  // The handshake completed (version chosen) / a connection was lost.
  std::function<void(uint16_t version)> on_ready;
  std::function<void(const CloseReason& reason)> on_disconnected;
  // A reconnecting client ended by itself: its connect schedule gave up (max_attempts,
  // give_up_after) or a permanent failure ended it (retry_permanent_failures). `why` is what
  // last_error() says from now on. Not called for Close().
  std::function<void(const absl::Status& why)> on_gave_up;
  // Reconnecting clients whose ConnectOptions::jitter > 0 draw the jitter from this generator
  // (the world's under the simulator, an OS-seeded Xoshiro256 on posix); it must outlive the
  // client. Required then (CreateReconnecting fails InvalidArgument without it), unused otherwise.
  Generator* jitter_source = nullptr;
  // A connection of a reconnecting client that closes before its rpc handshake completed for a
  // permanent reason (CloseReason::permanent(): the server rejected our certificate, its
  // certificate failed verification, no TLS or rpc protocol or version in common) ends the
  // client at once: it closes, every waiting call fails kUnavailable naming that reason once,
  // and last_error() says it. True: such a close is retried like any other (e.g. while new
  // certificates are being rolled out).
  bool retry_permanent_failures = false;
};

// InvalidArgument naming the problem: no codec, min_version > max_version, a protocol name not
// 1..255 bytes, max_pending_calls of 0, a negative heartbeat_interval or a heartbeat_timeout that
// is not positive while the heartbeat is on, framing limits that do not agree
// (smac::ValidateMessageOptions against connection_max_output_bytes).
absl::Status ValidateClientOptions(const ClientOptions& options);

// The result of CallAsync. Copyable handle to shared state.
class CallFuture {
 public:
  CallFuture() = default;
  // True once the call completed (its callback, if any, has run).
  bool Ready() const;
  // Blocks until the call completes (the call's own deadline bounds this) and returns its result.
  // On an empty (default-constructed) future: FailedPrecondition at once.
  const CallResult& Wait() const;
  // Blocks until complete or `deadline`; true if complete (false at once if empty).
  bool WaitUntil(absl::Time deadline) const;
  bool valid() const { return state_ != nullptr; }

 private:
  friend class Client;
  struct State;
  std::shared_ptr<State> state_;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // A client over one connection (not reconnecting). The handshake starts at once. With options
  // that ValidateClientOptions rejects, the client is created closed: the connection is closed,
  // last_error() and every call say why (InvalidArgument). Nothing aborts.
  static std::shared_ptr<Client> Create(Env& env, std::shared_ptr<Connection> connection,
                                        ClientOptions options = {});
  // A client that connects with `factory` following `connect_options` (the core connect
  // schedule, which this client drives itself, one factory attempt per address tried), redoes
  // the handshake after every loss and stays usable. `factory` must outlive the client.
  // InvalidArgument for bad addresses or options.
  //
  // An attempt succeeds only when the rpc handshake completes: a connection that closes before
  // (a server that accepts and drops, speaks another protocol or version, or never says hello)
  // counts as a failed attempt of the same schedule, so the delay keeps growing and
  // max_attempts counts it. The delay starts again at min_delay only after a connection proved
  // healthy (its handshake completed). If the schedule gives up (max_attempts, give_up_after) the
  // client closes and every waiting call fails kUnavailable, naming every attempt's reason.
  static absl::StatusOr<std::shared_ptr<Client>> CreateReconnecting(
      Env& env, ClientConnectionFactory& factory, std::vector<Address> addresses,
      ConnectOptions connect_options, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocks until the reply, an error reply (its status), connection loss (kUnavailable), the
  // deadline (kDeadlineExceeded), too many pending calls (kResourceExhausted) or Close
  // (kCancelled). A method name that is empty or over kMaxMethodLength bytes fails at once with
  // InvalidArgument (so does every call of a client created with invalid ClientOptions).
  CallResult Call(std::string_view method, std::string_view payload,
                  absl::Time deadline = absl::InfiniteFuture());
  // Starts a call and returns at once. `on_done` (optional) runs exactly once with the result:
  // on the delivery thread as the reply arrives, on a timer at the deadline, or inline here if
  // the call fails at once. The future is complete after `on_done` returned.
  CallFuture CallAsync(std::string_view method, std::string_view payload,
                       absl::Time deadline = absl::InfiniteFuture(), CallCallback on_done = {});
  // A one-way call: queued in order with calls (sent once connected). OK means queued or sent.
  // kResourceExhausted past the bound; kUnavailable/kCancelled once the client is closed;
  // InvalidArgument for a method name that is empty or over kMaxMethodLength bytes.
  absl::Status Notify(std::string_view method, std::string_view payload);

  // Blocks until the handshake is done (true) or `deadline` passes / the client closes (false).
  bool WaitReady(absl::Time deadline);
  bool ready() const;
  // The version chosen on the current connection (0 before the first handshake).
  uint16_t version() const;
  // Calls waiting for a reply or a connection.
  size_t pending_calls() const;
  // Why the client is not ready, or why the last connection ended or connect failed: OK while
  // ready with no loss so far. While not ready it is never OK: the last connect failure or loss,
  // or, before any, what the current attempt is waiting for ("connecting to ...: no connection
  // yet", or "connected to ..., but the server has not answered the rpc handshake ... may be
  // speaking TLS"), so a WaitReady that returned false is explained by it.
  absl::Status last_error() const;
  // Closes the connection and stops reconnecting; waiting calls fail kCancelled (their callbacks
  // run inside Close). Idempotent. No on_disconnected for it, and no callback starts after Close
  // returns; Close does not wait for a callback already running on another thread (a threaded
  // backend's delivery thread). Callbacks get no Client argument: capture your own state that
  // holds the client (docs/SCENARIOS.md).
  void Close();
  // A snapshot of the counters (stats.h).
  ClientStats stats() const;

 private:
  friend void testing::SetPlants(Client& client, const testing::Plants& plants);
  class ConnHandler;
  class ConnectCallbacks;
  // The connection's phase (the calls' view of it is table_.link()).
  enum class Phase { kConnecting, kHandshaking, kReady, kClosed };

  Client(Env& env, ClientOptions options);
  // `arm_timer`: whether an Env timer enforces the deadline (the blocking Call enforces it
  // itself through its wait, saving a timer per call). Returns the call's id, 0 if it failed at
  // once (then `done` has run).
  uint64_t StartCall(std::string_view method, std::string_view payload, absl::Time deadline,
                     bool arm_timer, CallCallback done);
  // `epoch`: the schedule attempt that made the connection (reconnecting clients); a connection
  // of an abandoned attempt is closed.
  void Attach(std::shared_ptr<Connection> connection, std::optional<uint64_t> epoch);
  // Starts a fresh connect schedule (first attempt at once).
  void StartConnecting();
  // Carries out what the schedule said. REQUIRES mu_ not held.
  void Perform(uint64_t epoch, ConnectSchedule::Action action) ABSL_LOCKS_EXCLUDED(mu_);
  // The current attempt (its epoch) failed: a connect error or a close before the handshake.
  void OnAttemptFailed(uint64_t epoch, const absl::Status& reason);
  void OnScheduleWakeUp(uint64_t epoch);
  void OnConnectFailed(const absl::Status& status);
  void OnMessage(uint64_t generation, std::string_view message);
  void OnClosed(uint64_t generation, const CloseReason& reason);
  void OnPeerTimer(uint64_t generation);
  // Arms the peer session's timer for its NextTimer(). REQUIRES mu_ held, peer_ set.
  void ArmPeerTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the calls that waited for connection `generation`, in order, outside the lock; then
  // the link is open and ready waiters wake. REQUIRES mu_ not held.
  void Flush(const std::shared_ptr<smac::MessageConnection>& conn, uint64_t generation)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sends one call; a failed send fails the call. REQUIRES mu_ not held.
  void SendCall(smac::MessageConnection& conn, MessageKind kind, uint64_t id,
                std::string_view method, std::string_view payload);
  void Expire(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs completions in order, outside the lock. REQUIRES mu_ not held.
  void Complete(CallTable::Completions completions) ABSL_LOCKS_EXCLUDED(mu_);
  void Complete(std::optional<CallTable::Completion> completion);
  void WakeReadyWaitersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Env& env_;
  const ClientOptions options_;
  const absl::Status options_status_;  // ValidateClientOptions(options_)
  // Reconnecting clients only.
  ClientConnectionFactory* factory_ = nullptr;
  std::vector<Address> addresses_;
  ConnectOptions connect_options_;

  mutable Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kConnecting;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // current connection
  std::shared_ptr<smac::MessageConnection> conn_ ABSL_GUARDED_BY(mu_);
  std::optional<PeerSession> peer_ ABSL_GUARDED_BY(mu_);  // of conn_
  PeerTimer peer_timer_ ABSL_GUARDED_BY(mu_);             // for peer_
  std::shared_ptr<ConnectAttempt> attempt_ ABSL_GUARDED_BY(mu_);
  // The connect schedule in progress (reconnecting clients): from a loss (or creation) until a
  // handshake completes. Its attempt (a factory connect, then the handshake) and its waits carry
  // schedule_epoch_, so callbacks of an abandoned attempt change nothing.
  std::optional<ConnectSchedule> schedule_ ABSL_GUARDED_BY(mu_);
  uint64_t schedule_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<TimerId> schedule_timer_ ABSL_GUARDED_BY(mu_);
  CallTable table_ ABSL_GUARDED_BY(mu_);
  uint16_t version_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Notification>> ready_waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t connect_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t disconnects_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pushes_ ABSL_GUARDED_BY(mu_) = 0;
  // Since when the current attempt waits (connect or handshake), for last_error().
  absl::Time phase_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string attempt_address_ ABSL_GUARDED_BY(mu_);  // the address being tried or connected
  bool hello_received_ ABSL_GUARDED_BY(mu_) = false;  // on the current connection
  internal::StatsCounters counters_;  // its own lock
  // Test hook: planted bugs (nullptr: none, always in production).
  std::shared_ptr<const testing::Plants> plants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netlayer::rpc
