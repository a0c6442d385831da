// The server factory: an acceptor per listener on the io_context, one accept outstanding at a
// time.
#include <asio/basic_socket_acceptor.hpp>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "connection_impl.h"
#include "endpoint.h"
#include "netlayer/asio/asio.h"
#include "netlayer/core/log.h"
#include "netlayer/threaded/threaded.h"
#include "runtime_impl.h"

namespace netlayer::asio {
namespace {

using internal::Endpoint;
using internal::Protocol;
using internal::RuntimeImpl;
using internal::Socket;
using Acceptor = ::asio::basic_socket_acceptor<Protocol>;

// Accept errors after which the next connection may be fine.
bool TransientAcceptError(const std::error_code& ec) {
  return ec == ::asio::error::connection_aborted || ec == ::asio::error::try_again ||
         ec == ::asio::error::would_block || ec == ::asio::error::interrupted ||
         ec == std::error_code(EPROTO, ::asio::error::get_system_category());
}

class ListenerCore : public std::enable_shared_from_this<ListenerCore> {
 public:
  ListenerCore(std::shared_ptr<RuntimeImpl> rt, const AsioOptions& options, Acceptor acceptor,
               Address address, std::string unlink_path, AcceptCallback on_accept)
      : runtime_(std::move(rt)),
        options_(options),
        address_(std::move(address)),
        unlink_path_(std::move(unlink_path)),
        on_accept_(std::move(on_accept)),
        acceptor_(std::move(acceptor)),
        pause_timer_(runtime_->io) {}

  // False if the Runtime is shutting down (then closed).
  bool Start() {
    std::lock_guard<std::mutex> lock(mu_);
    registration_ = runtime_->RegisterStop(shared_from_this(), &ListenerCore::Close);
    if (registration_ == 0) {
      CloseLocked();
      return false;
    }
    AcceptNext();
    return true;
  }

  const Address& address() const { return address_; }

  std::shared_ptr<Connection> Accept(absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (on_accept_) return nullptr;  // the callback form hands connections out itself
    threaded::WaitUntilDeadline(cv_, lock, deadline, [this] { return closed_ || !queue_.empty(); });
    if (closed_ || queue_.empty()) return nullptr;
    std::shared_ptr<Connection> connection = std::move(queue_.front());
    queue_.pop_front();
    AcceptNext();  // there is room again
    return connection;
  }

  void Close() {
    std::deque<std::shared_ptr<Connection>> dropped;  // closed after the lock, as they go
    std::unique_lock<std::mutex> lock(mu_);
    if (!closed_) {
      dropped.swap(queue_);
      CloseLocked();
      runtime_->Unregister(registration_);
    }
    // No accept callback after Close returns: wait for one that is running, unless it is this
    // thread's own.
    cv_.wait(lock,
             [this] { return !in_callback_ || callback_thread_ == std::this_thread::get_id(); });
  }

  bool IsOpen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !closed_;
  }

 private:
  // REQUIRES: mu_ held.
  void CloseLocked() {
    closed_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);  // cancels the outstanding accept
    pause_timer_.cancel();
    if (!unlink_path_.empty()) std::filesystem::remove(unlink_path_, ignored);
    cv_.notify_all();
  }

  // REQUIRES: mu_ held. Starts the next accept unless one is outstanding, the listener is
  // closed or paused, or the queue is full (Accept() makes room and calls this again).
  void AcceptNext() {
    if (accepting_ || paused_ || closed_) return;
    if (!on_accept_ && queue_.size() >= options_.accept_queue_limit) return;
    accepting_ = true;
    acceptor_.async_accept([self = shared_from_this()](const std::error_code& ec, Socket socket) {
      self->OnAccepted(ec, std::move(socket));
    });
  }

  // REQUIRES: mu_ held.
  void PauseAfter(const std::string& what) {
    Log(LogLayer::kAsio)
        .warn("listener {}: {}; pausing {}", address_.ToString(), what,
              absl::FormatDuration(options_.accept_error_backoff));
    paused_ = true;
    pause_timer_.expires_after(absl::ToChronoNanoseconds(options_.accept_error_backoff));
    pause_timer_.async_wait([self = shared_from_this()](const std::error_code&) {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->paused_ = false;
      self->AcceptNext();
    });
  }

  void OnAccepted(const std::error_code& ec, Socket socket) {
    std::unique_lock<std::mutex> lock(mu_);
    accepting_ = false;
    if (closed_) return;  // dropped
    if (ec) {
      if (TransientAcceptError(ec)) {
        AcceptNext();
      } else {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected: keep the listener, pause.
        PauseAfter(absl::StrCat("accept: ", ec.message()));
      }
      return;
    }
    lock.unlock();
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        internal::StartConnection(runtime_, std::move(socket), options_);
    lock.lock();
    if (closed_) return;
    if (!connection.ok()) {
      if (connection.status().code() == absl::StatusCode::kAborted) {
        // The peer reset before the accept completed: drop it and accept the next at once (a
        // pause here let a connect/reset burst stall every new client for 100 ms at a time).
        Log(LogLayer::kAsio)
            .debug("listener {}: {}", address_.ToString(), connection.status().ToString());
        AcceptNext();
        return;
      }
      PauseAfter(connection.status().ToString());
      return;
    }
    if (on_accept_) {
      in_callback_ = true;
      callback_thread_ = std::this_thread::get_id();
      lock.unlock();
      on_accept_(std::move(*connection));  // on this io thread, no lock held
      lock.lock();
      in_callback_ = false;
      cv_.notify_all();
    } else {
      queue_.push_back(std::move(*connection));
      cv_.notify_all();
    }
    AcceptNext();
  }

