#include "netlayer/rpc/server.h"

#include <array>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "wire.h"

namespace netlayer::rpc {

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
                 Env& env, uint64_t id, std::shared_ptr<smac::MessageConnection> conn)
    : server_(std::move(server)),
      options_(std::move(options)),
      env_(env),
      id_(id),
      conn_(std::move(conn)),
      hello_{options_->protocol, options_->min_version, options_->max_version} {}

Session::~Session() { conn_->Close(); }

void Session::Start() {
  {
    std::lock_guard lock(mu_);
    last_received_ = env_.Now();
    std::weak_ptr<Session> weak = weak_from_this();
    timer_ = env_.RunAt(env_.Now() + options_->handshake_timeout, [weak] {
      auto s = weak.lock();
      if (!s) return;
      {
        std::lock_guard lock(s->mu_);
        if (s->phase_ != Phase::kHandshaking) return;
        s->timer_.reset();
      }
      s->conn_->CloseWithReason(
          CloseReason(CloseReason::Kind::kTimeout,
                      absl::StrCat("rpc handshake: no client hello within ",
                                   absl::FormatDuration(s->options_->handshake_timeout))));
    });
  }
  // The server speaks first.
  (void)conn_->Send(EncodeServerHello(hello_));
  conn_->SetHandler(std::make_shared<Handler>(weak_from_this()));
}

absl::Status Session::Send(const Envelope& e) {
  const std::string head = options_->codec->EncodeHead(e);
  const std::array<std::string_view, 2> pieces = {head, e.payload};
  return conn_->SendV(pieces);
}

absl::Status Session::Answer(uint64_t id, const absl::Status& status, std::string_view payload) {
  absl::Status sent;
  if (status.ok()) {
    Envelope e;
    e.kind = MessageKind::kReply;
    e.id = id;
    e.payload = payload;
    sent = Send(e);
  } else {
    sent = Send(ErrorEnvelope(id, status));
  }
  // Closed: the client fails the call itself (kUnavailable) when it sees the close.
  if (sent.ok() || sent.code() == absl::StatusCode::kFailedPrecondition) return sent;
  // InvalidArgument (over the frame limit) or ResourceExhausted (output queue full): answer with
  // a small error reply instead, or close, so the caller never waits for its deadline.
  const absl::Status instead = absl::ResourceExhaustedError(
      absl::StrCat("rpc server: the ", status.ok() ? "reply" : "error reply", " to call ", id,
                   " could not be sent: ", sent.message()));
  Log(LogLayer::kRpc).warn("rpc session {}: {}", id_, instead.ToString());
  if (!Send(ErrorEnvelope(id, instead)).ok()) {
    conn_->CloseWithReason(CloseReason(CloseReason::Kind::kError, std::string(instead.message())));
  }
  return instead;
}

absl::Status Session::Push(std::string_view method, std::string_view payload) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kReady) {
      return absl::FailedPreconditionError(
          phase_ == Phase::kClosed ? "rpc session closed" : "rpc session: handshake not done yet");
    }
  }
  Envelope e;
  e.kind = MessageKind::kOneWay;
  e.method = method;
  e.payload = payload;
  return Send(e);
}

void Session::OnMessage(std::string_view message) {
  std::unique_lock lock(mu_);
  if (phase_ == Phase::kClosed) return;
  last_received_ = env_.Now();
  if (phase_ == Phase::kHandshaking) {
    absl::StatusOr<ClientHello> hello = DecodeClientHello(message);
    absl::Status ok = hello.ok() ? CheckClientHello(*hello, hello_) : hello.status();
    if (!ok.ok()) {
      lock.unlock();
      Log(LogLayer::kRpc).warn("rpc session {}: {}", id_, ok.ToString());
      conn_->CloseWithProtocolError(std::string(ok.message()));
      return;
    }
    phase_ = Phase::kReady;
    version_ = hello->version;
    std::optional<TimerId> timer = std::exchange(timer_, std::nullopt);
    if (options_->idle_timeout > absl::ZeroDuration()) {
      std::weak_ptr<Session> weak = weak_from_this();
      timer_ = env_.RunAt(env_.Now() + options_->idle_timeout, [weak] {
        if (auto s = weak.lock()) s->IdleTick();
      });
    }
    lock.unlock();
    if (timer) env_.CancelTimer(*timer);
    if (options_->on_session_ready) options_->on_session_ready(*this);
    return;
  }
  lock.unlock();
  absl::StatusOr<Envelope> e = options_->codec->Decode(message);
  if (!e.ok()) {
    Log(LogLayer::kRpc).warn("rpc session {}: malformed message: {}", id_, e.status().ToString());
    conn_->CloseWithProtocolError(
        absl::StrCat("rpc: malformed message from the client: ", e.status().message()));
    return;
  }
  switch (e->kind) {
    case MessageKind::kCall:
    case MessageKind::kOneWay: {
      const bool one_way = e->kind == MessageKind::kOneWay;
      std::shared_ptr<Server> server = server_.lock();
      std::shared_ptr<const MethodHandler> handler = server ? server->Find(e->method) : nullptr;
      if (handler == nullptr) {
        const std::string why = absl::StrCat(
            "unknown method \"",
            absl::CHexEscape(absl::string_view(e->method.data(), e->method.size())), "\"");
        if (one_way) {
          Log(LogLayer::kRpc).warn("rpc session {}: one-way call to {} dropped", id_, why);
        } else {
          (void)Answer(e->id, absl::UnimplementedError(why), {});
        }
        return;
      }
      Request request{*this, e->method, e->payload, e->id, one_way};
      (*handler)(request, Responder(weak_from_this(), e->id, one_way));
      return;
    }
    case MessageKind::kPing: {
      Envelope pong;
      pong.kind = MessageKind::kPong;
      pong.id = e->id;
      (void)Send(pong);
      return;
    }
    case MessageKind::kPong:
      return;
    case MessageKind::kReply:
    case MessageKind::kErrorReply:
      conn_->CloseWithProtocolError(absl::StrCat("rpc: the client sent a ", KindName(e->kind),
                                                 " (id ", e->id,
                                                 ") but the server makes no calls"));
      return;
  }
}

