#include "fake_world.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connect_schedule.h"

namespace netlayer::testing {

// ---------------------------------------------------------------------------------------------
// MemoryConnection

MemoryConnection::MemoryConnection(FakeWorld* world, Address local, Address peer,
                                   ConnectionLimits limits)
    : world_(world), local_(std::move(local)), peer_address_(std::move(peer)), state_(limits) {}

std::shared_ptr<ConnectionHandler> MemoryConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  NoLock lock;
  std::shared_ptr<ConnectionHandler> old = state_.SetHandler(std::move(handler));
  ++world_->callback_depth_;
  DeliverEvents(lock, state_, *this);
  --world_->callback_depth_;
  return old;
}

absl::Status MemoryConnection::WriteV(absl::Span<const std::string_view> pieces) {
  ConnectionState::WriteStart start = state_.BeginWrite(pieces);
  if (start.send_direct) {
    // No direct sends here: everything goes through the queue and Pump.
    state_.OnDirectSent(pieces, 0);
    state_.EndWriterClaim(world_->Now());
  }
  return start.status;
}

void MemoryConnection::Close() {
  if (state_.Close(world_->Now()).shutdown_write) eof_pending_ = true;
}

void MemoryConnection::Abort() {
  if (state_.Abort().reset) {
    auto peer = peer_.lock();
    if (peer) peer->RemoteClosed(CloseReason(CloseReason::Kind::kReset, "aborted by peer"));
  }
}

void MemoryConnection::Reset(const std::string& why) {
  auto peer = peer_.lock();
  RemoteClosed(CloseReason(CloseReason::Kind::kReset, why));
  if (peer) peer->RemoteClosed(CloseReason(CloseReason::Kind::kReset, why));
}

void MemoryConnection::Freeze(bool frozen) {
  frozen_ = frozen;
  if (auto peer = peer_.lock()) peer->frozen_ = frozen;
}

void MemoryConnection::RemoteClosed(CloseReason reason) {
  eof_pending_ = false;
  if (!state_.OnRemoteClosed(std::move(reason)).wake_reader) return;
  NoLock lock;
  ++world_->callback_depth_;
  DeliverEvents(lock, state_, *this);
  --world_->callback_depth_;
}

bool MemoryConnection::Pump(size_t max) {
  if (frozen_) return false;
  auto peer = peer_.lock();
  if (state_.ClaimTransport()) {
    std::string_view pieces[1];
    NETLAYER_ASSERT(state_.PeekOutput(pieces) == 1, "output to pump");
    const size_t n = std::min(max, pieces[0].size());
    std::string chunk(pieces[0].substr(0, n));
    if (state_.OnSent(n, world_->Now()).shutdown_write) eof_pending_ = true;
    if (peer && peer->state_.IsOpen()) {
      NoLock lock;
      ++world_->callback_depth_;
      ReceiveInput(lock, peer->state_, *peer, chunk);
      --world_->callback_depth_;
    }
    return true;
  }
  if (eof_pending_) {
    eof_pending_ = false;
    if (peer) peer->RemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, ""));
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Notification

namespace {
class FakeNotification final : public Notification {
 public:
  explicit FakeNotification(FakeWorld* world) : world_(world) {}
  void Notify() override { notified_ = true; }
  bool HasBeenNotified() const override { return notified_; }
  bool WaitUntil(absl::Time deadline) override {
    NETLAYER_ASSERT(world_->callback_depth() == 0,
                    "a blocking wait may not be called from inside a callback");
    return world_->RunUntil([this] { return notified_; }, deadline);
  }

 private:
  FakeWorld* world_;
  bool notified_ = false;
};
}  // namespace

// ---------------------------------------------------------------------------------------------
// The fake client factory, driven by core ConnectSchedule.

class FakeWorld::Factory final : public ClientConnectionFactory {
 public:
  explicit Factory(FakeWorld* world) : world_(world) {}

  class Attempt final : public ConnectAttempt, public std::enable_shared_from_this<Attempt> {
   public:
    Attempt(FakeWorld* world, ConnectSchedule schedule, std::shared_ptr<ConnectHandler> handler)
        : world_(world), schedule_(std::move(schedule)), handler_(std::move(handler)) {}
    void Cancel() override {
      cancelled_ = true;
      schedule_.Cancel();
    }
    bool done() const override { return schedule_.done(); }
    ConnectSchedule& schedule() { return schedule_; }

    void Act(ConnectSchedule::Action action) {
      using Kind = ConnectSchedule::Action::Kind;
      auto self = shared_from_this();
      switch (action.kind) {
        case Kind::kTryAddress:
          world_->RunAt(world_->Now(), [self, i = action.address_index] { self->Try(i); });
          break;
        case Kind::kWaitUntil:
          world_->RunAt(action.wake_at, [self] {
            if (!self->cancelled_) self->Act(self->schedule_.OnWakeUp(self->world_->Now()));
          });
          break;
        case Kind::kConnected:
          break;  // handled in Try
        case Kind::kFailed:
          if (!cancelled_) handler_->FailedConnection(action.status);
          break;
      }
    }

