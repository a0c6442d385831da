#include "netlayer/rpc/server.h"

#include <atomic>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"
#include "send.h"
#include "testing_plants.h"

namespace netlayer::rpc {

namespace internal {
struct ServerShared {
  StatsCounters counters;
  // ServerOptions::memory_budget_bytes (nullptr: none), shared with every session's decoder.
  std::shared_ptr<smac::MemoryBudget> budget;
  std::atomic<uint64_t> reply_refusals{0};  // replies the budget turned into error replies
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> pushes{0};
};
}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Responder

Responder::Responder(Responder&& other) noexcept
    : session_(std::move(other.session_)),
      id_(other.id_),
      one_way_(other.one_way_),
      answered_(std::exchange(other.answered_, true)) {}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (!answered()) {
      (void)Fail(absl::InternalError("rpc server: the handler dropped the call without answering"));
    }
    session_ = std::move(other.session_);
    id_ = other.id_;
    one_way_ = other.one_way_;
    answered_ = std::exchange(other.answered_, true);
  }
  return *this;
}

Responder::~Responder() {
  if (!answered()) {
    (void)Fail(absl::InternalError("rpc server: the handler dropped the call without answering"));
  }
}

absl::Status Responder::Reply(std::string_view payload) {
  return Answer(absl::OkStatus(), payload);
}

absl::Status Responder::Fail(const absl::Status& status) {
  return Answer(status.ok() ? absl::UnknownError("handler failed with an OK status") : status, {});
}

absl::Status Responder::Answer(const absl::Status& status, std::string_view payload) {
  if (one_way_) return absl::OkStatus();
  if (answered_) {
    return absl::FailedPreconditionError(
        absl::StrCat("rpc server: call ", id_, " was already answered (a call is answered once)"));
  }
  answered_ = true;
  auto session = session_.lock();
  if (!session) return absl::FailedPreconditionError("rpc server: the session has ended");
  return session->Answer(id_, status, payload);
}

// ---------------------------------------------------------------------------------------------
// Session

class Session::Handler final : public smac::MessageHandler {
 public:
  explicit Handler(std::weak_ptr<Session> session) : session_(std::move(session)) {}
  void MessageReceived(smac::MessageConnection&, std::string_view message) override {
    if (auto s = session_.lock()) s->OnMessage(message);
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    if (auto s = session_.lock()) s->OnClosed(reason);
  }

 private:
  std::weak_ptr<Session> session_;
};

Session::Session(std::weak_ptr<Server> server, std::shared_ptr<const ServerOptions> options,
                 std::shared_ptr<internal::ServerShared> shared, Env& env, uint64_t id,
                 std::string peer_host, std::shared_ptr<smac::MessageConnection> conn,
                 std::shared_ptr<const testing::Plants> plants)
    : server_(std::move(server)),
      options_(std::move(options)),
      shared_(std::move(shared)),
      env_(env),
      id_(id),
      peer_host_(std::move(peer_host)),
      conn_(std::move(conn)),
      plants_(std::move(plants)),
      peer_identity_(conn_->connection().peer_identity()),
      peer_(PeerSession::Options{
          .role = PeerSession::Role::kServer,
          .protocol = options_->protocol,
          .min_version = options_->min_version,
          .max_version = options_->max_version,
          .codec = options_->codec,
          .handshake_timeout = options_->handshake_timeout,
          .ping_interval = absl::ZeroDuration(),
          .silence_limit = options_->idle_timeout,
      }),
      peer_timer_(env) {}

Session::~Session() { conn_->Close(); }

void Session::Start() {
  PeerSession::Step step;
  {
    MutexLock lock(mu_);
    step = peer_.Start(env_.Now());
    ArmPeerTimerLocked();
  }
  // The server speaks first.
  internal::SendControl(*conn_, step.send, &shared_->counters);
  conn_->SetHandler(std::make_shared<Handler>(weak_from_this()));
}

