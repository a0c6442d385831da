// netlayer-sim: the scenario tool over the built-in scenarios (scenarios/builtin.h). Every
// command and its output come from netlayer::sim::Main, the entry point users' own scenario
// binaries share (docs/SCENARIOS.md).
#include "netlayer/sim/sim_main.h"
#include "scenarios/builtin.h"

int main(int argc, char** argv) {
  netlayer::sim::MainOptions options;
  options.description = "netlayer-sim: run, sweep, replay and check the built-in scenarios";
  return netlayer::sim::Main(netlayer::scenarios::BuiltinScenarios(), argc, argv, options);
}
