// The seed's client and server connection factories.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/address.h"
#include "netlayer/core/connection.h"

namespace netlayer {

// The seed's connect schedule: each round tries every address in turn; if none connects, wait
// `delay`, which starts at min_delay, is multiplied by delay_backoff after each round and never
// exceeds max_delay; with max_attempts set, at most that many rounds are made, then the failure
// is reported with every attempt's reason. Defaults are the seed's (1 s, 1 s, 1, no limit).
struct ConnectOptions {
  absl::Duration min_delay = absl::Seconds(1);
  absl::Duration max_delay = absl::Seconds(1);
  double delay_backoff = 1.0;
  std::optional<int> max_attempts;  // rounds; nullopt: keep trying
  // Bounds one attempt that hangs (no answer from the peer); the attempt fails DeadlineExceeded.
  absl::Duration attempt_timeout = absl::Seconds(30);
  // Gives up (DeadlineExceeded) once this long has passed since the start; infinite by default.
  absl::Duration give_up_after = absl::InfiniteDuration();
  // Each wait is scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter] from the
  // injected generator, and still never exceeds max_delay. 0 (the default) draws nothing.
  // Must be in [0, 1).
  double jitter = 0.0;
};

// The seed's IConnectionFactoryHandler. Exactly one of the two is called, once, unless the
// attempt is cancelled first (then neither is called after Cancel() returns).
class ConnectHandler {
 public:
  virtual ~ConnectHandler() = default;
  virtual void Connected(std::shared_ptr<Connection> connection) = 0;
  // Unavailable (every round failed; the message lists each attempt's reason) or
  // DeadlineExceeded (give_up_after passed).
  virtual void FailedConnection(const absl::Status& status) = 0;
};

// A connect in progress. Cancel() stops it; after Cancel returns no ConnectHandler method will
// be called (a connection made concurrently is closed). Destroying the handle does not cancel.
class ConnectAttempt {
 public:
  virtual ~ConnectAttempt() = default;
  virtual void Cancel() = 0;
  virtual bool done() const = 0;
};

class ClientConnectionFactory {
 public:
  virtual ~ClientConnectionFactory() = default;
  // Starts connecting and returns at once; InvalidArgument for bad addresses or options.
  virtual absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) = 0;
  // Blocks until connected or failed. May not be called from a connection or timer callback.
  virtual absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(
      std::vector<Address> addresses, ConnectOptions options) = 0;
};

// The seed's iterable of incoming connections, with close().
// Thread rules: any method from any thread; Accept may block (not from inside a callback).
class Listener {
 public:
  virtual ~Listener() = default;
  // The address actually bound (the real port when 0 was asked for).
  virtual Address address() const = 0;
  // Blocks until a connection arrives, the listener closes, or `deadline` passes; returns nullptr
  // in the latter two cases.
  virtual std::shared_ptr<Connection> Accept(absl::Time deadline = absl::InfiniteFuture()) = 0;
  // Stops accepting; wakes every blocked Accept. Connections already accepted stay open.
  virtual void Close() = 0;
  virtual bool IsOpen() const = 0;

  // Range-for over accepted connections, ending when the listener closes.
  class Iterator {
   public:
    using value_type = std::shared_ptr<Connection>;
    using difference_type = std::ptrdiff_t;
    explicit Iterator(Listener* listener) : listener_(listener) { Advance(); }
    Iterator() = default;
    const value_type& operator*() const { return current_; }
    Iterator& operator++() {
      Advance();
      return *this;
    }
    void operator++(int) { Advance(); }
    friend bool operator==(const Iterator& a, const Iterator& b) {
      return a.current_ == b.current_;
    }

   private:
    void Advance() { current_ = listener_ ? listener_->Accept() : nullptr; }
    Listener* listener_ = nullptr;
    value_type current_;
  };
  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(); }
};

// Called for each accepted connection, on the backend's accept thread (posix) or world (sim).
using AcceptCallback = std::function<void(std::shared_ptr<Connection>)>;

class ServerConnectionFactory {
 public:
  virtual ~ServerConnectionFactory() = default;
  // Iterator form: connections are taken with Accept() or range-for.
  // Errors: InvalidArgument (bad address), AlreadyExists (address in use), Unavailable.
  virtual absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) = 0;
  // Callback form for event-driven code: each accepted connection goes to `on_accept`, and
  // Accept() on the returned listener returns nullptr at once.
  virtual absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                           AcceptCallback on_accept) = 0;
};

}  // namespace netlayer
