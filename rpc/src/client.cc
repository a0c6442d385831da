#include "netlayer/rpc/client.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/log.h"
#include "netlayer/rpc/handshake.h"
#include "wire.h"

namespace netlayer::rpc {
namespace {
// >0 while this thread runs one of a client's callbacks: blocking there would deadlock on posix
// (the reply could never be delivered) and is forbidden on the simulator.
thread_local int t_callback_depth = 0;

struct CallbackScope {
  CallbackScope() { ++t_callback_depth; }
  ~CallbackScope() { --t_callback_depth; }
};

void AssertMayBlock(const char* what) { NETLAYER_ASSERT(t_callback_depth == 0, what); }
}  // namespace

// ---------------------------------------------------------------------------------------------
// CallFuture

struct CallFuture::State {
  std::unique_ptr<Notification> done;
  std::optional<CallResult> result;  // written before done->Notify()
};

bool CallFuture::Ready() const { return state_ != nullptr && state_->done->HasBeenNotified(); }

const CallResult& CallFuture::Wait() const {
  NETLAYER_ASSERT(state_ != nullptr, "Wait on an empty CallFuture");
  AssertMayBlock("CallFuture::Wait blocks; it may not be called from an rpc callback");
  state_->done->WaitUntil(absl::InfiniteFuture());
  NETLAYER_ASSERT(state_->result.has_value(), "a notified future has its result");
  return *state_->result;
}

bool CallFuture::WaitUntil(absl::Time deadline) const {
  NETLAYER_ASSERT(state_ != nullptr, "WaitUntil on an empty CallFuture");
  AssertMayBlock("CallFuture::WaitUntil blocks; it may not be called from an rpc callback");
  return state_->done->WaitUntil(deadline);
}

// ---------------------------------------------------------------------------------------------
// Handlers

class Client::ConnHandler final : public smac::MessageHandler {
 public:
  ConnHandler(std::weak_ptr<Client> client, uint64_t generation)
      : client_(std::move(client)), generation_(generation) {}
  void MessageReceived(smac::MessageConnection&, std::string_view message) override {
    if (auto c = client_.lock()) c->OnMessage(generation_, message);
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    if (auto c = client_.lock()) c->OnClosed(generation_, reason);
  }

 private:
  std::weak_ptr<Client> client_;
  uint64_t generation_;
};

// One attempt of the client's connect schedule: a factory connect to one address, one round.
class Client::ConnectCallbacks final : public ConnectHandler {
 public:
  ConnectCallbacks(std::weak_ptr<Client> client, uint64_t epoch, Address address)
      : client_(std::move(client)), epoch_(epoch), address_(std::move(address)) {}
  void Connected(std::shared_ptr<Connection> connection) override {
    if (auto c = client_.lock()) {
      c->Attach(std::move(connection), epoch_);
    } else {
      connection->Close();
    }
  }
  void FailedConnection(const absl::Status& status) override {
    auto c = client_.lock();
    if (c == nullptr) return;
    // The factory ran a one-round schedule for this one address; its report wraps the reason in
    // "connect: no address connected in 1 round: round 1 <address>: ". The client's schedule
    // adds its own round and address.
    const std::string wrapper = absl::StrCat("connect: no address connected in 1 round: round 1 ",
                                             address_.ToString(), ": ");
    absl::string_view message = status.message();
    if (absl::StartsWith(message, wrapper)) message.remove_prefix(wrapper.size());
    c->OnAttemptFailed(epoch_, absl::Status(status.code(), message));
  }

