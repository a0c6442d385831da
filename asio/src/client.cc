// The client factory: the core ConnectSchedule driven on the io_context. Each step the schedule
// asks for (try an address, wait) is an asynchronous operation whose completion feeds the
// schedule its answer; stale completions (a step that timed out or was cancelled) are ignored.
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "connection_impl.h"
#include "endpoint.h"
#include "netlayer/asio/asio.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/threaded/threaded.h"
#include "runtime_impl.h"

namespace netlayer::asio {
namespace {

using internal::Endpoint;
using internal::RuntimeImpl;
using internal::Socket;
using Action = ConnectSchedule::Action;
using ConnectionOr = absl::StatusOr<std::shared_ptr<Connection>>;

std::chrono::nanoseconds Until(absl::Time deadline) {
  return absl::ToChronoNanoseconds(
      std::clamp(deadline - absl::Now(), absl::ZeroDuration(), threaded::kMaxConditionWait));
}

class Attempt : public std::enable_shared_from_this<Attempt> {
 public:
  Attempt(std::shared_ptr<RuntimeImpl> rt, const AsioOptions& options, ConnectSchedule schedule,
          std::shared_ptr<Generator> generator, std::shared_ptr<ConnectHandler> handler)
      : runtime_(std::move(rt)),
        options_(options),
        generator_(std::move(generator)),
        schedule_(std::move(schedule)),
        handler_(std::move(handler)),
        timer_(runtime_->io) {}

  // False if the Runtime is shutting down (nothing started).
  bool Start() {
    std::lock_guard<std::mutex> lock(mu_);
    registration_ = runtime_->RegisterStop(shared_from_this(), &Attempt::Cancel);
    if (registration_ == 0) return false;
    Run(schedule_.Start(absl::Now()));
    return true;
  }

  void Cancel() {
    std::shared_ptr<ConnectHandler> dropped;  // released after the lock
    std::unique_lock<std::mutex> lock(mu_);
    if (!cancelled_ && !finished_) {
      cancelled_ = true;
      StopStep();
      runtime_->Unregister(registration_);
      if (!in_callback_) dropped.swap(handler_);
    }
    // No callback after Cancel returns: wait for one that is running, unless it is this thread's.
    done_cv_.wait(
        lock, [this] { return !in_callback_ || callback_thread_ == std::this_thread::get_id(); });
  }

  bool done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_ || cancelled_;
  }

 private:
  // REQUIRES: mu_ held. Carries out the schedule's next action.
  void Run(Action action) {
    switch (action.kind) {
      case Action::Kind::kTryAddress:
        TryAddress(schedule_.addresses()[action.address_index], action.attempt_deadline);
        return;
      case Action::Kind::kWaitUntil: {
        const uint64_t step = ++step_;
        timer_.expires_after(Until(action.wake_at));
        timer_.async_wait([self = shared_from_this(), step](const std::error_code&) {
          std::lock_guard<std::mutex> lock(self->mu_);
          if (step != self->step_ || self->cancelled_) return;
          self->Run(self->schedule_.OnWakeUp(absl::Now()));
        });
        return;
      }
      case Action::Kind::kConnected:  // OnConnected finishes
        return;
      case Action::Kind::kFailed:
        ::asio::post(runtime_->io,
                     [self = shared_from_this(), status = action.status] { self->Finish(status); });
        return;
    }
  }

  // REQUIRES: mu_ held. One attempt: resolve (if a name), then each endpoint in turn, all by
  // `deadline`.
  void TryAddress(const Address& address, absl::Time deadline) {
    const uint64_t step = ++step_;
    target_ = address;
    endpoints_.clear();
    next_endpoint_ = 0;
    last_error_ = absl::UnavailableError(absl::StrCat("connect to ", address.ToString()));
    timer_.expires_after(Until(deadline));
    timer_.async_wait([self = shared_from_this(), step](const std::error_code&) {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (step != self->step_ || self->cancelled_) return;
      self->StopStep();
      self->Run(self->schedule_.OnAttemptFailed(
          absl::Now(), absl::DeadlineExceededError(
                           absl::StrCat("connect to ", self->target_.ToString(), ": timed out"))));
    });
    if (address.kind() != Address::Kind::kHostName) {
      absl::StatusOr<Endpoint> endpoint = internal::LiteralEndpoint(address);
      if (!endpoint.ok()) return StepFailed(endpoint.status());
      endpoints_.push_back(*endpoint);
      return TryNextEndpoint(step);
    }
    if (internal::LoopbackEndpoints(address, endpoints_)) return TryNextEndpoint(step);
    resolver_.emplace(runtime_->io);
    resolver_->async_resolve(
        address.host(), std::to_string(address.port()), ::asio::ip::tcp::resolver::numeric_service,
        [self = shared_from_this(), step](const std::error_code& ec,
                                          ::asio::ip::tcp::resolver::results_type results) {
          std::lock_guard<std::mutex> lock(self->mu_);
          if (step != self->step_ || self->cancelled_) return;
          self->resolver_.reset();
          if (ec) {
            return self->StepFailed(
                internal::ErrorStatus(absl::StrCat("resolve ", self->target_.ToString()), ec));
          }
          for (const auto& entry : results) self->endpoints_.emplace_back(entry.endpoint());
          self->TryNextEndpoint(step);
        });
  }

  // REQUIRES: mu_ held.
  void TryNextEndpoint(uint64_t step) {
    if (next_endpoint_ >= endpoints_.size()) return StepFailed(last_error_);
    const Endpoint endpoint = endpoints_[next_endpoint_++];
    socket_.emplace(runtime_->io);
    std::error_code ec;
    socket_->open(endpoint.protocol(), ec);
    if (ec) {
      last_error_ = internal::ErrorStatus("socket", ec);
      return TryNextEndpoint(step);
    }
    socket_->async_connect(endpoint, [self = shared_from_this(), step](const std::error_code& ec) {
      self->OnConnected(step, ec);
    });
  }

