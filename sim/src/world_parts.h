// WorldParts: the simulator's parts composed (sim_types.h lists them), and the few helpers
// they all use (hosts by id, trace records).
//
// Thread rules: the world's single thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "connector.h"
#include "event_loop.h"
#include "fault_decider.h"
#include "faults.h"
#include "host.h"
#include "listener.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/generator.h"
#include "netlayer/sim/fault_tape.h"
#include "netlayer/sim/trace.h"
#include "netlayer/sim/world.h"
#include "network.h"
#include "sim_connection.h"

namespace netlayer::sim {

struct WorldParts;
// The host's disk, made on first use (disk.cc).
SimDisk& HostDisk(WorldParts& w, HostId host);

struct WorldParts {
  explicit WorldParts(WorldOptions o)
      : options(std::move(o)),
        generator(options.seed, options.choices, 0,
                  options.record_choices ? &options.record_choices->streams[0] : nullptr),
        fault_generator(options.seed ^ kFaultSalt, options.choices, 1,
                        options.record_choices ? &options.record_choices->streams[1] : nullptr),
        trace(options.trace_capacity),
        ref(std::make_shared<WorldParts*>(this)),
        loop(*this),
        net(*this),
        connector(*this),
        listeners(*this),
        decider(fault_generator, options.profile),
        faults(*this) {}
  ~WorldParts();
  WorldParts(const WorldParts&) = delete;
  WorldParts& operator=(const WorldParts&) = delete;

  // ---- Hosts ----
  bool ValidHost(HostId h) const { return h.value < hosts.size(); }
  Host& host(HostId h) {
    NETLAYER_ASSERT(ValidHost(h), "HostId does not belong to this world");
    return hosts[h.value];
  }
  const std::string& Label(HostId h) const {
    static const std::string* const kWorldLabel = new std::string("-");
    return ValidHost(h) ? hosts[h.value].name : *kWorldLabel;
  }

  // ---- Trace ----
  void Record(HostId h, TraceKind kind, std::string detail) {
    trace.Add(loop.now - loop.start, Label(h), kind, std::move(detail));
  }
  // A stream event: also fills the structured fields (stream id, the other host, size).
  void RecordStream(HostId h, TraceKind kind, std::string detail, const Link& link,
                    uint64_t bytes = 0);
  // The promise checker found a broken promise on a connection of `h`: traced, and the world
  // stops with `why`.
  void PromiseBroken(HostId h, absl::Status why);

  absl::Duration Exp(absl::Duration mean) { return ExpDuration(generator, mean); }

  // ---- The fault tape (netlayer/sim/fault_tape.h) ----
  // The host's number `name`, or nullopt.
  std::optional<HostId> HostByName(const std::string& name) const {
    for (uint32_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i].name == name) return HostId{i};
    }
    return std::nullopt;
  }
  // Replaying: whether the tape holds a `process` entry for (host, ordinal); the entry or null.
  const TapeEntry* TapeFind(const std::string& process, const std::string& host,
                            uint64_t ordinal) const {
    if (options.replay_tape == nullptr) return nullptr;
    for (const TapeEntry& e : options.replay_tape->entries) {
      if (e.process == process && e.host == host && (process == "clock" || e.ordinal == ordinal)) {
        return &e;
      }
    }
    return nullptr;
  }
  void TapeRecord(TapeEntry e) {
    if (options.record_tape != nullptr) options.record_tape->entries.push_back(std::move(e));
  }

  // XOR-ed into the seed for the fault decisions' own stream ("faults" in ASCII).
  static constexpr uint64_t kFaultSalt = 0x6661756c7473ULL;

  WorldOptions options;
  // Seeded, or fed by WorldOptions::choices (netlayer/sim/choices.h).
  ChoiceGenerator generator;
  // Every random fault decision draws from this stream, never from `generator`: the network and
  // the workload draw the same values whether faults come from the seed or from a tape.
  ChoiceGenerator fault_generator;
  // Per host name: connect attempts and accepts so far (the keys of tape entries).
  std::map<std::string, uint64_t> connect_attempts, accepts;
  Trace trace;
  WorldRef ref;
  std::vector<Host> hosts;

  // The parts, in dependency order.
  EventLoop loop;
  Network net;
  Connector connector;
  Listeners listeners;
  FaultDecider decider;
  Faults faults;
};

}  // namespace netlayer::sim
