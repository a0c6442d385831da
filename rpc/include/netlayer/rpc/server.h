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
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netlayer/core/close_reason.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/env.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/peer_session.h"
#include "netlayer/rpc/peer_timer.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::rpc {

class Server;
class Session;

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
};

using MethodHandler = std::function<void(const Request& request, Responder responder)>;

struct ServerOptions;
// InvalidArgument naming the problem: no codec, min_version > max_version, a protocol name not
// 1..255 bytes, a handshake_timeout that is not positive, a negative idle_timeout.
absl::Status ValidateServerOptions(const ServerOptions& options);

struct ServerOptions {
  std::string protocol = "netlayer-rpc";
  uint16_t min_version = 1;
  uint16_t max_version = 1;
  smac::MessageOptions message_options;
  const EnvelopeCodec* codec = &BinaryCodec();
  // The client's hello must arrive within this; else the session closes (kTimeout).
  absl::Duration handshake_timeout = absl::Seconds(30);
  // When positive, a session that receives nothing for this long is closed with kTimeout (pair it
  // with the client's heartbeat_interval, which keeps a live client talking).
  absl::Duration idle_timeout = absl::ZeroDuration();
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

 private:
  friend class Server;
  friend class Responder;
  class Handler;

  Session(std::weak_ptr<Server> server, std::shared_ptr<const ServerOptions> options, Env& env,
          uint64_t id, std::shared_ptr<smac::MessageConnection> conn);
  void Start();
  void OnMessage(std::string_view message);
  void OnClosed(const CloseReason& reason);
  void OnPeerTimer();
  // Arms the peer session's timer for its NextTimer(). REQUIRES mu_ held.
  void ArmPeerTimerLocked();
  // Sends the one answer to call `id`: a reply with `payload` if `status` is OK, else an error
  // reply. One that cannot be sent becomes an error reply RESOURCE_EXHAUSTED, and if that cannot
  // be sent either the connection closes (kError): never silence. Returns OK, the
  // ResourceExhausted sent instead, or FailedPrecondition if the connection was already closed.
  absl::Status Answer(uint64_t id, const absl::Status& status, std::string_view payload);

  std::weak_ptr<Server> server_;
  const std::shared_ptr<const ServerOptions> options_;  // shared with the server
  Env& env_;
  const uint64_t id_;
  const std::shared_ptr<smac::MessageConnection> conn_;

  mutable std::mutex mu_;
  PeerSession peer_;      // GUARDED_BY(mu_): handshake, ping/pong, idle timeout
  PeerTimer peer_timer_;  // GUARDED_BY(mu_): for peer_
  bool closed_ = false;   // GUARDED_BY(mu_): closed locally, or its close was reported
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
  // nullptr (the connection closed at once) once the server is closed.
  std::shared_ptr<Session> Serve(std::shared_ptr<Connection> connection);
  // Open sessions, in the order they were served.
  std::vector<std::shared_ptr<Session>> Sessions() const;
  // Pushes to every ready session; returns how many accepted the message.
  size_t PushToAll(std::string_view method, std::string_view payload);
  // Closes every session (no on_session_closed callbacks).
  void Close();

 private:
  friend class Session;
  explicit Server(Env& env, ServerOptions options);
  std::shared_ptr<const MethodHandler> Find(std::string_view method) const;
  void Forget(uint64_t session_id);

  Env& env_;
  const std::shared_ptr<const ServerOptions> options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const MethodHandler>, std::less<>>
      methods_;                                            // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
  uint64_t next_session_ = 1;                              // GUARDED_BY(mu_)
  bool closed_ = false;                                    // GUARDED_BY(mu_)
};

}  // namespace netlayer::rpc