  void OnConnected(uint64_t step, const std::error_code& ec) {
    std::unique_lock<std::mutex> lock(mu_);
    if (step != step_ || cancelled_) return;
    if (ec) {
      last_error_ = internal::ErrorStatus(absl::StrCat("connect to ", target_.ToString()), ec);
      socket_.reset();
      return TryNextEndpoint(step);
    }
    Socket socket = std::move(*socket_);
    socket_.reset();
    ++step_;
    timer_.cancel();
    schedule_.OnAttemptSucceeded(absl::Now());
    lock.unlock();
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        internal::StartConnection(runtime_, std::move(socket), options_);
    if (connection.status().code() == absl::StatusCode::kAborted) {
      // Reset at once by the server: a failed connect as before, not a cancelled one.
      connection = absl::UnavailableError(connection.status().message());
    }
    Finish(std::move(connection));
  }

  // REQUIRES: mu_ held. The attempt at target_ failed.
  void StepFailed(const absl::Status& status) {
    StopStep();
    Run(schedule_.OnAttemptFailed(absl::Now(), status));
  }

  // REQUIRES: mu_ held. Abandons the step in progress: its completions will be ignored.
  void StopStep() {
    ++step_;
    timer_.cancel();
    if (resolver_.has_value()) resolver_->cancel();
    resolver_.reset();
    socket_.reset();  // cancels a connect in progress
  }

  // Hands the result to the ConnectHandler, unless cancelled (a connection made then is closed
  // as it is dropped).
  void Finish(ConnectionOr result) {
    std::shared_ptr<ConnectHandler> handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_ || finished_) return;
      in_callback_ = true;
      callback_thread_ = std::this_thread::get_id();
      handler = handler_;
    }
    if (result.ok()) {
      handler->Connected(std::move(*result));
    } else {
      handler->FailedConnection(result.status());
    }
    handler.reset();
    std::shared_ptr<ConnectHandler> doomed;
    std::lock_guard<std::mutex> lock(mu_);
    in_callback_ = false;
    finished_ = true;
    doomed.swap(handler_);  // released after the lock
    runtime_->Unregister(registration_);
    done_cv_.notify_all();
  }

  const std::shared_ptr<RuntimeImpl> runtime_;
  const AsioOptions options_;
  const std::shared_ptr<Generator> generator_;  // the schedule's jitter source

  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  // All below guarded by mu_.
  ConnectSchedule schedule_;
  std::shared_ptr<ConnectHandler> handler_;
  uint64_t registration_ = 0;
  bool cancelled_ = false;
  bool finished_ = false;
  bool in_callback_ = false;
  std::thread::id callback_thread_;
  uint64_t step_ = 0;  // the step in progress; completions of earlier steps are ignored
  ::asio::steady_timer timer_;
  std::optional<::asio::ip::tcp::resolver> resolver_;
  std::optional<Socket> socket_;
  Address target_ = Address::Unix("");
  std::vector<Endpoint> endpoints_;
  size_t next_endpoint_ = 0;
  absl::Status last_error_;
};

class AsioConnectAttempt final : public ConnectAttempt {
 public:
  explicit AsioConnectAttempt(std::shared_ptr<Attempt> attempt) : attempt_(std::move(attempt)) {}
  void Cancel() override { attempt_->Cancel(); }
  bool done() const override { return attempt_->done(); }

 private:
  std::shared_ptr<Attempt> attempt_;
};

// ConnectBlocking's handler: the result, for the waiting thread.
class PromiseHandler final : public ConnectHandler {
 public:
  void Connected(std::shared_ptr<Connection> connection) override {
    promise_.set_value(std::move(connection));
  }
  void FailedConnection(const absl::Status& status) override { promise_.set_value(status); }
  std::future<ConnectionOr> future() { return promise_.get_future(); }

 private:
  std::promise<ConnectionOr> promise_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<ConnectAttempt>> AsioClientFactory::Connect(
    std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler) {
  if (handler == nullptr) return absl::InvalidArgumentError("connect: null handler");
  auto generator = std::shared_ptr<Generator>(threaded::NewOsSeededGenerator());
  absl::StatusOr<ConnectSchedule> schedule =
      ConnectSchedule::Create(std::move(addresses), options, generator.get());
  if (!schedule.ok()) return schedule.status();
  auto attempt = std::make_shared<Attempt>(runtime_.impl(), options_, std::move(*schedule),
                                           std::move(generator), std::move(handler));
  if (!attempt->Start())
    return absl::UnavailableError("connect: the asio Runtime is shutting down");
  return std::make_shared<AsioConnectAttempt>(std::move(attempt));
}

absl::StatusOr<std::shared_ptr<Connection>> AsioClientFactory::ConnectBlocking(
    std::vector<Address> addresses, ConnectOptions options) {
  if (runtime_.impl()->io.get_executor().running_in_this_thread()) {
    return absl::FailedPreconditionError(
        "ConnectBlocking on an io thread of its own Runtime would wait for itself");
  }
  auto handler = std::make_shared<PromiseHandler>();
  std::future<ConnectionOr> result = handler->future();
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> attempt =
      Connect(std::move(addresses), options, std::move(handler));
  if (!attempt.ok()) return attempt.status();
  try {
    return result.get();
  } catch (const std::future_error&) {  // cancelled: the Runtime is being destroyed
    return absl::CancelledError("connect: the asio Runtime was destroyed");
  }
}

}  // namespace netlayer::asio
