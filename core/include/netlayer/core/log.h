// Logging: one spdlog logger per layer ("netlayer.core", "netlayer.sim", "netlayer.posix",
// "netlayer.smac", "netlayer.rpc", "netlayer.tls", "netlayer.asio"), quiet (warnings and up) by
// default. NETLAYER_LOG_LEVEL (trace, debug, info, warn, error, off) is read by tools, never by
// the library itself.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "spdlog/spdlog.h"

namespace netlayer {

enum class LogLayer { kCore, kSim, kPosix, kSmac, kRpc, kTls, kAsio };

// The layer's logger; created on first use, thread-safe.
spdlog::logger& Log(LogLayer layer);

// Sets the level of every netlayer logger.
void SetLogLevel(spdlog::level::level_enum level);

// A stamp put in front of every netlayer log line, e.g. the simulator's "[t=12.000s host=a]".
// Pass nullptr to remove. The function is called on the logging thread.
using LogStamp = std::function<std::string()>;
void SetLogStamp(LogStamp stamp);

// Sends every netlayer logger's lines to `sink` too (besides stderr), formatted with the stamp.
void AddLogSink(spdlog::sink_ptr sink);

}  // namespace netlayer