 private:
  std::weak_ptr<Client> client_;
  const uint64_t epoch_;
  const Address address_;
};

// ---------------------------------------------------------------------------------------------
// Creation and teardown

Client::Client(Env& env, ClientOptions options) : env_(env), options_(std::move(options)) {
  NETLAYER_ASSERT(options_.codec != nullptr, "ClientOptions.codec must be set");
  NETLAYER_ASSERT(options_.min_version <= options_.max_version, "min_version <= max_version");
  NETLAYER_ASSERT(!options_.protocol.empty() && options_.protocol.size() <= kMaxProtocolNameLength,
                  "protocol name must be 1..255 bytes");
  NETLAYER_ASSERT(options_.max_pending_calls > 0, "max_pending_calls must be positive");
  NETLAYER_ASSERT(options_.heartbeat_interval >= absl::ZeroDuration(),
                  "heartbeat_interval must not be negative");
}

std::shared_ptr<Client> Client::Create(Env& env, std::shared_ptr<Connection> connection,
                                       ClientOptions options) {
  std::shared_ptr<Client> client(new Client(env, std::move(options)));
  client->Attach(std::move(connection), std::nullopt);
  return client;
}

absl::StatusOr<std::shared_ptr<Client>> Client::CreateReconnecting(Env& env,
                                                                   ClientConnectionFactory& factory,
                                                                   std::vector<Address> addresses,
                                                                   ConnectOptions connect_options,
                                                                   ClientOptions options) {
  // The schedule the client will drive (checks the jitter source too).
  if (absl::StatusOr<ConnectSchedule> s =
          ConnectSchedule::Create(addresses, connect_options, options.jitter_source);
      !s.ok()) {
    return s.status();
  }
  std::shared_ptr<Client> client(new Client(env, std::move(options)));
  client->factory_ = &factory;
  client->addresses_ = std::move(addresses);
  client->connect_options_ = connect_options;
  client->StartConnecting();
  return client;
}

Client::~Client() { Close(); }

void Client::Close() {
  std::vector<Completion> completions;
  std::shared_ptr<smac::MessageConnection> conn;
  std::shared_ptr<ConnectAttempt> attempt;
  std::optional<TimerId> handshake_timer, schedule_timer;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed && conn_ == nullptr && attempt_ == nullptr && pending_.empty() &&
        !schedule_timer_) {
      return;
    }
    phase_ = Phase::kClosed;
    ++generation_;  // events of the old connection are ignored from now on
    conn = std::move(conn_);
    attempt = std::move(attempt_);
    handshake_timer = std::exchange(handshake_timer_, std::nullopt);
    schedule_timer = std::exchange(schedule_timer_, std::nullopt);
    schedule_.reset();
    ++schedule_epoch_;  // and so are those of the connect schedule
    FailLocked([](const PendingCall&) { return true; }, absl::CancelledError("rpc client closed"),
               &completions);
    unsent_.clear();
    unsent_one_way_ = 0;
    WakeReadyWaitersLocked();
  }
  if (attempt) attempt->Cancel();
  if (conn) conn->Close();
  if (handshake_timer) env_.CancelTimer(*handshake_timer);
  if (schedule_timer) env_.CancelTimer(*schedule_timer);
  Complete(std::move(completions));
}

// ---------------------------------------------------------------------------------------------
// Connecting and the handshake

void Client::StartConnecting() {
  uint64_t epoch = 0;
  ConnectSchedule::Action action;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed) return;
    absl::StatusOr<ConnectSchedule> schedule =
        ConnectSchedule::Create(addresses_, connect_options_, options_.jitter_source);
    NETLAYER_ASSERT(schedule.ok(), "the connect request was validated at creation");
    schedule_.emplace(std::move(*schedule));
    epoch = ++schedule_epoch_;
    action = schedule_->Start(env_.Now());
  }
  Perform(epoch, std::move(action));
}