void Session::ArmPeerTimerLocked() {
  std::weak_ptr<Session> weak = weak_from_this();
  peer_timer_.Arm(peer_.NextTimer(), [weak] {
    if (auto s = weak.lock()) s->OnPeerTimer();
  });
}

void Session::OnPeerTimer() {
  PeerSession::Step step;
  {
    MutexLock lock(mu_);
    if (closed_) return;
    peer_timer_.Fired();
    const bool handshaking = peer_.phase() != PeerSession::Phase::kReady;
    step = peer_.OnTimer(env_.Now(), /*ping_id=*/0);
    ArmPeerTimerLocked();
    if (step.close) CountCloseLocked(handshaking, *step.close);  // before the peer sees it
  }
  internal::SendControl(*conn_, step.send, &shared_->counters);
  if (step.close) conn_->CloseWithReason(std::move(*step.close));
}

absl::Status Session::Answer(uint64_t id, const absl::Status& status, std::string_view payload) {
  absl::Status sent = SendAnswer(id, status, payload);
  // The last call in flight answered: a shutdown may finish now.
  if (shared_->draining.load()) {
    if (auto server = server_.lock()) server->CheckDrained();
  }
  return sent;
}

absl::Status Session::SendAnswer(uint64_t id, const absl::Status& status, std::string_view payload,
                                 bool abandoning, std::string counted, absl::Duration latency) {
  if (!abandoning) {
    MutexLock lock(mu_);
    if (abandoned_.erase(id) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rpc server: call ", id, " was answered UNAVAILABLE at the shutdown deadline"));
    }
    if (auto it = inflight_.find(id); it != inflight_.end()) {
      counted = std::move(it->second.method);
      latency = env_.Now() - it->second.since;
      inflight_.erase(it);
    }
  }
  absl::Status sent;
  if (status.ok() && shared_->budget != nullptr && payload.size() > smac::kUnbudgetedBytes) {
    // A large reply counts against the server's memory budget with every session's queued
    // output and the partial frames' buffers.
    size_t queued = 0;
    if (std::shared_ptr<Server> server = server_.lock()) queued = server->QueuedOutputTotal();
    const size_t held = shared_->budget->charged();
    const size_t limit = shared_->budget->limit();
    if (held > limit || queued > limit - held || payload.size() > limit - held - queued) {
      shared_->reply_refusals.fetch_add(1, std::memory_order_relaxed);
      shared_->counters.AddRefusal(Refusal::kMemoryBudgetReply);
      sent = absl::ResourceExhaustedError(absl::StrCat(
          "the server's memory budget (", limit, " bytes) is spent: ", held,
          " bytes held for partial frames and ", queued, " bytes of queued output, a reply of ",
          payload.size(), " bytes would pass it"));
    }
  }
  if (!sent.ok()) {
    // Refused above: answered with an error reply below.
  } else if (status.ok()) {
    Envelope e;
    e.kind = MessageKind::kReply;
    e.id = id;
    e.payload = payload;
    sent = internal::SendEnvelope(*conn_, *options_->codec, e, &shared_->counters);
  } else {
    sent = internal::SendEnvelope(*conn_, *options_->codec, ErrorEnvelope(id, status),
                                  &shared_->counters);
  }
  if (sent.ok()) shared_->counters.AddAnswer(counted, status.code(), latency);
  // Closed: the client fails the call itself (kUnavailable) when it sees the close.
  if (sent.ok() || sent.code() == absl::StatusCode::kFailedPrecondition) return sent;
  if (plants_ != nullptr && plants_->lose_reply_on_send_failure) return sent;  // planted bug
  // InvalidArgument (over the frame limit) or ResourceExhausted (output queue full): answer with
  // a small error reply instead, or close, so the caller never waits for its deadline.
  if (sent.code() == absl::StatusCode::kResourceExhausted) {
    NETLAYER_REACHABLE("rpc.server.reply-output-full");
    shared_->counters.AddRefusal(Refusal::kReplyOutputFull);
  } else {
    NETLAYER_REACHABLE("rpc.server.reply-over-frame-limit");
    shared_->counters.AddRefusal(Refusal::kReplyOverFrameLimit);
  }
  const absl::Status instead = absl::ResourceExhaustedError(
      absl::StrCat("rpc server: the ", status.ok() ? "reply" : "error reply", " to call ", id,
                   " could not be sent: ", sent.message()));
  Log(LogLayer::kRpc).warn("rpc session {}: {}", id_, instead.ToString());
  if (!internal::SendEnvelope(*conn_, *options_->codec, ErrorEnvelope(id, instead),
                              &shared_->counters)
           .ok()) {
    conn_->CloseWithReason(CloseReason(CloseReason::Kind::kError, std::string(instead.message())));
  } else {
    shared_->counters.AddAnswer(counted, instead.code(), latency);
  }
  return instead;
}

