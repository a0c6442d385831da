// The POSIX backend: real sockets, a select() input thread and a blocking output thread per
// connection (DESIGN.md §5).
//
// Threads, and who calls what (no netlayer lock is held during any callback):
//   ConnectionHandler::InputData / ConnectionClosed: the connection's input thread, or the
//     thread that called SetHandler when it drains events queued while no handler was set.
//   ConnectHandler::Connected / FailedConnection: the connect attempt's own thread.
//   AcceptCallback: the listener's accept thread.
//   Env timers: PosixEnv's timer thread.
// Per connection: the input thread waits in select() (poll() for a descriptor >= FD_SETSIZE)
// on the socket and an eventfd, reads, and feeds core::ConnectionState; the output thread waits
// on a condition variable and sends queued output with one sendmsg of many pieces. Write() sends
// directly with a non-blocking send when nothing is queued and queues only the rest; it never
// blocks. Close() flushes (bounded by ConnectionLimits::close_linger, then the socket is reset),
// shuts the write side down and waits briefly (close_drain) for the peer's end of stream; Abort()
// resets at once. Every one of these decisions is core::ConnectionState's (the simulator runs the
// same code); this backend only carries out its Actions with system calls.
//
// Lifetimes: the application's shared_ptr<Connection> owns the connection; the backend's threads
// hold no reference to it. Dropping the last reference closes it (as Close()) and returns at
// once, never waiting for the teardown: the connection's own threads finish it (bounded by
// close_linger and close_drain) and end by themselves; the last one closes the descriptors. So a
// timer, a handler or any thread that drops a connection is never held up by a slow peer.
// WaitForConnectionThreads waits for them (a Sys passed in PosixOptions must outlive them).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netlayer/core/connection.h"
#include "netlayer/core/connection_state.h"
#include "netlayer/core/factory.h"
#include "netlayer/posix/sys.h"

namespace netlayer::posix {

struct PosixOptions {
  // The system calls; nullptr means RealSys(). Must outlive everything made with these options.
  Sys* sys = nullptr;
  // Output and input bounds, and the close linger and drain (core/connection_state.h).
  ConnectionLimits limits;
  // Size of each connection's read buffer: one recv reads at most this much, and it is the
  // input thread's only buffer per connection beside the state's bounded queues. After a read
  // that fills it, the input thread reads again at once rather than waiting in select() first.
  // 64 KiB + 4 KiB: a 64 KiB message with its smac and rpc headers fits one read and is handed
  // over in place (with 64 KiB, each was a read, a 64 KiB copy and another read: 64 KiB smac
  // ping-pong went from 0.83-0.86x raw sockets to 0.95-1.13x in netlayer-bench). Much larger
  // buffers slowed 64 KiB bulk transfers in the same measurements (more wake-ups); larger
  // frames are read into their own buffers (ConnectionHandler::InputBuffer) anyway. Pages are
  // touched only as reads reach them: idle connections keep little resident.
  size_t read_buffer_bytes = (size_t{64} << 10) + 4096;
  // Accepted connections waiting for Accept(); when full, the accept thread stops accepting
  // (the kernel's backlog then applies back-pressure to connecting clients).
  size_t accept_queue_limit = 128;
  int listen_backlog = 128;
  // After an accept error such as EMFILE, wait this long before accepting again.
  absl::Duration accept_error_backoff = absl::Milliseconds(100);

  Sys& system() const { return sys != nullptr ? *sys : RealSys(); }
};

// The client factory: each Connect runs the core ConnectSchedule on its own thread on the real
// clock; ConnectBlocking runs it on the calling thread. A connect attempt that hangs is bounded by
// ConnectOptions::attempt_timeout. Cancel() wakes the attempt's thread at once and returns when
// that thread has finished (a host name lookup in progress is not interruptible), so no
// ConnectHandler method is called after Cancel() returns; called from inside that callback, it
// returns at once.
// Thread rules: any method from any thread.
class PosixClientFactory final : public ClientConnectionFactory {
 public:
  explicit PosixClientFactory(PosixOptions options = {}) : options_(options) {}
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override;
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override;

 private:
  PosixOptions options_;
};

// The server factory: a listening socket and an accept thread per Listener. Addresses: IPv4,
// IPv6, host names (the first address getaddrinfo gives), unix:/path. A unix path left behind by
// a dead server (a socket file nothing answers on) is removed and reused; if something answers,
// Listen fails AlreadyExists; a path that exists and is not a socket is never removed. The
// listener removes its unix socket file when it closes. Closing the listener drops connections
// accepted but not yet taken with Accept() (they are closed).
class PosixServerFactory final : public ServerConnectionFactory {
 public:
  explicit PosixServerFactory(PosixOptions options = {}) : options_(options) {}
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override;
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override;

 private:
  PosixOptions options_;
};

// Makes a Connection of a connected stream socket (any descriptor number, including one >=
// FD_SETSIZE). The connection owns `fd` from then on, also on failure (it is closed then).
absl::StatusOr<std::shared_ptr<Connection>> AdoptSocket(int fd, const PosixOptions& options = {});

// Waits until every posix connection thread of the process has ended (or `deadline` passes;
// returns whether they all ended). For tests and orderly shutdown: a connection's threads outlive
// its last reference while they flush and drain (bounded by close_linger and close_drain).
bool WaitForConnectionThreads(absl::Time deadline);

}  // namespace netlayer::posix
