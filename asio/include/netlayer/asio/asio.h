// The asio backend: standalone Asio's io_context, run by a small pool of threads the application
// sizes, drives every connection (DESIGN.md §2, issue 14). For many connections on few threads:
// a connection costs one descriptor and a few kilobytes, no thread.
//
// Like posix, it is a thin driver: every decision (who sends next, the output bound, what a
// close waits for and how long, when to reset, the connect and back-off schedule) is a core
// state machine's (ConnectionState, ConnectSchedule), the very code the simulator runs; this
// backend carries out their Actions with Asio calls.
//
// Threads, and who calls what (no netlayer lock is held during any callback):
//   ConnectionHandler::InputData / ConnectionClosed: one of the Runtime's io threads, or the
//     thread that called SetHandler when it drains events queued while no handler was set.
//     Never two at once, never re-entered, for one connection (the state's delivery claim),
//     whichever io thread runs them.
//   ConnectHandler::Connected / FailedConnection: an io thread.
//   AcceptCallback: an io thread, one connection at a time per listener.
//   Env timers (Runtime::env()): an io thread, one timer at a time.
// Per connection: the reader waits for the socket to be readable (async_wait), reads without
// blocking into its io thread's buffer and hands the bytes to ReceiveInput; output goes out with
// a non-blocking send from the writing thread when nothing is queued (Write never blocks), and
// the rest with async_write_some. Close() flushes (bounded by close_linger, then the stream is
// reset), shuts the write side down and drains for at most close_drain; Abort() resets at once.
//
// Lifetimes: dropping the last reference to a Connection closes it (as Close()) and returns at
// once; the teardown goes on on the io threads. A Runtime must outlive the factories, listeners,
// connect attempts, rpc clients and servers made on it; destroying it aborts the connections and
// attempts still open, closes the listeners, cancels the timers, and joins its threads (it may
// not be destroyed on one of them). A Connection still held after that only fails its calls.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/core/host.h"

namespace netlayer::asio {

namespace internal {
struct RuntimeImpl;
}  // namespace internal

struct AsioOptions {
  // Output and input bounds, and the close linger and drain (core/connection_state.h).
  ConnectionLimits limits;
  // Each io thread's read buffer: one read takes at most this much. It belongs to the thread, not
  // to a connection (an idle connection holds no buffer); after a read that fills it the
  // reader reads again at once, up to a few times, before waiting again.
  size_t read_buffer_bytes = size_t{64} << 10;
  // Accepted connections waiting for Accept(); when full the listener stops accepting (the
  // kernel's backlog then pushes back on connecting clients).
  size_t accept_queue_limit = 128;
  int listen_backlog = 1024;
  // After an accept error such as EMFILE, wait this long before accepting again.
  absl::Duration accept_error_backoff = absl::Milliseconds(100);
};

class AsioClientFactory;
class AsioServerFactory;

// An io_context and the threads that run it, the Env on it, and a client and a server factory
// (AsioOptions): a netlayer::Host (core/host.h), so application code written against Host
// (examples/echo, apps/objstore) runs on it as on posix::Runtime or sim::SimHost. Factories made
// separately on the same Runtime (AsioClientFactory(runtime, options)) work alongside.
// Thread rules: any method from any thread; the destructor not from an io thread.
class Runtime final : public Host {
 public:
  // Starts `threads` io threads (at least 1); `options` configure client_factory() and
  // server_factory().
  explicit Runtime(int threads = 1, AsioOptions options = {});
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The real clock; timers on the io_context (run on an io thread, one at a time); condition-
  // variable notifications. Valid while the Runtime lives.
  Env& env() override;
  ClientConnectionFactory& client_factory() override;
  ServerConnectionFactory& server_factory() override;
  std::string name() const override { return "asio"; }
  int threads() const;

  // Internal: the io_context and its bookkeeping, for the backend's own files.
  const std::shared_ptr<internal::RuntimeImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<internal::RuntimeImpl> impl_;
  std::unique_ptr<AsioClientFactory> clients_;
  std::unique_ptr<AsioServerFactory> servers_;
};

// The client factory: each Connect runs the core ConnectSchedule on the io_context (host names
// resolved by Asio's asynchronous resolver, so no io thread blocks on DNS). Cancel() returns once
// no ConnectHandler method can run any more (it waits for one that is running, unless called
// from inside it). ConnectBlocking waits on the calling thread: never from an io thread.
// Thread rules: any method from any thread.
class AsioClientFactory final : public ClientConnectionFactory {
 public:
  explicit AsioClientFactory(Runtime& runtime, AsioOptions options = {})
      : runtime_(runtime), options_(options) {}
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override;
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override;

 private:
  Runtime& runtime_;
  AsioOptions options_;
};

// The server factory: an acceptor per Listener on the io_context. Addresses: IPv4, IPv6, host
// names (the first address the resolver gives; Listen itself resolves synchronously), unix:/path.
// A unix path left behind by a dead server (a socket nobody answers on) is reused; if something
// answers, Listen fails AlreadyExists; a path that is not a socket is never removed. The listener
// removes its socket file when it closes. Close() returns once no accept callback runs any more
// (unless called from inside one) and drops accepted connections not yet taken with Accept().
class AsioServerFactory final : public ServerConnectionFactory {
 public:
  explicit AsioServerFactory(Runtime& runtime, AsioOptions options = {})
      : runtime_(runtime), options_(options) {}
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override;
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override;

 private:
  Runtime& runtime_;
  AsioOptions options_;
};

}  // namespace netlayer::asio
