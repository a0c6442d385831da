#include "netlayer/threaded/memory.h"

#include <atomic>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Under a sanitizer the heap is the sanitizer's allocator, not glibc's: glibc's malloc_trim and
// mallopt would walk arenas that malloc never used (malloc_trim crashed in a sanitized
// multi-threaded run: "malloc assertion failure in __malloc_arena_thread_freeres", a SEGV in
// mtrim). The sanitizer's own purge does what malloc_trim does for its allocator.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NETLAYER_SANITIZED_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define NETLAYER_SANITIZED_HEAP 1
#endif
#endif

#if defined(NETLAYER_SANITIZED_HEAP)
extern "C" void __sanitizer_purge_allocator() __attribute__((weak));
#endif

namespace netlayer::threaded {
namespace {
std::atomic<uint64_t> releases{0};
}  // namespace

void UseMappedLargeBuffers() {
  static const bool once = [] {
#if defined(__GLIBC__) && !defined(NETLAYER_SANITIZED_HEAP)
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMappedBufferBytes));
#endif
    return true;
  }();
  (void)once;
}

void ReleaseFreedMemory() {
#if defined(NETLAYER_SANITIZED_HEAP)
  if (&__sanitizer_purge_allocator != nullptr) __sanitizer_purge_allocator();
#elif defined(__GLIBC__)
  malloc_trim(0);
#endif
  releases.fetch_add(1, std::memory_order_relaxed);
}

uint64_t FreedMemoryReleases() { return releases.load(std::memory_order_relaxed); }

}  // namespace netlayer::threaded
