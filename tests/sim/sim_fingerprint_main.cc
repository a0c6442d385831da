// sim_fingerprint [--hash-only] SEED [--no-faults]: runs the busy scenario (busy_scenario.h) for
// one seed and prints its trace hash. Without --hash-only it also prints the outcome, the
// number of world events, virtual time and wall time (a rough speed figure). Exit status 0 if
// the scenario's checks held, 1 if not, 2 on bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "busy_scenario.h"

int main(int argc, char** argv) {
  bool hash_only = false;
  bool faults = true;
  const char* seed_text = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--hash-only") == 0) {
      hash_only = true;
    } else if (std::strcmp(argv[i], "--no-faults") == 0) {
      faults = false;
    } else if (seed_text == nullptr) {
      seed_text = argv[i];
    } else {
      seed_text = nullptr;
      break;
    }
  }
  char* end = nullptr;
  const unsigned long long seed = seed_text ? std::strtoull(seed_text, &end, 10) : 0;
  if (seed_text == nullptr || *end != '\0') {
    std::fprintf(stderr, "usage: sim_fingerprint [--hash-only] [--no-faults] SEED\n");
    return 2;
  }
  netlayer::sim::BusyOptions options;
  options.seed = seed;
  options.faults = faults;
  const auto wall0 = std::chrono::steady_clock::now();
  netlayer::sim::BusyResult r = netlayer::sim::RunBusyScenario(options);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  if (hash_only) {
    std::printf("%s\n", r.hash.c_str());
  } else {
    const double virt = absl::ToDoubleSeconds(r.virtual_time);
    std::printf(
        "seed %llu: %s%s\nhash %s\ntrace events %llu, world events %llu, connects %d, "
        "bytes echoed %llu\nvirtual %.3f s, wall %.3f s: %.0f events/s, %.1f virtual s per wall "
        "s\nprofile: %s\n",
        seed, r.ok ? "ok" : "FAILED: ", r.error.c_str(), r.hash.c_str(),
        static_cast<unsigned long long>(r.trace_events),
        static_cast<unsigned long long>(r.world_events), r.connections,
        static_cast<unsigned long long>(r.bytes_echoed), virt, wall,
        static_cast<double>(r.world_events) / wall, virt / wall, r.profile.c_str());
  }
  return r.ok ? 0 : 1;
}