size_t Session::QueuedOutputBytes() const { return conn_->QueuedOutputBytes(); }

size_t Session::InflightCalls() const {
  MutexLock lock(mu_);
  return inflight_.size();
}

void Session::AbandonInflight(const absl::Status& status) {
  std::map<uint64_t, Inflight> calls;
  absl::Time now;
  {
    MutexLock lock(mu_);
    calls.swap(inflight_);
    // A handler's answer from now on is dropped.
    for (const auto& [id, call] : calls) abandoned_.insert(id);
    now = env_.Now();
  }
  for (auto& [id, call] : calls) {
    (void)SendAnswer(id, status, {}, /*abandoning=*/true, std::move(call.method), now - call.since);
  }
}

absl::Status Session::Push(std::string_view method, std::string_view payload) {
  {
    MutexLock lock(mu_);
    if (closed_ || peer_.phase() != PeerSession::Phase::kReady) {
      return absl::FailedPreconditionError(closed_ || peer_.phase() == PeerSession::Phase::kClosed
                                               ? "rpc session closed"
                                               : "rpc session: handshake not done yet");
    }
  }
  if (method.empty() || method.size() > kMaxMethodLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc: a method name is 1..", kMaxMethodLength, " bytes, got ", method.size()));
  }
  Envelope e;
  e.kind = MessageKind::kOneWay;
  e.method = method;
  e.payload = payload;
  absl::Status sent = internal::SendEnvelope(*conn_, *options_->codec, e, &shared_->counters);
  if (sent.ok()) shared_->pushes.fetch_add(1);
  return sent;
}