void Session::IdleTick() {
  absl::Duration silent;
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kReady) return;
    silent = env_.Now() - last_received_;
    if (silent < options_->idle_timeout) {
      std::weak_ptr<Session> weak = weak_from_this();
      timer_ = env_.RunAt(last_received_ + options_->idle_timeout, [weak] {
        if (auto s = weak.lock()) s->IdleTick();
      });
      return;
    }
    timer_.reset();
  }
  conn_->CloseWithReason(CloseReason(
      CloseReason::Kind::kTimeout,
      absl::StrCat("rpc: nothing received from the client for ", absl::FormatDuration(silent),
                   " (idle_timeout ", absl::FormatDuration(options_->idle_timeout), ")")));
}

void Session::OnClosed(const CloseReason& reason) {
  std::optional<TimerId> timer;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    timer = std::exchange(timer_, std::nullopt);
  }
  if (timer) env_.CancelTimer(*timer);
  Log(LogLayer::kRpc).info("rpc session {} closed: {}", id_, reason.ToString());
  auto keep_alive = shared_from_this();
  if (auto server = server_.lock()) server->Forget(id_);
  if (options_->on_session_closed) options_->on_session_closed(*this, reason);
}

void Session::Close() {
  std::optional<TimerId> timer;
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kClosed;
    timer = std::exchange(timer_, std::nullopt);
  }
  if (timer) env_.CancelTimer(*timer);
  conn_->Close();
  if (auto server = server_.lock()) server->Forget(id_);
}

bool Session::IsOpen() const {
  std::lock_guard lock(mu_);
  return phase_ != Phase::kClosed && conn_->IsOpen();
}

bool Session::ready() const {
  std::lock_guard lock(mu_);
  return phase_ == Phase::kReady;
}

uint16_t Session::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

Address Session::peer_address() const { return conn_->connection().peer_address(); }

// ---------------------------------------------------------------------------------------------
// Server

std::shared_ptr<Server> Server::Create(Env& env, ServerOptions options) {
  return std::shared_ptr<Server>(new Server(env, std::move(options)));
}

Server::Server(Env& env, ServerOptions options)
    : env_(env), options_(std::make_shared<const ServerOptions>(std::move(options))) {
  NETLAYER_ASSERT(options_->codec != nullptr, "ServerOptions.codec must be set");
  NETLAYER_ASSERT(
      !options_->protocol.empty() && options_->protocol.size() <= kMaxProtocolNameLength,
      "protocol name must be 1..255 bytes");
  NETLAYER_ASSERT(options_->min_version <= options_->max_version, "min_version <= max_version");
}

Server::~Server() { Close(); }

void Server::Register(std::string method, MethodHandler handler) {
  NETLAYER_ASSERT(!method.empty() && method.size() <= kMaxMethodLength,
                  "a method name is 1..1024 bytes");
  NETLAYER_ASSERT(handler != nullptr, "a method needs a handler");
  std::lock_guard lock(mu_);
  methods_[std::move(method)] = std::make_shared<const MethodHandler>(std::move(handler));
}

std::shared_ptr<const MethodHandler> Server::Find(std::string_view method) const {
  std::lock_guard lock(mu_);
  auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : it->second;
}

std::shared_ptr<Session> Server::Serve(std::shared_ptr<Connection> connection) {
  auto conn = smac::MessageConnection::Create(std::move(connection), options_->message_options);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      conn->Close();
      return nullptr;
    }
    const uint64_t id = next_session_++;
    session.reset(new Session(weak_from_this(), options_, env_, id, conn));
    sessions_.emplace(id, session);
  }
  session->Start();
  return session;
}

std::vector<std::shared_ptr<Session>> Server::Sessions() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

size_t Server::PushToAll(std::string_view method, std::string_view payload) {
  size_t n = 0;
  for (const auto& s : Sessions()) {
    if (s->Push(method, payload).ok()) ++n;
  }
  return n;
}

void Server::Forget(uint64_t session_id) {
  std::shared_ptr<Session> dropped;  // released outside the lock
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  if (it != sessions_.end()) {
    dropped = std::move(it->second);
    sessions_.erase(it);
  }
}

void Server::Close() {
  std::map<uint64_t, std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    sessions.swap(sessions_);
  }
  for (auto& [id, s] : sessions) s->Close();
}

}  // namespace netlayer::rpc
