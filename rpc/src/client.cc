#include "netlayer/rpc/client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/log.h"
#include "netlayer/core/probe.h"
#include "netlayer/rpc/handshake.h"
#include "send.h"
#include "testing_plants.h"

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

// A connection whose server never said hello: it may speak TLS (a plaintext client of a TLS
// server: both wait for the other to speak) or something else.
std::string SilentServerText() {
  return "the server did not answer the rpc handshake (no hello); it may be speaking TLS or "
         "another protocol";
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// CallFuture

struct CallFuture::State {
  std::unique_ptr<Notification> done;
  std::optional<CallResult> result;  // written before done->Notify()
};

bool CallFuture::Ready() const { return state_ != nullptr && state_->done->HasBeenNotified(); }

const CallResult& CallFuture::Wait() const {
  if (state_ == nullptr) {
    static const CallResult* const kEmpty = new CallResult(
        absl::FailedPreconditionError("rpc: Wait on an empty CallFuture (no call was started)"));
    return *kEmpty;
  }
  AssertMayBlock("CallFuture::Wait blocks; it may not be called from an rpc callback");
  state_->done->WaitUntil(absl::InfiniteFuture());
  NETLAYER_ASSERT(state_->result.has_value(), "a notified future has its result");
  return *state_->result;
}

bool CallFuture::WaitUntil(absl::Time deadline) const {
  if (state_ == nullptr) return false;
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

absl::Status ValidateClientOptions(const ClientOptions& o) {
  if (absl::Status s = CheckHelloSettings(o.codec, o.protocol, o.min_version, o.max_version);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rpc client: ", s.message()));
  }
  if (o.max_pending_calls == 0) {
    return absl::InvalidArgumentError("rpc client: max_pending_calls must be positive");
  }
  if (o.heartbeat_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rpc client: heartbeat_interval must not be negative");
  }
  if (o.heartbeat_interval > absl::ZeroDuration() && o.heartbeat_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rpc client: heartbeat_timeout must be positive");
  }
  if (o.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rpc client: handshake_timeout must be positive");
  }
  {
    smac::MessageOptions framing = o.message_options;
    framing.max_first_message_size = 0;  // replaced by max_hello_size
    if (absl::Status s = smac::ValidateMessageOptions(framing, o.connection_max_output_bytes);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("rpc client: ", s.message()));
    }
  }
  if (o.max_hello_size != 0 && o.max_hello_size < 10 + o.protocol.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc client: max_hello_size ", o.max_hello_size,
                     " is smaller than the server hello of protocol \"", o.protocol, "\" (",
                     10 + o.protocol.size(), " bytes)"));
  }
  return absl::OkStatus();
}

Client::Client(Env& env, ClientOptions options)
    : env_(env),
      options_(std::move(options)),
      options_status_(ValidateClientOptions(options_)),
      peer_timer_(env),
      table_(std::max<size_t>(options_.max_pending_calls, 1)) {
  if (!options_status_.ok()) {
    // An application's mistake: every call fails with it; nothing aborts.
    Log(LogLayer::kRpc).error("{}", options_status_.ToString());
    phase_ = Phase::kClosed;
    last_error_ = options_status_;
    (void)table_.Close(options_status_);
  }
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
  if (absl::Status s = ValidateClientOptions(options); !s.ok()) return s;
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
  CallTable::Completions completions;
  std::shared_ptr<smac::MessageConnection> conn;
  std::shared_ptr<ConnectAttempt> attempt;
  std::optional<TimerId> schedule_timer;
  {
    MutexLock lock(mu_);
    phase_ = Phase::kClosed;
    ++generation_;  // events of the old connection are ignored from now on
    conn = std::move(conn_);
    peer_.reset();
    peer_timer_.Cancel();
    attempt = std::move(attempt_);
    schedule_timer = std::exchange(schedule_timer_, std::nullopt);
    schedule_.reset();
    ++schedule_epoch_;  // and so are those of the connect schedule
    completions = table_.Close(absl::CancelledError("rpc client closed"));
    WakeReadyWaitersLocked();
  }
  if (attempt) attempt->Cancel();
  if (conn) conn->Close();
  if (schedule_timer) env_.CancelTimer(*schedule_timer);
  Complete(std::move(completions));
}

// ---------------------------------------------------------------------------------------------
// Connecting: the core connect schedule, driven here (reconnecting clients)