void Session::OnMessage(std::string_view message) {
  shared_->counters.AddBytesIn(message.size());
  PeerSession::Step step;
  bool refuse = false;    // over max_inflight_calls
  bool draining = false;  // the server is shutting down
  {
    MutexLock lock(mu_);
    if (closed_) return;
    const absl::Time now = env_.Now();
    step = peer_.OnMessage(now, message);
    if (step.ready) ArmPeerTimerLocked();  // the handshake deadline becomes the idle check
    if (step.message && step.message->kind == MessageKind::kCall) {
      const uint64_t id = step.message->id;
      if (inflight_.contains(id)) {
        // Its answer could not be told from the first one's: the client is broken.
        step.message.reset();
        step.close = CloseReason(
            CloseReason::Kind::kProtocolError,
            absl::StrCat("rpc: the client reused call id ", id, " while that call is outstanding"));
        peer_.OnClosed();
        Log(LogLayer::kRpc).warn("rpc session {}: {}", id_, step.close->detail());
      } else if (shared_->draining.load()) {
        draining = true;
      } else if (options_->max_inflight_calls != 0 &&
                 inflight_.size() >= options_->max_inflight_calls) {
        refuse = true;
      } else {
        inflight_.emplace(id, Inflight{std::string(step.message->method), now});
      }
    }
  }
  internal::SendControl(*conn_, step.send, &shared_->counters);
  if (step.close) {
    conn_->CloseWithReason(std::move(*step.close));
    return;
  }
  if (step.ready && options_->on_session_ready) options_->on_session_ready(*this);
  if (!step.message) return;
  if (step.message->kind == MessageKind::kOneWay && shared_->draining.load()) return;
  if (draining) {
    shared_->counters.AddRefusal(Refusal::kShuttingDownCall);
    (void)SendAnswer(step.message->id,
                     absl::UnavailableError("rpc server: the server is shutting down"), {});
    return;
  }
  if (refuse) {
    NETLAYER_REACHABLE("rpc.server.max-inflight-calls");
    shared_->counters.AddRefusal(Refusal::kMaxInflightCalls);
    (void)Answer(step.message->id,
                 absl::ResourceExhaustedError(absl::StrCat(
                     "rpc server: too many calls in flight on this connection (max_inflight_calls ",
                     options_->max_inflight_calls, "); call ", step.message->id, " refused")),
                 {});
    return;
  }
  const Envelope& e = *step.message;
  NETLAYER_ASSERT(e.kind == MessageKind::kCall || e.kind == MessageKind::kOneWay,
                  "a server session is handed calls only");
  const bool one_way = e.kind == MessageKind::kOneWay;
  std::shared_ptr<Server> server = server_.lock();
  std::shared_ptr<const MethodHandler> handler = server ? server->Find(e.method) : nullptr;
  shared_->counters.AddCall(handler != nullptr ? e.method : std::string_view("(unknown)"));
  if (handler == nullptr) {
    const std::string why =
        absl::StrCat("unknown method \"",
                     absl::CHexEscape(absl::string_view(e.method.data(), e.method.size())), "\"");
    if (one_way) {
      Log(LogLayer::kRpc).warn("rpc session {}: one-way call to {} dropped", id_, why);
    } else {
      {
        // Counted under "(unknown)", as its call (the rare path: a second lock is fine here).
        MutexLock lock(mu_);
        if (auto it = inflight_.find(e.id); it != inflight_.end()) it->second.method = "(unknown)";
      }
      (void)Answer(e.id, absl::UnimplementedError(why), {});
    }
    return;
  }
  Request request{*this, e.method, e.payload, e.id, one_way};
  (*handler)(request, Responder(weak_from_this(), e.id, one_way));
}

void Session::CountCloseLocked(bool handshaking, const CloseReason& reason) {
  if (std::exchange(close_counted_, true)) return;
  shared_->counters.AddClose(handshaking, KindName(reason.kind()));
  if (reason.kind() == CloseReason::Kind::kTimeout) {
    shared_->counters.AddRefusal(handshaking ? Refusal::kHandshakeTimeout : Refusal::kIdleTimeout);
  } else if (reason.kind() == CloseReason::Kind::kProtocolError &&
             absl::StrContains(reason.detail(), "exceeds the limit of")) {
    shared_->counters.AddRefusal(handshaking ? Refusal::kHelloTooLarge : Refusal::kFrameTooLarge);
  }
}

void Session::OnClosed(const CloseReason& reason) {
  {
    MutexLock lock(mu_);
    if (closed_) return;
    CountCloseLocked(peer_.phase() != PeerSession::Phase::kReady, reason);
    closed_ = true;
    peer_.OnClosed();
    peer_timer_.Cancel();
  }
  Log(LogLayer::kRpc).info("rpc session {} closed: {}", id_, reason.ToString());
  auto keep_alive = shared_from_this();
  if (auto server = server_.lock()) server->Forget(id_);
  if (options_->on_session_closed) options_->on_session_closed(*this, reason);
}

void Session::Close() {
  {
    MutexLock lock(mu_);
    closed_ = true;
    peer_.OnClosed();
    peer_timer_.Cancel();
  }
  conn_->Close();
  if (auto server = server_.lock()) server->Forget(id_);
}

bool Session::IsOpen() const {
  MutexLock lock(mu_);
  return !closed_ && conn_->IsOpen();
}

