// netlayer-sim: the scenario tool over the built-in scenarios (scenarios/builtin.h). Every
// command and its output come from netlayer::sim::Main, the entry point users' own scenario
// binaries share (docs/SCENARIOS.md).
#include <cstring>
#include <iostream>

#include "netlayer/history/transactions.h"
#include "netlayer/sim/sim_main.h"
#include "scenarios/builtin.h"

int main(int argc, char** argv) {
  // check-history MODEL FILE: any recorded history (docs/HISTORY.md), from a run's --history
  // or from real processes.
  if (argc >= 2 && std::strcmp(argv[1], "check-history") == 0) {
    if (argc != 4) {
      std::cerr << "usage: " << argv[0]
                << " check-history register|kv|mutex|queue|objstore HISTORY.jsonl\n";
      return 2;
    }
    return netlayer::history::CheckHistoryCommand(argv[2], argv[3], std::cout);
  }
  netlayer::sim::MainOptions options;
  options.description = "netlayer-sim: run, sweep, replay and check the built-in scenarios";
  return netlayer::sim::Main(netlayer::scenarios::BuiltinScenarios(), argc, argv, options);
}