void Client::Perform(uint64_t epoch, ConnectSchedule::Action action) {
  using Kind = ConnectSchedule::Action::Kind;
  switch (action.kind) {
    case Kind::kTryAddress: {
      // One round to one address: the factory makes the connection, the schedule is ours.
      ConnectOptions one = connect_options_;
      one.max_attempts = 1;
      one.give_up_after = absl::InfiniteDuration();
      one.jitter = 0;
      one.attempt_timeout = std::max(action.attempt_deadline - env_.Now(), absl::Nanoseconds(1));
      const Address& address = addresses_[action.address_index];
      absl::StatusOr<std::shared_ptr<ConnectAttempt>> attempt = factory_->Connect(
          {address}, one, std::make_shared<ConnectCallbacks>(weak_from_this(), epoch, address));
      if (!attempt.ok()) {
        OnAttemptFailed(epoch, attempt.status());
        return;
      }
      {
        std::lock_guard lock(mu_);
        if (phase_ != Phase::kClosed && epoch == schedule_epoch_) {
          // (If it already connected, this keeps a finished attempt: harmless.)
          attempt_ = std::move(*attempt);
          return;
        }
      }
      // Closed or abandoned meanwhile. Cancel outside the lock: it may wait for a callback that
      // needs the lock.
      (*attempt)->Cancel();
      return;
    }
    case Kind::kWaitUntil: {
      std::lock_guard lock(mu_);
      if (phase_ == Phase::kClosed || epoch != schedule_epoch_) return;
      std::weak_ptr<Client> weak = weak_from_this();
      schedule_timer_ = env_.RunAt(action.wake_at, [weak, epoch] {
        if (auto c = weak.lock()) c->OnScheduleWakeUp(epoch);
      });
      return;
    }
    case Kind::kConnected:
      return;  // the handshake completed; nothing left to do
    case Kind::kFailed:
      OnConnectFailed(action.status);
      return;
  }
}

void Client::OnScheduleWakeUp(uint64_t epoch) {
  ConnectSchedule::Action action;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed || epoch != schedule_epoch_ || !schedule_) return;
    schedule_timer_.reset();  // this is the timer
    action = schedule_->OnWakeUp(env_.Now());
    epoch = ++schedule_epoch_;
  }
  Perform(epoch, std::move(action));
}

void Client::OnAttemptFailed(uint64_t epoch, const absl::Status& reason) {
  ConnectSchedule::Action action;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed || epoch != schedule_epoch_ || !schedule_) return;
    attempt_.reset();
    last_error_ = reason;
    action = schedule_->OnAttemptFailed(env_.Now(), reason);
    epoch = ++schedule_epoch_;
  }
  Perform(epoch, std::move(action));
}

void Client::Attach(std::shared_ptr<Connection> connection, std::optional<uint64_t> epoch) {
  std::shared_ptr<smac::MessageConnection> mc;
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed || (epoch && *epoch != schedule_epoch_)) {
      connection->Close();
      return;
    }
    attempt_.reset();
    generation = ++generation_;
    mc = smac::MessageConnection::Create(std::move(connection), options_.message_options);
    conn_ = mc;
    phase_ = Phase::kHandshaking;
    last_received_ = env_.Now();
    std::weak_ptr<Client> weak = weak_from_this();
    handshake_timer_ = env_.RunAt(env_.Now() + options_.handshake_timeout, [weak, generation] {
      if (auto c = weak.lock()) c->HandshakeTimeout(generation);
    });
  }
  // Without the lock: queued input (the server's hello) may be delivered right here.
  mc->SetHandler(std::make_shared<ConnHandler>(weak_from_this(), generation));
}

void Client::HandshakeTimeout(uint64_t generation) {
  std::shared_ptr<smac::MessageConnection> conn;
  {
    std::lock_guard lock(mu_);
    if (generation != generation_ || phase_ != Phase::kHandshaking) return;
    handshake_timer_.reset();
    conn = conn_;
  }
  if (conn) {
    conn->CloseWithReason(
        CloseReason(CloseReason::Kind::kTimeout,
                    absl::StrCat("rpc handshake: no server hello within ",
                                 absl::FormatDuration(options_.handshake_timeout))));
  }
}

