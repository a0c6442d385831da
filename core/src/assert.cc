#include "netlayer/core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace netlayer::internal {

void AssertFail(const char* condition, const char* file, int line, const char* message) {
  std::fprintf(stderr, "netlayer: assertion failed at %s:%d: %s (%s)\n", file, line, message,
               condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace netlayer::internal
