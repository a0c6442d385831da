// Returning freed memory to the system, for the threaded backends (posix, asio) only: core,
// smac, rpc and tls make no system call.
//
// glibc keeps freed heap memory for reuse, and after a large mmap-ed buffer is freed it raises
// its mmap threshold (up to 32 MiB), so the next large buffers come from the heap and stay
// resident after they are freed. A connection that received a large amount (a partial frame
// of a hostile peer, a large message) calls ReleaseFreedMemory when its reader ends, after its
// input buffers were released, so a server's RSS comes back near its baseline after a hostile
// mix (docs/OPERATIONS.md §3).
//
// Thread rules: any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace netlayer::threaded {

// A connection whose reader received at least this much calls ReleaseFreedMemory at its end.
inline constexpr size_t kReleaseMemoryAfterInputBytes = size_t{1} << 20;

// Buffers of at least this size are mapped (mmap) and unmapped when freed, so a large buffer
// never stays resident after it is freed (UseMappedLargeBuffers).
inline constexpr size_t kMappedBufferBytes = size_t{4} << 20;

// Once per process: glibc's M_MMAP_THRESHOLD fixed at kMappedBufferBytes (which also stops glibc
// from raising it after large frees). Called by the backends when a connection starts.
void UseMappedLargeBuffers();

// malloc_trim(0) where glibc has it (under a sanitizer, the sanitizer allocator's purge; a no-op
// elsewhere). Costs a walk of the heap's free chunks; called per large connection, not per read.
void ReleaseFreedMemory();
// How many times ReleaseFreedMemory ran in this process (tests).
uint64_t FreedMemoryReleases();

}  // namespace netlayer::threaded