void Client::OnHandshake(std::unique_lock<std::mutex>& lock, std::string_view message) {
  std::shared_ptr<smac::MessageConnection> conn = conn_;
  absl::StatusOr<ServerHello> hello = DecodeServerHello(message);
  absl::StatusOr<uint16_t> version =
      hello.ok()
          ? ChooseVersion(*hello, options_.protocol, options_.min_version, options_.max_version)
          : absl::StatusOr<uint16_t>(hello.status());
  if (!version.ok()) {
    lock.unlock();
    Log(LogLayer::kRpc).warn("rpc client: {}", version.status().ToString());
    conn->CloseWithProtocolError(std::string(version.status().message()));
    return;
  }
  const std::string reply = EncodeClientHello(ClientHello{options_.protocol, *version});
  if (absl::Status s = conn->Send(reply); !s.ok()) {
    return;  // the connection is going away; OnClosed handles it
  }
  version_ = *version;
  phase_ = Phase::kReady;
  if (schedule_) {
    // The connection proved healthy: the schedule ends, and the next loss starts a fresh one.
    (void)schedule_->OnAttemptSucceeded(env_.Now());
    schedule_.reset();
    ++schedule_epoch_;
  }
  std::optional<TimerId> handshake_timer = std::exchange(handshake_timer_, std::nullopt);
  // Flush what waited for the connection, in order, before any later call can be sent.
  std::vector<Completion> failed;
  while (!unsent_.empty()) {
    Outgoing out = std::move(unsent_.front());
    unsent_.pop_front();
    Envelope e;
    e.kind = out.kind;
    e.id = out.id;
    e.method = out.method;
    e.payload = out.payload;
    if (out.kind == MessageKind::kOneWay) {
      --unsent_one_way_;
      if (absl::Status s = SendLocked(e); !s.ok()) {
        Log(LogLayer::kRpc).warn("rpc client: one-way \"{}\" lost: {}", out.method, s.ToString());
      }
      continue;
    }
    auto it = pending_.find(out.id);
    if (it == pending_.end()) continue;  // expired while waiting
    if (absl::Status s = SendLocked(e); !s.ok()) {
      failed.push_back(Completion{std::move(it->second), s});
      pending_.erase(it);
    } else {
      it->second.generation = generation_;
    }
  }
  const uint64_t generation = generation_;
  WakeReadyWaitersLocked();
  lock.unlock();
  if (handshake_timer) env_.CancelTimer(*handshake_timer);
  if (options_.heartbeat_interval > absl::ZeroDuration()) {
    std::weak_ptr<Client> weak = weak_from_this();
    env_.RunAt(env_.Now() + options_.heartbeat_interval, [weak, generation] {
      if (auto c = weak.lock()) c->HeartbeatTick(generation);
    });
  }
  Complete(std::move(failed));
  if (options_.on_ready) {
    CallbackScope scope;
    options_.on_ready(*version);
  }
}

void Client::HeartbeatTick(uint64_t generation) {
  std::shared_ptr<smac::MessageConnection> conn;
  absl::Duration silent;
  {
    std::lock_guard lock(mu_);
    if (generation != generation_ || phase_ != Phase::kReady) return;
    silent = env_.Now() - last_received_;
    if (silent < options_.heartbeat_timeout) {
      Envelope ping;
      ping.kind = MessageKind::kPing;
      ping.id = next_id_++;
      (void)SendLocked(ping);  // a failure means the connection is closing anyway
      std::weak_ptr<Client> weak = weak_from_this();
      env_.RunAt(env_.Now() + options_.heartbeat_interval, [weak, generation] {
        if (auto c = weak.lock()) c->HeartbeatTick(generation);
      });
      return;
    }
    conn = conn_;
  }
  conn->CloseWithReason(
      CloseReason(CloseReason::Kind::kTimeout,
                  absl::StrCat("rpc heartbeat: nothing received from the server for ",
                               absl::FormatDuration(silent), " (limit ",
                               absl::FormatDuration(options_.heartbeat_timeout), ")")));
}

// ---------------------------------------------------------------------------------------------
// Incoming messages

