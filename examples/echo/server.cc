// echo-server [ADDRESS]: serves "echo" on ADDRESS (default 127.0.0.1:0, an ephemeral port),
// prints "listening on <address>", and on SIGTERM or SIGINT shuts down gracefully.
#include <csignal>
#include <cstdio>

#include "echo.h"
#include "netlayer/posix/runtime.h"

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  netlayer::posix::Runtime runtime;
  auto address = netlayer::Address::Parse(argc > 1 ? argv[1] : "127.0.0.1:0");
  if (!address.ok()) return std::fprintf(stderr, "%s\n", address.status().ToString().c_str()), 2;
  auto server = echo::StartEchoServer(runtime, *address);
  if (!server.ok()) return std::fprintf(stderr, "%s\n", server.status().ToString().c_str()), 1;
  std::printf("listening on %s\n", server->listener->address().ToString().c_str());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop, &signal);
  server->listener->Close();
  absl::Status done = server->rpc->Shutdown(absl::Now() + absl::Seconds(5));
  std::printf("stopped: %s\n", done.ToString().c_str());
  return done.ok() ? 0 : 1;
}