   private:
    void Try(size_t i) {
      if (cancelled_) return;
      ++world_->connect_attempts_;
      const Address& address = schedule_.addresses()[i];
      auto it = world_->listeners_.find(address);
      if (it == world_->listeners_.end()) {
        Act(schedule_.OnAttemptFailed(
            world_->Now(),
            absl::UnavailableError(absl::StrCat(address.ToString(), ": connection refused"))));
        return;
      }
      Pair pair = world_->NewPair();
      auto on_accept = it->second;  // copy: the callback may change the listeners
      schedule_.OnAttemptSucceeded(world_->Now());
      on_accept(pair.server);
      handler_->Connected(pair.client);
    }

    FakeWorld* world_;
    ConnectSchedule schedule_;
    std::shared_ptr<ConnectHandler> handler_;
    bool cancelled_ = false;
  };

  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override {
    auto schedule = ConnectSchedule::Create(std::move(addresses), options);
    if (!schedule.ok()) return schedule.status();
    auto attempt = std::make_shared<Attempt>(world_, std::move(*schedule), std::move(handler));
    attempt->Act(attempt->schedule().Start(world_->Now()));
    return attempt;
  }

  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override {
    struct Result final : ConnectHandler {
      std::shared_ptr<Connection> connection;
      absl::Status status;
      bool done = false;
      void Connected(std::shared_ptr<Connection> c) override {
        connection = std::move(c);
        done = true;
      }
      void FailedConnection(const absl::Status& s) override {
        status = s;
        done = true;
      }
    };
    auto result = std::make_shared<Result>();
    auto attempt = Connect(std::move(addresses), options, result);
    if (!attempt.ok()) return attempt.status();
    world_->RunUntil([&] { return result->done; }, absl::InfiniteFuture());
    if (!result->status.ok()) return result->status;
    return result->connection;
  }

 private:
  FakeWorld* world_;
};

// ---------------------------------------------------------------------------------------------
// FakeWorld

FakeWorld::FakeWorld(uint64_t seed, size_t max_chunk)
    : gen_(seed), max_chunk_(max_chunk), factory_(std::make_unique<Factory>(this)) {}

FakeWorld::~FakeWorld() = default;

ClientConnectionFactory& FakeWorld::client_factory() { return *factory_; }

TimerId FakeWorld::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  absl::StatusOr<TimerId> id = timers_.Add(std::max(when, now_), std::move(fn));
  NETLAYER_ASSERT(id.ok(), "FakeWorld: too many timers pending (TimerQueue bound): a timer leak");
  return *id;
}

bool FakeWorld::CancelTimer(TimerId id) { return timers_.Cancel(id); }

std::unique_ptr<Notification> FakeWorld::NewNotification() {
  return std::make_unique<FakeNotification>(this);
}

FakeWorld::Pair FakeWorld::NewPair(ConnectionLimits limits) {
  const uint16_t port = next_port_++;
  auto client = std::make_shared<MemoryConnection>(this, Address::HostName("client", port),
                                                   Address::HostName("server", 1), limits);
  auto server = std::make_shared<MemoryConnection>(this, Address::HostName("server", 1),
                                                   Address::HostName("client", port), limits);
  client->peer_ = server;
  server->peer_ = client;
  connections_.push_back(client);
  connections_.push_back(server);
  return {client, server};
}

void FakeWorld::Listen(const Address& address,
                       std::function<void(std::shared_ptr<Connection>)> on_accept) {
  listeners_[address] = std::move(on_accept);
}

void FakeWorld::StopListening(const Address& address) { listeners_.erase(address); }

bool FakeWorld::PumpAll() {
  bool any = false;
  // Index loop: deliveries may create connections.
  for (size_t i = 0; i < connections_.size(); ++i) {
    std::shared_ptr<MemoryConnection> c = connections_[i];
    const size_t chunk = UniformInt(gen_, 1, std::max<size_t>(max_chunk_, 1));
    any = c->Pump(chunk) || any;
  }
  // Forget connections that are fully closed (nothing left to send or tell the peer).
  std::erase_if(connections_, [](const std::shared_ptr<MemoryConnection>& c) {
    return c->state_.phase() == ConnectionState::Phase::kClosed && !c->eof_pending_;
  });
  return any;
}

bool FakeWorld::Step(absl::Time limit) {
  if (PumpAll()) return true;
  std::optional<TimerQueue::Entry> due = timers_.PopDue(limit);
  if (!due.has_value()) return false;
  now_ = std::max(now_, due->when);
  ++callback_depth_;
  std::move(due->value)();
  --callback_depth_;
  return true;
}

void FakeWorld::RunUntilIdle() {
  while (Step(now_)) {
  }
}

bool FakeWorld::RunUntil(const std::function<bool()>& done, absl::Time deadline) {
  while (!done()) {
    if (!Step(deadline)) {
      NETLAYER_ASSERT(deadline != absl::InfiniteFuture(),
                      "FakeWorld: waiting forever with nothing left to run (deadlock)");
      now_ = std::max(now_, deadline);
      return done();
    }
  }
  return true;
}

void FakeWorld::Advance(absl::Duration d) {
  RunUntil([] { return false; }, now_ + d);
}

}  // namespace netlayer::testing