void Client::StartConnecting() {
  uint64_t epoch = 0;
  ConnectSchedule::Action action;
  {
    MutexLock lock(mu_);
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
      {
        MutexLock lock(mu_);
        phase_since_ = env_.Now();
        attempt_address_ = address.ToString();
      }
      absl::StatusOr<std::shared_ptr<ConnectAttempt>> attempt = factory_->Connect(
          {address}, one, std::make_shared<ConnectCallbacks>(weak_from_this(), epoch, address));
      if (!attempt.ok()) {
        OnAttemptFailed(epoch, attempt.status());
        return;
      }
      {
        MutexLock lock(mu_);
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
      MutexLock lock(mu_);
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
    MutexLock lock(mu_);
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
    MutexLock lock(mu_);
    if (phase_ == Phase::kClosed || epoch != schedule_epoch_ || !schedule_) return;
    attempt_.reset();
    last_error_ = reason;
    ++connect_failures_;
    action = schedule_->OnAttemptFailed(env_.Now(), reason);
    epoch = ++schedule_epoch_;
  }
  Perform(epoch, std::move(action));
}

void Client::OnConnectFailed(const absl::Status& status) {
  CallTable::Completions completions;
  absl::Status why;
  {
    MutexLock lock(mu_);
    if (phase_ == Phase::kClosed) return;
    attempt_.reset();
    schedule_.reset();
    ++schedule_epoch_;
    phase_ = Phase::kClosed;
    last_error_ =
        absl::UnavailableError(absl::StrCat("rpc client gave up connecting: ", status.message()));
    completions = table_.Close(last_error_);
    WakeReadyWaitersLocked();
    why = last_error_;
  }
  Complete(std::move(completions));
  if (options_.on_gave_up) {
    CallbackScope scope;
    options_.on_gave_up(why);
  }
}

// ---------------------------------------------------------------------------------------------
// One connection: its peer session (handshake, heartbeat, ping/pong) and its messages

void Client::Attach(std::shared_ptr<Connection> connection, std::optional<uint64_t> epoch) {
  std::shared_ptr<smac::MessageConnection> mc;
  uint64_t generation;
  {
    MutexLock lock(mu_);
    if (phase_ == Phase::kClosed || (epoch && *epoch != schedule_epoch_)) {
      connection->Close();
      return;
    }
    NETLAYER_ASSERT(conn_ == nullptr && phase_ == Phase::kConnecting,
                    "a client attaches one connection at a time");
    attempt_.reset();
    generation = ++generation_;
    phase_since_ = env_.Now();
    attempt_address_ = connection->peer_address().ToString();
    hello_received_ = false;
    smac::MessageOptions message_options = options_.message_options;
    message_options.max_first_message_size = options_.max_hello_size;
    mc = smac::MessageConnection::Create(std::move(connection), message_options);
    conn_ = mc;
    phase_ = Phase::kHandshaking;
    PeerSession::Options peer;
    peer.role = PeerSession::Role::kClient;
    peer.protocol = options_.protocol;
    peer.min_version = options_.min_version;
    peer.max_version = options_.max_version;
    peer.codec = options_.codec;
    peer.handshake_timeout = options_.handshake_timeout;
    peer.ping_interval = options_.heartbeat_interval;
    if (options_.heartbeat_interval > absl::ZeroDuration()) {
      peer.silence_limit = options_.heartbeat_timeout;
    }
    peer_.emplace(std::move(peer));
    const PeerSession::Step start = peer_->Start(env_.Now());
    NETLAYER_ASSERT(start.send.empty() && !start.close, "the server speaks first");
    ArmPeerTimerLocked();
  }
  // Without the lock: queued input (the server's hello) may be delivered right here.
  mc->SetHandler(std::make_shared<ConnHandler>(weak_from_this(), generation));
}

void Client::ArmPeerTimerLocked() {
  std::weak_ptr<Client> weak = weak_from_this();
  peer_timer_.Arm(peer_->NextTimer(), [weak, generation = generation_] {
    if (auto c = weak.lock()) c->OnPeerTimer(generation);
  });
}

void Client::OnPeerTimer(uint64_t generation) {
  std::shared_ptr<smac::MessageConnection> conn;
  PeerSession::Step step;
  {
    MutexLock lock(mu_);
    if (generation != generation_ || !peer_) return;
    peer_timer_.Fired();
    const absl::Time now = env_.Now();
    step = peer_->OnTimer(now, peer_->PingDue(now) ? table_.NextId() : 0);
    ArmPeerTimerLocked();
    conn = conn_;
  }
  internal::SendControl(*conn, step.send, &counters_);
  if (step.close) conn->CloseWithReason(std::move(*step.close));
}

void Client::OnMessage(uint64_t generation, std::string_view message) {
  counters_.AddBytesIn(message.size());
  std::shared_ptr<smac::MessageConnection> conn;
  PeerSession::Step step;
  std::optional<CallTable::Completion> done;
  {
    MutexLock lock(mu_);
    if (generation != generation_ || !peer_) return;  // an old connection
    conn = conn_;
    hello_received_ = true;
    step = peer_->OnMessage(env_.Now(), message);
    if (step.ready) {
      NETLAYER_ASSERT(phase_ == Phase::kHandshaking, "a handshake completes once");
      version_ = *step.ready;
      phase_ = Phase::kReady;
      ++connections_;
      table_.BeginFlush(generation);
      if (schedule_) {
        // The connection proved healthy: the schedule ends; the next loss starts a fresh one.
        (void)schedule_->OnAttemptSucceeded(env_.Now());
        schedule_.reset();
        ++schedule_epoch_;
      }
      ArmPeerTimerLocked();
    }
    if (step.message && (step.message->kind == MessageKind::kReply ||
                         step.message->kind == MessageKind::kErrorReply)) {
      const Envelope& e = *step.message;
      done = table_.OnReply(generation, e.id,
                            e.kind == MessageKind::kReply ? CallResult(std::string(e.payload))
                                                          : CallResult(StatusFromEnvelope(e)));
      if (!done) Log(LogLayer::kRpc).debug("rpc client: reply to unknown call {} ignored", e.id);
    }
  }
  // The client's hello goes first, then the calls that waited (Flush).
  internal::SendControl(*conn, step.send, &counters_);
  if (step.close) {
    conn->CloseWithReason(std::move(*step.close));
    return;
  }
  if (step.ready) Flush(conn, generation);
  Complete(std::move(done));
  if (step.message && step.message->kind == MessageKind::kOneWay) {
    MutexLock lock(mu_);
    ++pushes_;
  }
  if (step.message && step.message->kind == MessageKind::kOneWay && options_.on_push) {
    CallbackScope scope;
    options_.on_push(step.message->method, step.message->payload);
  }
}

void Client::Flush(const std::shared_ptr<smac::MessageConnection>& conn, uint64_t generation) {
  for (;;) {
    std::vector<OutgoingMessage> batch;
    {
      MutexLock lock(mu_);
      if (generation != generation_) return;  // lost (or closed) meanwhile
      batch = table_.TakeUnsent(generation);
      if (batch.empty()) {
        if (table_.link() != CallTable::Link::kOpen) return;  // lost meanwhile
        WakeReadyWaitersLocked();
        break;
      }
    }
    for (const OutgoingMessage& m : batch) SendCall(*conn, m.kind, m.id, m.method, m.payload);
  }
  if (options_.on_ready) {
    CallbackScope scope;
    options_.on_ready(version());
  }
}

void Client::OnClosed(uint64_t generation, const CloseReason& reason) {
  CallTable::Completions completions;
  bool reconnect = false;
  std::optional<uint64_t> failed_attempt;  // the schedule's epoch, if it closed in the handshake
  bool silent_server = false;              // closed in the handshake before the server's hello
  std::string address;
  {
    MutexLock lock(mu_);
    if (generation != generation_ || conn_ == nullptr) return;
    if (phase_ == Phase::kHandshaking && schedule_ &&
        (plants_ == nullptr || !plants_->restart_schedule_on_drop)) {
      failed_attempt = schedule_epoch_;
    }
    if (phase_ == Phase::kReady) ++disconnects_;
    if (phase_ == Phase::kHandshaking) counters_.AddClose(true, KindName(reason.kind()));
    silent_server = phase_ == Phase::kHandshaking && !hello_received_ &&
                    reason.kind() != CloseReason::Kind::kProtocolError;
    address = attempt_address_;
    conn_.reset();
    peer_.reset();
    peer_timer_.Cancel();
    last_error_ = reason.ToStatus();
    // Every call sent on this connection fails at once.
    completions = table_.ConnectionLost(generation, last_error_,
                                        plants_ != nullptr && plants_->keep_calls_on_close);
    if (factory_ != nullptr && phase_ != Phase::kClosed) {
      phase_ = Phase::kConnecting;
      reconnect = true;
    } else {
      phase_ = Phase::kClosed;
      for (auto& c : table_.Close(last_error_)) completions.push_back(std::move(c));
      WakeReadyWaitersLocked();
    }
  }
  Log(LogLayer::kRpc)
      .info("rpc client: connection lost ({}); {} calls failed{}", reason.ToString(),
            completions.size(), reconnect ? "; reconnecting" : "");
  Complete(std::move(completions));
  if (options_.on_disconnected) {
    CallbackScope scope;
    options_.on_disconnected(reason);
  }
  if (!reconnect) return;
  if (failed_attempt) {
    if (reason.permanent() && !options_.retry_permanent_failures) {
      // Retrying would fail the same way: end here, naming the reason once.
      OnConnectFailed(absl::UnavailableError(absl::StrCat(
          address, ": ", reason.ToString(),
          " (a permanent failure: not retried; ClientOptions::retry_permanent_failures)")));
      return;
    }
    // Never healthy: a failed attempt of the same schedule (it backs off, max_attempts counts).
    OnAttemptFailed(
        *failed_attempt,
        absl::UnavailableError(absl::StrCat(
            "the connection closed before the rpc handshake completed: ",
            silent_server ? absl::StrCat(SilentServerText(), ": ") : "", reason.ToString())));
  } else {
    StartConnecting();
  }
}

// ---------------------------------------------------------------------------------------------
// Calls

void Client::SendCall(smac::MessageConnection& conn, MessageKind kind, uint64_t id,
                      std::string_view method, std::string_view payload) {
  Envelope e;
  e.kind = kind;
  e.id = id;
  e.method = method;
  e.payload = payload;
  absl::Status s = internal::SendEnvelope(conn, *options_.codec, e, &counters_);
  if (s.ok()) return;
  if (kind == MessageKind::kOneWay) {
    Log(LogLayer::kRpc).warn("rpc client: one-way \"{}\" lost: {}", method, s.ToString());
    return;
  }
  // Not sent (over the frame limit, output queue full, or the connection is closing: then
  // OnClosed may already have failed the call, and there is nothing left to do). A connection
  // that closed before its close was reported to us (a reset whose notification is still on
  // its way, or waits while this process was stopped) is a lost connection: kUnavailable,
  // as for every call on it, never the write's FailedPrecondition.
  if (s.code() == absl::StatusCode::kFailedPrecondition) {
    s = absl::UnavailableError(
        absl::StrCat("rpc: the connection closed before call ", id, " was sent: ", s.message()));
  }
  std::optional<CallTable::Completion> failed;
  {
    MutexLock lock(mu_);
    failed = table_.SendFailed(id, s);
  }
  Complete(std::move(failed));
}

uint64_t Client::StartCall(std::string_view method, std::string_view payload, absl::Time deadline,
                           bool arm_timer, CallCallback done) {
  absl::StatusOr<CallTable::Started> started;
  std::shared_ptr<smac::MessageConnection> send_on;  // set: send now, outside the lock
  counters_.AddCall(method);
  {
    MutexLock lock(mu_);
    started = table_.StartCall(method, payload, deadline, env_.Now(), done);
    if (started.ok()) {
      const bool planted_no_timer =
          plants_ != nullptr && plants_->no_deadline_while_connecting && !started->send_now;
      if (arm_timer && deadline != absl::InfiniteFuture() && !planted_no_timer) {
        std::weak_ptr<Client> weak = weak_from_this();
        table_.SetTimer(started->id, env_.RunAt(deadline, [weak, id = started->id] {
          if (auto c = weak.lock()) c->Expire(id);
        }));
      }
      if (started->send_now) {
        NETLAYER_ASSERT(conn_ != nullptr, "an open link has a connection");
        send_on = conn_;
      }
    }
  }
  if (!started.ok()) {
    counters_.AddAnswer(method, started.status().code());
    if (done) {
      CallbackScope scope;
      std::move(done)(CallResult(started.status()));
    }
    return 0;
  }
  // Sent outside the lock, so callers on many threads and the reply path do not queue behind
  // each other's writes.
  if (send_on != nullptr) SendCall(*send_on, MessageKind::kCall, started->id, method, payload);
  return started->id;
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
  absl::StatusOr<bool> send_now;
  std::shared_ptr<smac::MessageConnection> send_on;
  {
    MutexLock lock(mu_);
    send_now = table_.StartOneWay(method, payload);
    if (!send_now.ok() || !*send_now) return send_now.status();
    NETLAYER_ASSERT(conn_ != nullptr, "an open link has a connection");
    send_on = conn_;
  }
  Envelope e;
  e.kind = MessageKind::kOneWay;
  e.method = method;
  e.payload = payload;
  return internal::SendEnvelope(*send_on, *options_.codec, e, &counters_);
}

void Client::Expire(uint64_t id) {
  std::optional<CallTable::Completion> done;
  {
    MutexLock lock(mu_);
    done = table_.Expire(id, last_error_);
  }
  Complete(std::move(done));
}

void Client::Complete(CallTable::Completions completions) {
  if (completions.empty()) return;
  const absl::Time now = env_.Now();
  for (CallTable::Completion& c : completions) {
    if (c.timer) env_.CancelTimer(*c.timer);
    counters_.AddAnswer(c.method, c.result.status().code(), now - c.started);
  }
  CallbackScope scope;
  for (CallTable::Completion& c : completions) {
    if (c.done) std::move(c.done)(std::move(c.result));
  }
}

void Client::Complete(std::optional<CallTable::Completion> completion) {
  if (!completion) return;
  CallTable::Completions one;
  one.push_back(std::move(*completion));
  Complete(std::move(one));
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
    MutexLock lock(mu_);
    if (table_.link() == CallTable::Link::kOpen) return true;
    if (phase_ == Phase::kClosed) return false;
    n = env_.NewNotification();
    ready_waiters_.push_back(n);
  }
  n->WaitUntil(deadline);
  MutexLock lock(mu_);
  std::erase(ready_waiters_, n);
  return table_.link() == CallTable::Link::kOpen;
}

