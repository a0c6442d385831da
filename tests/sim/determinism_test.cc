// Same seed, same run: the trace hash of a busy faulty scenario is the same in two runs in one
// process (the fresh-process check is the sim_fingerprint_fresh_process ctest), and differs
// between seeds. Under every seed's fault mix, echoed bytes are exactly the bytes written.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "busy_scenario.h"

namespace netlayer::sim {
namespace {

BusyOptions Short(uint64_t seed, bool faults = true) {
  BusyOptions o;
  o.seed = seed;
  o.faults = faults;
  o.fault_phase = absl::Seconds(4);
  o.heal_phase = absl::Seconds(4);
  return o;
}

TEST(Determinism, SameSeedSameHashInOneProcess) {
  for (uint64_t seed : {1, 42}) {
    BusyResult a = RunBusyScenario(Short(seed));
    BusyResult b = RunBusyScenario(Short(seed));
    EXPECT_TRUE(a.ok) << "seed " << seed << ": " << a.error;
    EXPECT_EQ(a.hash, b.hash) << "seed " << seed;
    EXPECT_EQ(a.world_events, b.world_events);
    EXPECT_EQ(a.bytes_echoed, b.bytes_echoed);
    EXPECT_GT(a.bytes_echoed, 0u);
  }
}

TEST(Determinism, DifferentSeedsGiveDifferentTraces) {
  std::set<std::string> hashes;
  for (uint64_t seed = 1; seed <= 6; ++seed) hashes.insert(RunBusyScenario(Short(seed)).hash);
  EXPECT_EQ(hashes.size(), 6u);
}

// Faults delay, stall or break a stream, never drop, duplicate or reorder bytes in it; after
// the liveness phase begins every client recovers.
TEST(Determinism, EveryFaultMixKeepsStreamsExactAndRecovers) {
  int connects = 0;
  std::map<std::string, int> faults;
  for (uint64_t seed = 100; seed < 116; ++seed) {
    BusyResult r = RunBusyScenario(Short(seed));
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.error << "\nprofile " << r.profile;
    connects += r.connections;
    for (const auto& [kind, n] : r.faults) faults[kind] += n;
  }
  EXPECT_GT(connects, 16 * 3) << "faults should have broken some connections";
  for (const char* kind : {"partition", "clog", "reset", "crash", "connect-fail", "freeze", "stall",
                           "flap", "clock"}) {
    EXPECT_GT(faults[kind], 0) << "no seed injected a random " << kind;
  }
}

}  // namespace
}  // namespace netlayer::sim
