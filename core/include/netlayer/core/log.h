// Logging: one spdlog logger per layer ("netlayer.core", "netlayer.sim", "netlayer.posix",
// "netlayer.smac", "netlayer.rpc", "netlayer.tls", "netlayer.asio"), quiet (warnings and up) by
// default, plus any application loggers made with MakeLogger: every line on stderr in one format.
// NETLAYER_LOG_LEVEL (trace, debug, info, warn, error, off) is read by tools, never by the
// library itself.
//
// Formats (docs/OPERATIONS.md, "Logs"):
//   text (default): [2026-12-07 11:05:58.522] [netlayer.rpc] [info] [t=1.500s host=a] message
//                   (UTC date and time to the millisecond, logger, level, the stamp if any)
//   json:           one object per line with the fields
//                   {"time":"2026-12-07T11:05:58.522Z","level":"info","logger":"netlayer.rpc",
//                    "message":"...","stamp":"[t=1.500s host=a]"}
//                   ("stamp" only when a stamp is set: a simulated run's virtual time).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace netlayer {

enum class LogLayer { kCore, kSim, kPosix, kSmac, kRpc, kTls, kAsio };

// The layer's logger; created on first use, thread-safe.
spdlog::logger& Log(LogLayer layer);

// Sets the level of every netlayer logger and every logger made with MakeLogger.
void SetLogLevel(spdlog::level::level_enum level);

// A stamp put in front of every netlayer log line, e.g. the simulator's "[t=12.000s host=a]".
// Pass nullptr to remove. The function is called on the logging thread.
using LogStamp = std::function<std::string()>;
void SetLogStamp(LogStamp stamp);

// Sends every netlayer logger's lines to `sink` too (besides stderr), in the current format.
void AddLogSink(spdlog::sink_ptr sink);

enum class LogFormat { kText, kJson };
// Switches every logger and sink above (and those added later) to `format`. Thread-safe.
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();
// "text" or "json"; InvalidArgument naming the choices otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);

// An application's logger named `name`, writing where and how the netlayer loggers do (stderr,
// the format, the stamp, the level of SetLogLevel; initially info). Make it before starting
// threads; e.g. spdlog::set_default_logger(MakeLogger("myapp")) routes spdlog::info(...) there.
std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name);

}  // namespace netlayer
