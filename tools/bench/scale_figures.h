// The scale group (built when netlayer::asio, netlayer::posix and netlayer::rpc exist).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "attack.h"
#include "harness.h"

namespace netlayer::bench {

// Calls per second answered by an rpc echo server on `server_backend` ("posix" or "asio", with
// `server_io_threads` io threads for asio) in a child process, with `connections` client
// connections (asio, in this process) each making `calls_per_second` calls a second. Times every
// call; reports the server's threads and resident memory as gauges.
//
// With `attack` (the attack group, issue 29): during each Measure an Attacker (attack.h) runs
// that mix against the same server beside the well-behaved connections, and the server keeps its
// default max_sessions; the hostile connections opened and ended by the server are gauges.
std::unique_ptr<Runner> MakeScaleRunner(const std::string& server_backend, int connections,
                                        double calls_per_second, int server_io_threads,
                                        std::optional<AttackMix> attack = std::nullopt);

// Raises RLIMIT_NOFILE as far as allowed (the hard limit too, with the privilege); returns the
// soft limit now.
size_t RaiseDescriptorLimit();

// The child side: serves rpc echo on 127.0.0.1 (an ephemeral port, printed on stdout) until
// stdin closes, with rpc::ServerOptions::max_sessions = `max_sessions` (the figure's connection
// count: the default, 1024, would refuse the connections past it). Returns the process's exit
// status.
int RunScaleServer(const std::string& backend, int io_threads, int max_sessions);

}  // namespace netlayer::bench
