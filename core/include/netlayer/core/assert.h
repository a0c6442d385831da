// Assertions that stay on in every build type (TigerStyle): they state what must hold, and a
// violated invariant that guards data stops the process with a clear message instead of
// corrupting a stream.
#pragma once

namespace netlayer::internal {
[[noreturn]] void AssertFail(const char* condition, const char* file, int line,
                             const char* message);
}  // namespace netlayer::internal

// NETLAYER_ASSERT(cond, "why it must hold") is checked in Debug and Release alike.
#define NETLAYER_ASSERT(condition, message)                                        \
  do {                                                                             \
    if (!(condition)) [[unlikely]] {                                               \
      ::netlayer::internal::AssertFail(#condition, __FILE__, __LINE__, (message)); \
    }                                                                              \
  } while (false)