bool Client::ready() const {
  MutexLock lock(mu_);
  return table_.link() == CallTable::Link::kOpen;
}

uint16_t Client::version() const {
  MutexLock lock(mu_);
  return version_;
}

size_t Client::pending_calls() const {
  MutexLock lock(mu_);
  return table_.pending();
}

absl::Status Client::last_error() const {
  MutexLock lock(mu_);
  if (phase_ == Phase::kHandshaking) {
    // Connected, waiting for the server's hello: say so, with the loss before it if any.
    std::string text = absl::StrCat("connected to ", attempt_address_, " ",
                                    absl::FormatDuration(env_.Now() - phase_since_), " ago, but ",
                                    SilentServerText());
    if (!last_error_.ok()) absl::StrAppend(&text, "; before: ", last_error_.message());
    return absl::UnavailableError(text);
  }
  if (phase_ == Phase::kConnecting && last_error_.ok()) {
    return absl::UnavailableError(
        attempt_address_.empty()
            ? std::string("not connected yet")
            : absl::StrCat("connecting to ", attempt_address_, ": no connection yet after ",
                           absl::FormatDuration(env_.Now() - phase_since_)));
  }
  return last_error_;
}

void testing::SetPlants(Client& client, const testing::Plants& plants) {
  MutexLock lock(client.mu_);
  client.plants_ = std::make_shared<const testing::Plants>(plants);
}

}  // namespace netlayer::rpc

namespace netlayer::rpc {

ClientStats Client::stats() const {
  ClientStats out;
  std::shared_ptr<smac::MessageConnection> conn;
  {
    MutexLock lock(mu_);
    out.connections = connections_;
    out.reconnects = connections_ > 0 ? connections_ - 1 : 0;
    out.connect_failures = connect_failures_;
    out.disconnects = disconnects_;
    out.pushes = pushes_;
    out.ready = table_.link() == CallTable::Link::kOpen;
    conn = conn_;
  }
  out.pending_calls = pending_calls();
  // Asked outside mu_: the connection takes its own lock.
  if (conn != nullptr) out.queued_output_bytes = conn->QueuedOutputBytes();
  counters_.Fill(out.calls_by_method, out.calls_by_status, out.bytes_in, out.bytes_out);
  counters_.FillMethods(out.methods);
  std::map<std::string, uint64_t> closes;  // a client's ready closes are `disconnects`
  counters_.FillCloses(out.handshake_failures, closes);
  return out;
}

}  // namespace netlayer::rpc