void Client::OnMessage(uint64_t generation, std::string_view message) {
  std::unique_lock lock(mu_);
  if (generation != generation_ || conn_ == nullptr) return;  // an old connection
  last_received_ = env_.Now();
  if (phase_ == Phase::kHandshaking) {
    OnHandshake(lock, message);
    return;
  }
  std::shared_ptr<smac::MessageConnection> conn = conn_;
  absl::StatusOr<Envelope> e = options_.codec->Decode(message);
  if (!e.ok()) {
    lock.unlock();
    Log(LogLayer::kRpc)
        .warn("rpc client: malformed message from the server: {}", e.status().ToString());
    conn->CloseWithProtocolError(
        absl::StrCat("rpc: malformed message from the server: ", e.status().message()));
    return;
  }
  switch (e->kind) {
    case MessageKind::kReply:
    case MessageKind::kErrorReply: {
      auto it = pending_.find(e->id);
      if (it == pending_.end() || it->second.generation != generation) {
        // A reply to a call that expired or was never sent on this connection.
        Log(LogLayer::kRpc).debug("rpc client: reply to unknown call {} ignored", e->id);
        return;
      }
      std::vector<Completion> done;
      done.push_back(Completion{std::move(it->second), e->kind == MessageKind::kReply
                                                           ? CallResult(std::string(e->payload))
                                                           : CallResult(StatusFromEnvelope(*e))});
      pending_.erase(it);
      lock.unlock();
      Complete(std::move(done));
      return;
    }
    case MessageKind::kOneWay:
      lock.unlock();
      if (options_.on_push) {
        CallbackScope scope;
        options_.on_push(e->method, e->payload);
      }
      return;
    case MessageKind::kPing: {
      Envelope pong;
      pong.kind = MessageKind::kPong;
      pong.id = e->id;
      (void)SendLocked(pong);
      return;
    }
    case MessageKind::kPong:
      return;  // last_received_ is all a pong is for
    case MessageKind::kCall: {
      // This side serves no calls; say so rather than leaving the peer waiting.
      (void)SendLocked(
          ErrorEnvelope(e->id, absl::UnimplementedError("this rpc client serves no calls")));
      return;
    }
  }
}

void Client::OnClosed(uint64_t generation, const CloseReason& reason) {
  std::vector<Completion> completions;
  std::optional<TimerId> handshake_timer;
  bool reconnect = false;
  std::optional<uint64_t> failed_attempt;  // the schedule's epoch, if it closed in the handshake
  {
    std::lock_guard lock(mu_);
    if (generation != generation_ || conn_ == nullptr) return;
    if (phase_ == Phase::kHandshaking && schedule_) failed_attempt = schedule_epoch_;
    conn_.reset();
    last_error_ = reason.ToStatus();
    handshake_timer = std::exchange(handshake_timer_, std::nullopt);
    // Every call sent on this connection fails at once.
    FailLocked([generation](const PendingCall& c) { return c.generation == generation; },
               last_error_, &completions);
    if (factory_ != nullptr && phase_ != Phase::kClosed) {
      phase_ = Phase::kConnecting;
      reconnect = true;
    } else {
      phase_ = Phase::kClosed;
      FailLocked([](const PendingCall&) { return true; }, last_error_, &completions);
      unsent_.clear();
      unsent_one_way_ = 0;
      WakeReadyWaitersLocked();
    }
  }
  Log(LogLayer::kRpc)
      .info("rpc client: connection lost ({}); {} calls failed{}", reason.ToString(),
            completions.size(), reconnect ? "; reconnecting" : "");
  if (handshake_timer) env_.CancelTimer(*handshake_timer);
  Complete(std::move(completions));
  if (options_.on_disconnected) {
    CallbackScope scope;
    options_.on_disconnected(reason);
  }
  if (!reconnect) return;
  if (failed_attempt) {
    // Never healthy: a failed attempt of the same schedule (it backs off, max_attempts counts).
    OnAttemptFailed(
        *failed_attempt,
        absl::UnavailableError(absl::StrCat(
            "the connection closed before the rpc handshake completed: ", reason.ToString())));
  } else {
    StartConnecting();
  }
}

void Client::OnConnectFailed(const absl::Status& status) {
  std::vector<Completion> completions;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed) return;
    attempt_.reset();
    schedule_.reset();
    ++schedule_epoch_;
    phase_ = Phase::kClosed;
    last_error_ =
        absl::UnavailableError(absl::StrCat("rpc client gave up connecting: ", status.message()));
    FailLocked([](const PendingCall&) { return true; }, last_error_, &completions);
    unsent_.clear();
    unsent_one_way_ = 0;
    WakeReadyWaitersLocked();
  }
  Complete(std::move(completions));
}

