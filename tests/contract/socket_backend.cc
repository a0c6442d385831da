#include "socket_backend.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

namespace netlayer::contract {

bool Ipv6LoopbackWorks() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string MakeUnixSocketDir() {
  char dir[] = "/tmp/netlayer-contract-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return "";
  return dir;
}

}  // namespace netlayer::contract