  const std::shared_ptr<RuntimeImpl> runtime_;
  const AsioOptions options_;
  const Address address_;
  const std::string unlink_path_;  // the unix socket file this listener created
  const AcceptCallback on_accept_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // a connection queued, closed, or a callback returned
  // All below guarded by mu_.
  Acceptor acceptor_;
  ::asio::steady_timer pause_timer_;
  uint64_t registration_ = 0;
  bool closed_ = false;
  bool accepting_ = false;  // an async_accept is outstanding
  bool paused_ = false;     // after an accept error, until the pause timer fires
  bool in_callback_ = false;
  std::thread::id callback_thread_;
  std::deque<std::shared_ptr<Connection>> queue_;
};

class AsioListener final : public Listener {
 public:
  explicit AsioListener(std::shared_ptr<ListenerCore> core) : core_(std::move(core)) {}
  ~AsioListener() override { core_->Close(); }
  Address address() const override { return core_->address(); }
  std::shared_ptr<Connection> Accept(absl::Time deadline) override {
    return core_->Accept(deadline);
  }
  void Close() override { core_->Close(); }
  bool IsOpen() const override { return core_->IsOpen(); }

 private:
  std::shared_ptr<ListenerCore> core_;
};

// A unix socket path already exists: reuse it if it is a socket nobody answers on.
absl::Status ClaimUnixPath(::asio::io_context& io, const Address& address,
                           const Endpoint& endpoint) {
  const std::string what = absl::StrCat("listen on ", address.ToString());
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::symlink_status(address.host(), ec);
  if (st.type() == std::filesystem::file_type::not_found) return absl::OkStatus();
  if (ec) return internal::ErrorStatus(what, ec);
  if (st.type() != std::filesystem::file_type::socket) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": the path exists and is not a socket"));
  }
  Socket probe(io);
  probe.connect(endpoint, ec);  // a unix-domain connect answers at once
  if (!ec || ec == ::asio::error::try_again || ec == ::asio::error::would_block) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": a server is listening there"));
  }
  if (ec == ::asio::error::connection_refused) {
    Log(LogLayer::kAsio).info("{}: removing a stale socket file", what);
    std::filesystem::remove(address.host(), ec);
    if (ec) return internal::ErrorStatus(absl::StrCat("unlink ", address.host()), ec);
  }
  return absl::OkStatus();
}

// The endpoint to listen on: a literal, a unix path, or a host name's first address.
absl::StatusOr<Endpoint> ListenEndpoint(::asio::io_context& io, const Address& address) {
  if (address.kind() != Address::Kind::kHostName) return internal::LiteralEndpoint(address);
  std::vector<Endpoint> loopback;
  if (internal::LoopbackEndpoints(address, loopback)) return loopback.front();
  ::asio::ip::tcp::resolver resolver(io);
  std::error_code ec;
  auto results = resolver.resolve(address.host(), std::to_string(address.port()),
                                  ::asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        absl::StrCat("resolve ", address.ToString(), ": ", ec ? ec.message() : "no address"));
  }
  return Endpoint(results.begin()->endpoint());
}

absl::StatusOr<std::shared_ptr<Listener>> DoListen(const std::shared_ptr<RuntimeImpl>& runtime,
                                                   const AsioOptions& options,
                                                   const Address& address,
                                                   AcceptCallback on_accept) {
  absl::StatusOr<Endpoint> endpoint = ListenEndpoint(runtime->io, address);
  if (!endpoint.ok()) return endpoint.status();
  const bool is_unix = !internal::IsTcp(*endpoint);
  if (is_unix) {
    if (absl::Status s = ClaimUnixPath(runtime->io, address, *endpoint); !s.ok()) return s;
  }
  const std::string what = absl::StrCat("listen on ", address.ToString());
  Acceptor acceptor(runtime->io);
  std::error_code ec;
  acceptor.open(endpoint->protocol(), ec);
  if (ec) return internal::ErrorStatus("socket", ec);
  if (!is_unix) acceptor.set_option(Acceptor::reuse_address(true), ec);
  acceptor.bind(*endpoint, ec);
  if (ec) return internal::ErrorStatus(what, ec);
  acceptor.listen(options.listen_backlog, ec);
  if (ec) {
    if (is_unix) std::filesystem::remove(address.host(), ec);
    return internal::ErrorStatus(what, ec);
  }
  Address bound = address;
  if (!is_unix) {
    const Endpoint local = acceptor.local_endpoint(ec);
    if (!ec) bound = internal::ToAddress(local);
  }
  auto core =
      std::make_shared<ListenerCore>(runtime, options, std::move(acceptor), std::move(bound),
                                     is_unix ? address.host() : "", std::move(on_accept));
  if (!core->Start()) return absl::UnavailableError(what + ": the asio Runtime is shutting down");
  return std::make_shared<AsioListener>(std::move(core));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Listener>> AsioServerFactory::Listen(const Address& address) {
  return DoListen(runtime_.impl(), options_, address, nullptr);
}

absl::StatusOr<std::shared_ptr<Listener>> AsioServerFactory::Listen(const Address& address,
                                                                    AcceptCallback on_accept) {
  if (!on_accept) return absl::InvalidArgumentError("listen: empty accept callback");
  return DoListen(runtime_.impl(), options_, address, std::move(on_accept));
}

}  // namespace netlayer::asio
