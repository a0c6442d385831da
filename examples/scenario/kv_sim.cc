// kv-sim: this project's scenario tool. netlayer::sim::Main gives it every command of
// netlayer-sim (list, run, sweep with workers and shards, merge, check-determinism), with replay
// commands that name this binary.
#include "kv_scenario.h"
#include "netlayer/sim/sim_main.h"

int main(int argc, char** argv) { return netlayer::sim::Main(kv::Scenarios(), argc, argv); }
