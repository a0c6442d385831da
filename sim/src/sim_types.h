// Names every part of the simulator shares (sim/src is private to the sim library).
//
// The world is composed of parts, each in its own file (docs/SIMULATOR.md, "Parts"):
//   event_loop.h     virtual time and the event queue (EventLoop)
//   host.h           a host: its Env (clock, timers), incarnation, freeze state (Host, HostEnv)
//   sim_connection.h one end of a simulated stream, driving core ConnectionState (SimConnection)
//   network.h        streams, pipes, partitions, clogs, byte accounting (Network, Link, Pipe)
//   connector.h      connect attempts and the SYN model (Connector, PendingConnect)
//   listener.h       listeners and the server factory (SimListener, SimServerFactory)
//   fault_decider.h  every random fault decision, in one place (FaultDecider)
//   faults.h         the fault processes and scripted faults (Faults)
//   world_parts.h    WorldParts: the parts composed, and the helpers they share
// Each part holds a reference to WorldParts to reach the others; no part owns another. The
// public World's Impl (world.cc only) is WorldParts; nothing else in sim/ names it.
#pragma once

#include <cstdint>
#include <memory>

#include "netlayer/sim/world.h"

namespace netlayer::sim {

struct WorldParts;
class SimConnection;
class SimListener;
class PendingConnect;
struct Link;
struct Host;

// A handle to the world that outlives it: objects handed to the application hold one and find
// nullptr once the world is gone.
using WorldRef = std::shared_ptr<WorldParts*>;

// How a host dies (DESIGN.md §12): its process crashes on a live machine (the kernel closes its
// sockets: a FIN per stream, an RST where input was unread), or the machine loses power (nothing
// leaves it).
enum class HostDeath { kProcessCrash, kPowerOff };

// The owner of world-level events (not a host's).
inline constexpr HostId kNoHost{};

}  // namespace netlayer::sim
