// Seeded randomness with specified algorithms, so the same seed gives the same numbers with any
// compiler, standard library and build type. std::*_distribution and absl::BitGen are not used:
// their output is implementation-defined or seeded per process.
#pragma once

#include <cstdint>

namespace netlayer {

class Generator {
 public:
  virtual ~Generator() = default;
  // 64 uniformly distributed bits.
  virtual uint64_t Next() = 0;
};

// xoshiro256** (Blackman and Vigna), its state filled from the seed by SplitMix64.
class Xoshiro256 final : public Generator {
 public:
  explicit Xoshiro256(uint64_t seed);
  uint64_t Next() override;

 private:
  uint64_t s_[4];
};

// SplitMix64 step: also useful to derive independent sub-seeds from one seed.
uint64_t SplitMix64(uint64_t& state);

// The project's portable distributions.
// Uniform in [lo, hi], inclusive; REQUIRES lo <= hi. Unbiased (Lemire's method with rejection).
uint64_t UniformInt(Generator& gen, uint64_t lo, uint64_t hi);
// Uniform in [0, 1), 53 random bits.
double UniformDouble(Generator& gen);
// Exponential with the given mean (> 0), by inversion.
double Exponential(Generator& gen, double mean);
// True with probability p (clamped to [0, 1]).
bool Bernoulli(Generator& gen, double p);

}  // namespace netlayer