// ---------------------------------------------------------------------------------------------
// Calls

absl::Status Client::SendLocked(const Envelope& e) {
  NETLAYER_ASSERT(conn_ != nullptr, "sending needs a connection");
  const std::string head = options_.codec->EncodeHead(e);
  const std::array<std::string_view, 2> pieces = {head, e.payload};
  return conn_->SendV(pieces);
}

uint64_t Client::StartCall(std::string_view method, std::string_view payload, absl::Time deadline,
                           bool arm_timer, CallCallback done) {
  NETLAYER_ASSERT(!method.empty() && method.size() <= kMaxMethodLength,
                  "a method name is 1..1024 bytes");
  absl::Status failed;
  uint64_t id = 0;
  std::shared_ptr<smac::MessageConnection> send_on;  // set: send now, outside the lock
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed) {
      failed = last_error_.ok() ? absl::CancelledError("rpc client closed")
                                : absl::Status(last_error_.code(), last_error_.message());
    } else if (pending_.size() + unsent_one_way_ >= options_.max_pending_calls) {
      failed = absl::ResourceExhaustedError(
          absl::StrCat("rpc client: ", options_.max_pending_calls,
                       " calls are already pending (max_pending_calls)"));
    } else if (deadline <= env_.Now()) {
      failed = absl::DeadlineExceededError(
          absl::StrCat("rpc call \"", internal::AV(method), "\": deadline already passed"));
    } else {
      id = next_id_++;
      PendingCall& call = pending_[id];
      call.method = std::string(method);
      call.done = std::move(done);
      if (arm_timer && deadline != absl::InfiniteFuture()) {
        std::weak_ptr<Client> weak = weak_from_this();
        call.timer = env_.RunAt(deadline, [weak, id] {
          if (auto c = weak.lock()) c->Expire(id);
        });
      }
      if (phase_ == Phase::kReady) {
        // Registered before it is sent, so the reply always finds it. Sent outside the lock so
        // callers on many threads and the reply path do not queue behind each other's writes.
        // Order is kept: kReady is set only after the calls that waited were flushed.
        call.generation = generation_;
        send_on = conn_;
      } else {
        unsent_.push_back(
            Outgoing{MessageKind::kCall, id, std::string(method), std::string(payload)});
      }
    }
  }
  if (send_on != nullptr) {
    Envelope e;
    e.kind = MessageKind::kCall;
    e.id = id;
    e.method = method;
    e.payload = payload;
    const std::string head = options_.codec->EncodeHead(e);
    const std::array<std::string_view, 2> pieces = {head, e.payload};
    if (absl::Status s = send_on->SendV(pieces); !s.ok()) {
      // Not sent (output queue full, or the connection is closing: then OnClosed may already
      // have failed the call, and there is nothing left to do).
      std::vector<Completion> completions;
      {
        std::lock_guard lock(mu_);
        auto it = pending_.find(id);
        if (it != pending_.end()) {
          completions.push_back(Completion{std::move(it->second), s});
          pending_.erase(it);
        }
      }
      Complete(std::move(completions));
    }
  }
  if (!failed.ok() && done) {
    CallbackScope scope;
    std::move(done)(CallResult(failed));
  }
  return id;
}

CallFuture Client::CallAsync(std::string_view method, std::string_view payload, absl::Time deadline,
                             CallCallback on_done) {
  CallFuture future;
  future.state_ = std::make_shared<CallFuture::State>();
  future.state_->done = env_.NewNotification();
  StartCall(method, payload, deadline, /*arm_timer=*/true,
            [state = future.state_, on_done = std::move(on_done)](CallResult r) mutable {
              if (on_done) std::move(on_done)(r);
              state->result = std::move(r);
              state->done->Notify();
            });
  return future;
}

