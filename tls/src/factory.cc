#include "netlayer/tls/factory.h"

#include <deque>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"

namespace netlayer::tls {
namespace {

// Turns each connection the inner factory makes into a TlsConnection for the user's handler.
class WrappingConnectHandler final : public ConnectHandler {
 public:
  WrappingConnectHandler(std::shared_ptr<TlsContext> context, Env& env, std::string server_name,
                         std::shared_ptr<ConnectHandler> user)
      : context_(std::move(context)),
        env_(env),
        server_name_(std::move(server_name)),
        user_(std::move(user)) {}
  void Connected(std::shared_ptr<Connection> transport) override {
    auto tls = TlsConnection::Create(context_, env_, std::move(transport), server_name_);
    tls->Start();
    user_->Connected(std::move(tls));
  }
  void FailedConnection(const absl::Status& status) override { user_->FailedConnection(status); }

 private:
  const std::shared_ptr<TlsContext> context_;
  Env& env_;
  const std::string server_name_;
  const std::shared_ptr<ConnectHandler> user_;
};

// A listener whose connections reach the application only once their handshake completed.
class TlsListener final : public Listener, public std::enable_shared_from_this<TlsListener> {
 public:
  TlsListener(Env& env, std::shared_ptr<TlsContext> context, AcceptCallback on_accept,
              TlsServerFactory::HandshakeFailedCallback on_handshake_failed)
      : env_(env),
        context_(std::move(context)),
        on_accept_(std::move(on_accept)),
        on_handshake_failed_(std::move(on_handshake_failed)) {}
  ~TlsListener() override { Close(); }

  void Attach(std::shared_ptr<Listener> inner) {
    std::lock_guard<std::mutex> lock(mu_);
    inner_ = std::move(inner);
  }

  // The inner listener's accept callback.
  void OnTransport(std::shared_ptr<Connection> transport) {
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_ && handshaking_.size() < context_->options().max_pending_handshakes) {
        id = next_id_++;
      }
    }
    if (id == 0) {
      Log(LogLayer::kTls)
          .warn(
              "tls listener: {} handshakes already in progress (or closed); closing the "
              "connection from {}",
              context_->options().max_pending_handshakes, transport->peer_address().ToString());
      transport->Close();
      return;
    }
    std::weak_ptr<TlsListener> weak = weak_from_this();
    auto connection = TlsConnection::Create(context_, env_, std::move(transport), "",
                                            [weak, id](const absl::Status& status) {
                                              if (auto listener = weak.lock())
                                                listener->OnHandshake(id, status);
                                            });
    {
      std::lock_guard<std::mutex> lock(mu_);
      handshaking_[id] = connection;
    }
    connection->Start();
  }

  Address address() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->address();
  }

  std::shared_ptr<Connection> Accept(absl::Time deadline) override {
    for (;;) {
      std::shared_ptr<Notification> wake;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (on_accept_) return nullptr;
        if (!ready_.empty()) return PopLocked();
        if (closed_) return nullptr;
        wake = env_.NewNotification();
        waiters_.push_back(wake);
      }
      if (!wake->WaitUntil(deadline)) {
        std::lock_guard<std::mutex> lock(mu_);
        std::erase(waiters_, wake);
        return ready_.empty() ? nullptr : PopLocked();
      }
    }
  }

  void Close() override {
    std::shared_ptr<Listener> inner;
    std::map<uint64_t, std::shared_ptr<TlsConnection>> handshaking;
    std::deque<std::shared_ptr<TlsConnection>> ready;
    std::vector<std::shared_ptr<Notification>> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      inner = inner_;
      handshaking.swap(handshaking_);
      ready.swap(ready_);
      waiters.swap(waiters_);
    }
    if (inner) inner->Close();
    // Not yet accepted: closed, as a listener's backlog is.
    for (auto& [id, c] : handshaking) c->Close();
    for (auto& c : ready) c->Close();
    for (auto& w : waiters) w->Notify();
  }

  bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return !closed_ && inner_ != nullptr && inner_->IsOpen();
  }

 private:
  void OnHandshake(uint64_t id, const absl::Status& status) {
    std::shared_ptr<TlsConnection> connection;  // released outside the lock
    std::vector<std::shared_ptr<Notification>> waiters;
    bool deliver = false;
    bool refuse = false;
    bool failed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = handshaking_.find(id);
      if (it == handshaking_.end()) return;  // the listener closed meanwhile
      connection = std::move(it->second);
      handshaking_.erase(it);
      if (!status.ok()) {
        // The connection logged its failure and closed itself.
        failed = true;
      } else if (closed_) {
        refuse = true;
      } else if (on_accept_) {
        deliver = true;
      } else if (ready_.size() >= context_->options().max_accept_queue) {
        Log(LogLayer::kTls)
            .warn("tls listener: {} connections wait for Accept(); closing the one from {}",
                  ready_.size(), connection->peer_address().ToString());
        refuse = true;
      } else {
        ready_.push_back(connection);
        waiters.swap(waiters_);
      }
    }
    if (failed) {
      if (on_handshake_failed_) on_handshake_failed_(connection->peer_address(), status);
      return;
    }
    if (refuse) connection->Close();
    if (deliver) on_accept_(std::move(connection));
    for (auto& w : waiters) w->Notify();
  }

  std::shared_ptr<Connection> PopLocked() {
    std::shared_ptr<Connection> c = std::move(ready_.front());
    ready_.pop_front();
    return c;
  }

  Env& env_;
  const std::shared_ptr<TlsContext> context_;
  const AcceptCallback on_accept_;                                       // empty: the iterator form
  const TlsServerFactory::HandshakeFailedCallback on_handshake_failed_;  // empty: none
  mutable std::mutex mu_;
  std::shared_ptr<Listener> inner_;                                 // GUARDED_BY(mu_)
  bool closed_ = false;                                             // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                                            // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<TlsConnection>> handshaking_;  // GUARDED_BY(mu_)
  std::deque<std::shared_ptr<TlsConnection>> ready_;                // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<Notification>> waiters_;              // GUARDED_BY(mu_)
};

}  // namespace

