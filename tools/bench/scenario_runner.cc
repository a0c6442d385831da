// The simulator's speed on issue 6's built-in `rpc-faults` scenario: seeds run back to back
// (fresh world each, the seed's fault mix, fault phase then liveness phase), timed on the wall
// clock. A seed that fails its invariants is a real error (the replay command is reported).
#include <string>

#include "scenarios/builtin.h"
#include "sim_figures.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;

class ScenarioSpeed : public Runner {
 public:
  ScenarioSpeed(std::string name, SimFigure figure) : name_(std::move(name)), figure_(figure) {}

  absl::Status Start() override {
    absl::StatusOr<const sim::ScenarioInfo*> info = scenarios::BuiltinScenarios().Find(name_);
    if (!info.ok()) return info.status();
    info_ = *info;
    return absl::OkStatus();
  }

  // Runs whole seeds until `duration` has passed (at least one seed).
  absl::StatusOr<double> Measure(Seconds duration) override {
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    uint64_t seeds = 0, events = 0;
    absl::Duration simulated;
    do {
      sim::ScenarioOptions options;
      options.seed = next_seed_++;
      sim::ScenarioResult result = sim::RunScenario(name_, info_->make(), options);
      if (!result.passed) {
        return absl::InternalError("scenario failed: " + result.Summary() + "; replay with `" +
                                   result.ReplayCommand() + "`");
      }
      ++seeds;
      events += result.events_run;
      simulated += result.simulated;
    } while (Clock::now() < deadline);
    double wall = Seconds(Clock::now() - start).count();
    switch (figure_) {
      case SimFigure::kEventsPerSecond:
        return events / wall;
      case SimFigure::kVirtualOverWall:
        return absl::ToDoubleSeconds(simulated) / wall;
      case SimFigure::kSeedsPerSecond:
        return seeds / wall;
    }
    return absl::InternalError("unknown figure");
  }

  absl::Status Stop() override { return absl::OkStatus(); }

 private:
  std::string name_;
  SimFigure figure_;
  const sim::ScenarioInfo* info_ = nullptr;
  uint64_t next_seed_ = 1;
};

}  // namespace

std::unique_ptr<Runner> MakeScenarioRunner(const std::string& scenario, SimFigure figure) {
  return std::make_unique<ScenarioSpeed>(scenario, figure);
}

}  // namespace netlayer::bench