CallResult Client::Call(std::string_view method, std::string_view payload, absl::Time deadline) {
  AssertMayBlock("Client::Call blocks; it may not be called from an rpc callback (use CallAsync)");
  auto state = std::make_shared<CallFuture::State>();
  state->done = env_.NewNotification();
  // No timer: this wait enforces the deadline (then Expire), which saves a timer per call.
  const uint64_t id =
      StartCall(method, payload, deadline, /*arm_timer=*/false, [state](CallResult r) {
        state->result = std::move(r);
        state->done->Notify();
      });
  if (!state->done->WaitUntil(deadline)) {
    // Deadline: expire the call here. If a completion is already under way, it notifies right
    // after.
    Expire(id);
    state->done->WaitUntil(absl::InfiniteFuture());
  }
  return std::move(*state->result);
}

absl::Status Client::Notify(std::string_view method, std::string_view payload) {
  NETLAYER_ASSERT(!method.empty() && method.size() <= kMaxMethodLength,
                  "a method name is 1..1024 bytes");
  std::shared_ptr<smac::MessageConnection> send_on;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kClosed) {
      return last_error_.ok() ? absl::CancelledError("rpc client closed")
                              : absl::Status(last_error_.code(), last_error_.message());
    }
    if (phase_ == Phase::kReady) {
      send_on = conn_;
    } else if (pending_.size() + unsent_one_way_ >= options_.max_pending_calls) {
      return absl::ResourceExhaustedError(
          absl::StrCat("rpc client: ", options_.max_pending_calls,
                       " calls are already pending (max_pending_calls)"));
    } else {
      unsent_.push_back(
          Outgoing{MessageKind::kOneWay, 0, std::string(method), std::string(payload)});
      ++unsent_one_way_;
      return absl::OkStatus();
    }
  }
  Envelope e;
  e.kind = MessageKind::kOneWay;
  e.id = 0;
  e.method = method;
  e.payload = payload;
  const std::string head = options_.codec->EncodeHead(e);
  const std::array<std::string_view, 2> pieces = {head, e.payload};
  return send_on->SendV(pieces);
}

void Client::Expire(uint64_t id) {
  std::vector<Completion> done;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    std::string message =
        absl::StrCat("rpc call \"", it->second.method, "\" (id ", id, "): deadline exceeded");
    if (it->second.generation == 0) {
      absl::StrAppend(&message, " while waiting for a connection",
                      last_error_.ok() ? "" : " (last error: ",
                      last_error_.ok() ? "" : last_error_.message(), last_error_.ok() ? "" : ")");
    }
    it->second.timer.reset();  // this is the timer
    done.push_back(Completion{std::move(it->second), absl::DeadlineExceededError(message)});
    pending_.erase(it);
  }
  Complete(std::move(done));
}

template <typename Pred>
void Client::FailLocked(Pred pred, const absl::Status& status, std::vector<Completion>* out) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (pred(it->second)) {
      out->push_back(Completion{std::move(it->second), status});
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void Client::Complete(std::vector<Completion> completions) {
  for (Completion& c : completions) {
    if (c.call.timer) env_.CancelTimer(*c.call.timer);
  }
  CallbackScope scope;
  for (Completion& c : completions) {
    if (c.call.done) std::move(c.call.done)(std::move(c.result));
  }
}

void Client::WakeReadyWaitersLocked() {
  for (auto& n : ready_waiters_) n->Notify();
  ready_waiters_.clear();
}

// ---------------------------------------------------------------------------------------------
// State

bool Client::WaitReady(absl::Time deadline) {
  AssertMayBlock("Client::WaitReady blocks; it may not be called from an rpc callback");
  std::shared_ptr<Notification> n;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kReady) return true;
    if (phase_ == Phase::kClosed) return false;
    n = env_.NewNotification();
    ready_waiters_.push_back(n);
  }
  n->WaitUntil(deadline);
  std::lock_guard lock(mu_);
  std::erase(ready_waiters_, n);
  return phase_ == Phase::kReady;
}

bool Client::ready() const {
  std::lock_guard lock(mu_);
  return phase_ == Phase::kReady;
}

uint16_t Client::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

size_t Client::pending_calls() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

absl::Status Client::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace netlayer::rpc
