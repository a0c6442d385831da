#include "netlayer/smac/memory_budget.h"

#include "netlayer/core/assert.h"

namespace netlayer::smac {

MemoryBudget::MemoryBudget(size_t limit) : limit_(limit) {
  NETLAYER_ASSERT(limit > 0, "a memory budget has a positive limit");
}

bool MemoryBudget::TryCharge(size_t bytes, size_t also_in_use) {
  size_t now = charged_.load(std::memory_order_relaxed);
  while (true) {
    if (bytes > limit_ || also_in_use > limit_ - bytes || now > limit_ - bytes - also_in_use) {
      refusals_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (charged_.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed)) break;
  }
  const size_t after = now + bytes;
  NETLAYER_ASSERT(after <= limit_, "a budget is never charged past its limit");
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (after > peak && !peak_.compare_exchange_weak(peak, after, std::memory_order_relaxed)) {
  }
  return true;
}

void MemoryBudget::Release(size_t bytes) {
  const size_t before = charged_.fetch_sub(bytes, std::memory_order_relaxed);
  NETLAYER_ASSERT(before >= bytes, "a budget releases only what was charged");
}

}  // namespace netlayer::smac
