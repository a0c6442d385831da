// Calls socket() in a guarded binary: the guard must stop it (tests/guard/check_guard.cmake).
#include <sys/socket.h>

#include <cstdio>

int main() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  std::printf("guard did not fire: socket() returned %d\n", fd);
  return 0;
}
