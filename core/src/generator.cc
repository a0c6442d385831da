#include "netlayer/core/generator.h"

#include <cmath>

#include "netlayer/core/assert.h"

namespace netlayer {
namespace {
__extension__ typedef unsigned __int128 U128;
uint64_t RotateLeft(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Xoshiro256::Xoshiro256(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& word : s_) word = SplitMix64(state);
}

uint64_t Xoshiro256::Next() {
  const uint64_t result = RotateLeft(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = RotateLeft(s_[3], 45);
  return result;
}

uint64_t UniformInt(Generator& gen, uint64_t lo, uint64_t hi) {
  NETLAYER_ASSERT(lo <= hi, "UniformInt needs lo <= hi");
  const uint64_t span = hi - lo;
  if (span == UINT64_MAX) return gen.Next();
  const uint64_t range = span + 1;
  // Lemire's nearly-divisionless method: multiply, reject the biased low part.
  U128 m = static_cast<U128>(gen.Next()) * range;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < range) {
    const uint64_t threshold = (0 - range) % range;
    while (low < threshold) {
      m = static_cast<U128>(gen.Next()) * range;
      low = static_cast<uint64_t>(m);
    }
  }
  return lo + static_cast<uint64_t>(m >> 64);
}

double UniformDouble(Generator& gen) { return static_cast<double>(gen.Next() >> 11) * 0x1.0p-53; }

double Exponential(Generator& gen, double mean) {
  NETLAYER_ASSERT(mean > 0, "Exponential needs a positive mean");
  // 1 - u is in (0, 1], so the log is finite.
  return -std::log(1.0 - UniformDouble(gen)) * mean;
}

bool Bernoulli(Generator& gen, double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return UniformDouble(gen) < p;
}

}  // namespace netlayer
