// The no-socket, no-thread guard (DESIGN.md §7). Linked into every test binary of core/, smac/,
// rpc/ and sim/: defining these functions in the executable interposes on libc's, so any call to
// them from the code under test stops the binary with a message naming the call. A simulation
// test that opens a socket or starts a thread is not deterministic, and this makes it loud.
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {
[[noreturn]] void Forbidden(const char* call) {
  const char* prefix = "netlayer guard: ";
  const char* suffix =
      "() called in a guarded test binary (core/smac/rpc/sim tests may not create sockets, "
      "threads or processes)\n";
  // write(2) directly: the guard must not depend on anything that might itself be guarded.
  (void)!write(2, prefix, std::strlen(prefix));
  (void)!write(2, call, std::strlen(call));
  (void)!write(2, suffix, std::strlen(suffix));
  std::abort();
}
}  // namespace

extern "C" {
int socket(int, int, int) noexcept { Forbidden("socket"); }
int connect(int, const struct sockaddr*, socklen_t) { Forbidden("connect"); }
int accept(int, struct sockaddr*, socklen_t*) { Forbidden("accept"); }
int accept4(int, struct sockaddr*, socklen_t*, int) { Forbidden("accept4"); }
int bind(int, const struct sockaddr*, socklen_t) noexcept { Forbidden("bind"); }
int listen(int, int) noexcept { Forbidden("listen"); }
int select(int, fd_set*, fd_set*, fd_set*, struct timeval*) { Forbidden("select"); }
int poll(struct pollfd*, nfds_t, int) { Forbidden("poll"); }
int epoll_create(int) noexcept { Forbidden("epoll_create"); }
int epoll_create1(int) noexcept { Forbidden("epoll_create1"); }
int pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) noexcept {
  Forbidden("pthread_create");
}
pid_t fork() noexcept { Forbidden("fork"); }
}