bool Session::ready() const {
  MutexLock lock(mu_);
  return !closed_ && peer_.phase() == PeerSession::Phase::kReady;
}

uint16_t Session::version() const {
  MutexLock lock(mu_);
  return peer_.version();
}

Address Session::peer_address() const { return conn_->connection().peer_address(); }

// ---------------------------------------------------------------------------------------------
// Server

std::shared_ptr<Server> Server::Create(Env& env, ServerOptions options) {
  return std::shared_ptr<Server>(new Server(env, std::move(options)));
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (absl::Status s = CheckHelloSettings(o.codec, o.protocol, o.min_version, o.max_version);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rpc server: ", s.message()));
  }
  if (o.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rpc server: handshake_timeout must be positive");
  }
  if (o.idle_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rpc server: idle_timeout must not be negative");
  }
  {
    smac::MessageOptions framing = o.message_options;
    framing.max_first_message_size = 0;  // replaced by max_hello_size
    if (absl::Status s = smac::ValidateMessageOptions(framing, o.connection_max_output_bytes);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("rpc server: ", s.message()));
    }
  }
  if (o.max_hello_size != 0 && o.max_hello_size < 8 + o.protocol.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc server: max_hello_size ", o.max_hello_size,
                     " is smaller than the client hello of protocol \"", o.protocol, "\" (",
                     8 + o.protocol.size(), " bytes)"));
  }
  return absl::OkStatus();
}

Server::Server(Env& env, ServerOptions options)
    : env_(env),
      options_(std::make_shared<const ServerOptions>(std::move(options))),
      shared_(std::make_shared<internal::ServerShared>()) {
  if (options_->memory_budget_bytes > 0) {
    shared_->budget = std::make_shared<smac::MemoryBudget>(options_->memory_budget_bytes);
  }
  if (absl::Status s = ValidateServerOptions(*options_); !s.ok()) {
    // An application's mistake: the server serves nothing, and says why; nothing aborts.
    Log(LogLayer::kRpc).error("{}; the server is closed", s.ToString());
    closed_ = true;
  }
}

Server::~Server() { Close(); }

void Server::Register(std::string method, MethodHandler handler) {
  if (method.empty() || method.size() > kMaxMethodLength || handler == nullptr) {
    Log(LogLayer::kRpc)
        .error("rpc server: method \"{}\" ({} bytes) not registered: {}",
               absl::CHexEscape(method.substr(0, 64)), method.size(),
               handler == nullptr ? "no handler" : "a method name is 1..1024 bytes");
    return;
  }
  MutexLock lock(mu_);
  methods_[std::move(method)] = std::make_shared<const MethodHandler>(std::move(handler));
}

std::shared_ptr<const MethodHandler> Server::Find(std::string_view method) const {
  MutexLock lock(mu_);
  auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : it->second;
}

std::shared_ptr<Session> Server::Serve(std::shared_ptr<Connection> connection) {
  const Address peer = connection->peer_address();
  std::string host = peer.kind() == Address::Kind::kUnix ? "unix" : peer.host();
  smac::MessageOptions message_options = options_->message_options;
  message_options.max_first_message_size = options_->max_hello_size;
  message_options.budget = shared_->budget;
  auto conn = smac::MessageConnection::Create(std::move(connection), message_options);
  std::shared_ptr<Session> session;
  std::string refused;
  {
    MutexLock lock(mu_);
    if (closed_) {
      conn->Close();
      return nullptr;
    }
    if (shared_->draining.load()) {
      ++refused_;
      shared_->counters.AddRefusal(Refusal::kShuttingDown);
      conn->Close();
      return nullptr;
    }
    const size_t from_host = per_host_.contains(host) ? per_host_[host] : 0;
    if (options_->max_sessions != 0 && sessions_.size() >= options_->max_sessions) {
      NETLAYER_REACHABLE("rpc.server.max-sessions");
      shared_->counters.AddRefusal(Refusal::kMaxSessions);
      refused = absl::StrCat(sessions_.size(), " sessions are open (max_sessions ",
                             options_->max_sessions, ")");
    } else if (options_->max_sessions_per_host != 0 &&
               from_host >= options_->max_sessions_per_host) {
      shared_->counters.AddRefusal(Refusal::kMaxSessionsPerHost);
      refused =
          absl::StrCat(from_host, " sessions from ", host, " are open (max_sessions_per_host ",
                       options_->max_sessions_per_host, ")");
    }
    if (!refused.empty()) {
      ++refused_;
    } else {
      const uint64_t id = next_session_++;
      ++accepted_;
      session.reset(
          new Session(weak_from_this(), options_, shared_, env_, id, host, conn, plants_));
      sessions_.emplace(id, session);
      ++per_host_[host];
    }
  }
  if (!refused.empty()) {
    Log(LogLayer::kRpc)
        .warn("rpc server: refusing the connection from {}: {}", peer.ToString(), refused);
    conn->Close();
    return nullptr;
  }
  session->Start();
  return session;
}

