// mini-sim: a scenario tool over one deliberately cheap scenario, built the way users build
// theirs (netlayer::sim::Main over their own registry). The sharding test sweeps thousands of
// its seeds in seconds; the built-in scenarios cost far more per seed.
//
// "ticks": one host, twenty scripted steps at times drawn from the seed, each noted in the
// trace. Invariant: every step ran. Planted bug "lose-a-tick": on seeds whose first draw is a
// multiple of 7 one step forgets to count itself, so a sweep fails on about one seed in seven.
// Probes: "mini-sim.tick" is reached by every run, "mini-sim.early-tick" holds on some seeds
// only (a step in the first 20 ms), "mini-sim.never" is planted where no run goes (a hole:
// --require-probes fails on it). "ticks-hole" is the same scenario requiring "mini-sim.never"
// (Scenario::RequiredProbes): its sweep fails without the flag.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/core/probe.h"
#include "netlayer/sim/sim_main.h"

namespace {

using netlayer::sim::FaultProfile;
using netlayer::sim::Scenario;
using netlayer::sim::ScenarioContext;

class Ticks : public Scenario {
 public:
  explicit Ticks(std::vector<std::string> required = {}) : required_(std::move(required)) {}
  std::vector<std::string> RequiredProbes() const override { return required_; }
  std::vector<netlayer::sim::Plant> Plants() const override {
    return {{"lose-a-tick", "on one seed in seven a step forgets to count itself"}};
  }
  FaultProfile Profile(uint64_t) override { return FaultProfile(); }  // calm: no random faults
  absl::Duration FaultPhase() const override { return absl::Seconds(1); }
  absl::Duration LivenessBound() const override { return absl::Seconds(1); }

  void Setup(ScenarioContext& ctx) override {
    auto& world = ctx.world();
    const auto host = world.AddHost("ticker");
    const bool lose = ctx.planted("lose-a-tick") && world.generator().Next() % 7 == 0;
    for (int i = 0; i < kTicks; ++i) {
      const absl::Duration at = absl::Milliseconds(world.generator().Next() % 900);
      (void)world.At(world.start() + at, [this, &world, host = *host, i, lose, at] {
        world.Note(host, absl::StrCat("tick ", i));
        NETLAYER_REACHABLE("mini-sim.tick");
        NETLAYER_SOMETIMES(at < absl::Milliseconds(20), "mini-sim.early-tick");
        if (i >= kTicks) NETLAYER_REACHABLE("mini-sim.never");
        if (!(lose && i == 3)) ++ticks_;
      });
    }
  }
  void Finish(ScenarioContext& ctx) override {
    ctx.Check(ticks_ == kTicks, "every tick ran", [&] { return absl::StrCat(ticks_, " ticks"); });
  }

 private:
  static constexpr int kTicks = 20;
  std::vector<std::string> required_;
  int ticks_ = 0;
};

const netlayer::sim::ScenarioRegistry& Registry() {
  static const auto* registry = [] {
    auto* r = new netlayer::sim::ScenarioRegistry();
    (void)r->Add({"ticks", "twenty scripted steps at seeded times (cheap)",
                  [] { return std::make_unique<Ticks>(); }});
    (void)r->Add({"ticks-hole", "ticks, requiring a probe no run reaches", [] {
                    return std::make_unique<Ticks>(
                        std::vector<std::string>{"mini-sim.tick", "mini-sim.never"});
                  }});
    return r;
  }();
  return *registry;
}

}  // namespace

int main(int argc, char** argv) { return netlayer::sim::Main(Registry(), argc, argv); }
