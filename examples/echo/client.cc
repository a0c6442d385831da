// echo-client ADDRESS TEXT: calls "echo" on the server at ADDRESS and prints the reply.
#include <cstdio>

#include "echo.h"
#include "netlayer/posix/runtime.h"

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: echo-client ADDRESS TEXT\n"), 2;
  netlayer::posix::Runtime runtime;
  auto address = netlayer::Address::Parse(argv[1]);
  if (!address.ok()) return std::fprintf(stderr, "%s\n", address.status().ToString().c_str()), 2;
  auto reply = echo::Echo(runtime, *address, argv[2], absl::Seconds(5));
  if (!reply.ok()) return std::fprintf(stderr, "%s\n", reply.status().ToString().c_str()), 1;
  std::printf("%s\n", reply->c_str());
  return 0;
}
