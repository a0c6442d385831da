// Options drawn per seed (docs/SIMULATOR.md "Drawn options"): a scenario may ask for its
// connection limits (and, with rpc/draw helpers of its own, its rpc options) to be drawn within
// their valid ranges, so a sweep tests many configurations, not only the defaults.
//
// Draw from a generator of the scenario's own, seeded with OptionsGenerator(seed): never from
// the world's generator (the world does not exist yet in Scenario::ConfigureWorld), so the rest
// of the run is as it would be with the same values set by hand. Print the drawn values with
// Scenario::DrawnOptions (the report shows them beside the fault profile).
//
// Thread rules: none (pure functions).
#pragma once

#include <cstdint>
#include <string>

#include "netlayer/core/connection_state.h"
#include "netlayer/core/generator.h"

namespace netlayer::sim {

// XOR-ed into the seed for the drawn options' generator ("drawn" in ASCII).
inline constexpr uint64_t kDrawSalt = 0x647261776eULL;
inline Xoshiro256 OptionsGenerator(uint64_t seed) { return Xoshiro256(seed ^ kDrawSalt); }

// `base` with its bounds drawn: max_output_bytes one of base, base/2, base/4 (never below
// `min_output_bytes`, the largest single write the scenario makes), close_linger uniform in
// [100 ms, base.close_linger], close_drain uniform in [10 ms, base.close_drain],
// max_writer_drain_rounds uniform in [0, base]. The planted-bug hook is kept as it is.
ConnectionLimits DrawConnectionLimits(Generator& gen, const ConnectionLimits& base,
                                      size_t min_output_bytes);
// "limits: max_output=... linger=... drain=... writer_rounds=..." (one line).
std::string DescribeConnectionLimits(const ConnectionLimits& limits);

}  // namespace netlayer::sim