uint64_t Server::refused_connections() const {
  MutexLock lock(mu_);
  return refused_;
}

std::vector<std::shared_ptr<Session>> Server::Sessions() const {
  MutexLock lock(mu_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

Server::PushResult Server::PushToAll(std::string_view method, std::string_view payload) {
  PushResult result;
  for (const auto& s : Sessions()) {
    absl::Status status = s->Push(method, payload);
    if (status.ok()) {
      ++result.delivered;
    } else {
      result.failed.emplace_back(s->id(), std::move(status));
    }
  }
  return result;
}

void Server::Forget(uint64_t session_id) {
  std::shared_ptr<Session> dropped;  // released outside the lock
  MutexLock lock(mu_);
  auto it = sessions_.find(session_id);
  if (it != sessions_.end()) {
    dropped = std::move(it->second);
    sessions_.erase(it);
    auto host = per_host_.find(dropped->peer_host_);
    NETLAYER_ASSERT(host != per_host_.end() && host->second > 0, "per-host session accounting");
    if (--host->second == 0) per_host_.erase(host);
  }
}

void Server::Close() {
  std::map<uint64_t, std::shared_ptr<Session>> sessions;
  {
    MutexLock lock(mu_);
    closed_ = true;
    sessions.swap(sessions_);
    per_host_.clear();
  }
  for (auto& [id, s] : sessions) s->Close();
}

void testing::SetPlants(Server& server, const testing::Plants& plants) {
  MutexLock lock(server.mu_);
  server.plants_ = std::make_shared<const testing::Plants>(plants);
}

}  // namespace netlayer::rpc

namespace netlayer::rpc {

// ---------------------------------------------------------------------------------------------
// Graceful shutdown and stats

bool Server::shutting_down() const { return shared_->draining.load(); }

void Server::ShutdownAsync(absl::Time deadline, std::function<void(const absl::Status&)> done) {
  std::optional<absl::Status> finished;  // set: already over, answer at once
  bool first = false;
  {
    MutexLock lock(mu_);
    if (shutdown_finished_) {
      finished = shutdown_outcome_;
    } else if (closed_ && !shared_->draining.load()) {
      finished = absl::OkStatus();  // closed before: nothing in flight is answered any more
      shutdown_finished_ = true;
    } else {
      if (done) shutdown_done_.push_back(std::move(done));
      first = !shared_->draining.exchange(true);
    }
  }
  if (finished) {
    if (done) done(*finished);
    return;
  }
  if (!first) return;  // a shutdown is under way; `done` runs when it finishes
  Log(LogLayer::kRpc)
      .info("rpc server: shutting down (deadline in {})",
            absl::FormatDuration(deadline - env_.Now()));
  if (deadline != absl::InfiniteFuture()) {
    std::weak_ptr<Server> weak = weak_from_this();
    const TimerId timer = env_.RunAt(deadline, [weak] {
      if (auto s = weak.lock()) s->OnShutdownDeadline();
    });
    MutexLock lock(mu_);
    if (!shutdown_finished_) shutdown_timer_ = timer;
  }
  CheckDrained();
}

absl::Status Server::Shutdown(absl::Time deadline) {
  std::shared_ptr<Notification> done = env_.NewNotification();
  auto outcome = std::make_shared<absl::Status>();
  ShutdownAsync(deadline, [done, outcome](const absl::Status& s) {
    *outcome = s;  // published by Notify (a mutex on posix)
    done->Notify();
  });
  done->WaitUntil(absl::InfiniteFuture());
  return *outcome;
}

void Server::CheckDrained() {
  {
    MutexLock lock(mu_);
    if (shutdown_finished_) return;
  }
  for (const auto& session : Sessions()) {
    if (session->InflightCalls() > 0) return;
  }
  FinishShutdown(absl::OkStatus());
}

void Server::OnShutdownDeadline() {
  size_t abandoned = 0;
  const absl::Status why = absl::UnavailableError(
      "rpc server: shutting down; the call was not answered by the shutdown deadline");
  for (const auto& session : Sessions()) {
    abandoned += session->InflightCalls();
    session->AbandonInflight(why);
  }
  FinishShutdown(abandoned == 0
                     ? absl::OkStatus()
                     : absl::DeadlineExceededError(absl::StrCat(
                           "rpc server: ", abandoned,
                           " calls were answered UNAVAILABLE at the shutdown deadline")));
}

void Server::FinishShutdown(const absl::Status& outcome) {
  std::vector<std::function<void(const absl::Status&)>> callbacks;
  std::optional<TimerId> timer;
  {
    MutexLock lock(mu_);
    if (shutdown_finished_) return;
    shutdown_finished_ = true;
    shutdown_outcome_ = outcome;
    callbacks.swap(shutdown_done_);
    timer = shutdown_timer_;
  }
  if (timer) env_.CancelTimer(*timer);
  Log(LogLayer::kRpc).info("rpc server: shut down: {}", outcome.ToString());
  Close();  // each session's connection sends what is queued, then closes
  for (auto& callback : callbacks) callback(outcome);
}

size_t Server::QueuedOutputTotal() const {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    MutexLock lock(mu_);
    for (const auto& [id, s] : sessions_) sessions.push_back(s);
  }
  size_t total = 0;
  for (const auto& s : sessions) total += s->QueuedOutputBytes();
  return total;
}

ServerStats Server::stats() const {
  ServerStats out;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    MutexLock lock(mu_);
    out.sessions_open = sessions_.size();
    out.sessions_accepted = accepted_;
    out.sessions_refused = refused_;
    for (const auto& [id, s] : sessions_) sessions.push_back(s);
  }
  for (const auto& s : sessions) {
    out.inflight_calls += s->InflightCalls();
    out.queued_output_bytes += s->QueuedOutputBytes();
  }
  if (shared_->budget != nullptr) {
    out.memory_budget_bytes = shared_->budget->limit();
    out.frame_buffer_bytes = shared_->budget->charged();
    out.peak_frame_buffer_bytes = shared_->budget->peak_charged();
    out.budget_refusals = shared_->budget->refusals() + shared_->reply_refusals.load();
  }
  out.pushes = shared_->pushes.load();
  out.shutting_down = shared_->draining.load();
  shared_->counters.Fill(out.calls_by_method, out.calls_by_status, out.bytes_in, out.bytes_out);
  shared_->counters.FillMethods(out.methods);
  shared_->counters.FillRefusals(out.refusals);
  if (shared_->budget != nullptr) {
    out.refusals[RefusalName(Refusal::kMemoryBudgetFrame)] += shared_->budget->refusals();
  }
  shared_->counters.FillCloses(out.handshake_failures, out.session_closes);
  return out;
}

}  // namespace netlayer::rpc
