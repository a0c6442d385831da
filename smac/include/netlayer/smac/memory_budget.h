// MemoryBudget: one byte budget shared by many connections (an rpc server's sessions) for the
// memory peers can make us hold: the buffers of frames being assembled (FrameDecoder charges
// each buffer's capacity as it grows, and releases it when the frame completes or the decoder
// is reset or destroyed), checked together with queued output by its owner (rpc::Server).
//
// It never allocates anything itself: it is accounting, so a charge that would pass the limit is
// refused before the memory is taken. charged() <= limit() always holds (asserted).
//
// Thread rules: thread-safe (atomics); no clock, no system call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace netlayer::smac {

class MemoryBudget {
 public:
  // REQUIRES limit > 0.
  explicit MemoryBudget(size_t limit);
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Charges `bytes` if charged() + bytes + `also_in_use` stays within limit(); else charges
  // nothing, counts a refusal and returns false. `also_in_use`: memory the owner counts against
  // the same budget without charging it here (an rpc server's queued output).
  bool TryCharge(size_t bytes, size_t also_in_use = 0);
  // REQUIRES bytes <= charged() (what was charged before).
  void Release(size_t bytes);

  size_t limit() const { return limit_; }
  size_t charged() const { return charged_.load(std::memory_order_relaxed); }
  // The most charged() ever was.
  size_t peak_charged() const { return peak_.load(std::memory_order_relaxed); }
  // TryCharge calls that were refused.
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  const size_t limit_;
  std::atomic<size_t> charged_{0};
  std::atomic<size_t> peak_{0};
  std::atomic<uint64_t> refusals_{0};
};

}  // namespace netlayer::smac