// ---- Client ----

TlsClientFactory::TlsClientFactory(ClientConnectionFactory& inner, Env& env,
                                   std::shared_ptr<TlsContext> context)
    : inner_(inner), env_(env), context_(std::move(context)) {
  NETLAYER_ASSERT(context_ != nullptr && context_->role() == Role::kClient,
                  "TlsClientFactory needs a client TlsContext");
}

absl::StatusOr<std::string> TlsClientFactory::ServerNameFor(
    const std::vector<Address>& addresses) const {
  if (!context_->options().server_name.empty()) return context_->options().server_name;
  if (!context_->options().verify_peer) return std::string();
  std::string name;
  for (const Address& a : addresses) {
    if (a.kind() == Address::Kind::kUnix) {
      return absl::InvalidArgumentError(
          "tls: a unix-domain address names no host to verify; set TlsOptions.server_name");
    }
    if (!name.empty() && a.host() != name) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: the addresses name several hosts (", name, ", ", a.host(),
                       "); set TlsOptions.server_name to the name their certificates carry"));
    }
    name = a.host();
  }
  return name;
}

absl::StatusOr<std::shared_ptr<ConnectAttempt>> TlsClientFactory::Connect(
    std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler) {
  absl::StatusOr<std::string> name = ServerNameFor(addresses);
  if (!name.ok()) return name.status();
  return inner_.Connect(std::move(addresses), options,
                        std::make_shared<WrappingConnectHandler>(context_, env_, *std::move(name),
                                                                 std::move(handler)));
}

absl::StatusOr<std::shared_ptr<Connection>> TlsClientFactory::ConnectBlocking(
    std::vector<Address> addresses, ConnectOptions options) {
  absl::StatusOr<std::string> name = ServerNameFor(addresses);
  if (!name.ok()) return name.status();
  absl::StatusOr<std::shared_ptr<Connection>> transport =
      inner_.ConnectBlocking(std::move(addresses), options);
  if (!transport.ok()) return transport.status();
  struct Outcome {
    std::shared_ptr<Notification> done;
    absl::Status status;  // written before done->Notify()
  };
  auto outcome = std::make_shared<Outcome>();
  outcome->done = env_.NewNotification();
  auto tls = TlsConnection::Create(context_, env_, *std::move(transport), *std::move(name),
                                   [outcome](const absl::Status& status) {
                                     outcome->status = status;
                                     outcome->done->Notify();
                                   });
  tls->Start();
  // The adapter's own deadline ends the handshake; the margin only guards against a bug.
  if (!outcome->done->WaitUntil(env_.Now() + context_->options().handshake_timeout +
                                absl::Seconds(5))) {
    tls->Close();
    return absl::DeadlineExceededError("tls handshake did not finish");
  }
  if (!outcome->status.ok()) return outcome->status;
  return tls;
}

// ---- Server ----

TlsServerFactory::TlsServerFactory(ServerConnectionFactory& inner, Env& env,
                                   std::shared_ptr<TlsContext> context)
    : inner_(inner), env_(env), context_(std::move(context)) {
  NETLAYER_ASSERT(context_ != nullptr && context_->role() == Role::kServer,
                  "TlsServerFactory needs a server TlsContext");
}

absl::StatusOr<std::shared_ptr<Listener>> TlsServerFactory::Listen(const Address& address) {
  return Listen(address, AcceptCallback());
}

absl::StatusOr<std::shared_ptr<Listener>> TlsServerFactory::Listen(const Address& address,
                                                                   AcceptCallback on_accept) {
  auto listener =
      std::make_shared<TlsListener>(env_, context_, std::move(on_accept), on_handshake_failed_);
  std::weak_ptr<TlsListener> weak = listener;
  absl::StatusOr<std::shared_ptr<Listener>> inner =
      inner_.Listen(address, [weak](std::shared_ptr<Connection> transport) {
        if (auto l = weak.lock()) {
          l->OnTransport(std::move(transport));
        } else {
          transport->Close();
        }
      });
  if (!inner.ok()) return inner.status();
  listener->Attach(*std::move(inner));
  return listener;
}

}  // namespace netlayer::tls
