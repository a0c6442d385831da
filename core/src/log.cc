#include "netlayer/core/log.h"

#include <array>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace netlayer {
namespace {

std::mutex& StampMutex() {
  static std::mutex mu;
  return mu;
}
LogStamp& Stamp() {
  static LogStamp stamp;  // guarded by StampMutex()
  return stamp;
}
std::string StampText() {
  std::lock_guard<std::mutex> lock(StampMutex());
  return Stamp() ? Stamp()() : std::string();
}

// "%*" in the pattern: the stamp (e.g. virtual time and host), or nothing.
class StampFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string text = StampText();
    if (!text.empty()) {
      dest.append(text.data(), text.data() + text.size());
      dest.push_back(' ');
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<StampFlag>();
  }
};

void AppendJsonString(std::string_view text, std::string& out) {
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);  // UTF-8 passes through; other bytes are the caller's
        }
    }
  }
  out.push_back('"');
}

// One JSON object per line: time (UTC, ms), level, logger, message, stamp (if set).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    const std::time_t seconds = std::chrono::system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char time[96];
    std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    std::string out = absl::StrCat("{\"time\":\"", time, "\",\"level\":\"",
                                   std::string(level.data(), level.size()), "\",\"logger\":");
    AppendJsonString(std::string_view(msg.logger_name.data(), msg.logger_name.size()), out);
    out += ",\"message\":";
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), out);
    const std::string stamp = StampText();
    if (!stamp.empty()) {
      out += ",\"stamp\":";
      AppendJsonString(stamp, out);
    }
    out += "}\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<StampFlag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %*%v");
  return formatter;
}

// One name per LogLayer, in its order.
constexpr const char* kNames[] = {"netlayer.core", "netlayer.sim", "netlayer.posix",
                                  "netlayer.smac", "netlayer.rpc", "netlayer.tls",
                                  "netlayer.asio"};
static_assert(std::size(kNames) == static_cast<size_t>(LogLayer::kAsio) + 1,
              "a logger name for every LogLayer");

struct Loggers {
  std::array<std::shared_ptr<spdlog::logger>, std::size(kNames)> by_layer;
  std::mutex mu;
  LogFormat format = LogFormat::kText;                    // guarded by mu
  std::vector<spdlog::sink_ptr> sinks;                    // guarded by mu: stderr, added ones
  std::vector<std::shared_ptr<spdlog::logger>> app;       // guarded by mu: MakeLogger's
  Loggers() {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(MakeFormatter(format));
    sinks.push_back(sink);
    for (size_t i = 0; i < by_layer.size(); ++i) {
      by_layer[i] = std::make_shared<spdlog::logger>(kNames[i], sink);
      by_layer[i]->set_level(spdlog::level::warn);
    }
  }
};

Loggers& AllLoggers() {
  static Loggers loggers;
  return loggers;
}

}  // namespace

spdlog::logger& Log(LogLayer layer) { return *AllLoggers().by_layer[static_cast<size_t>(layer)]; }

void SetLogLevel(spdlog::level::level_enum level) {
  Loggers& all = AllLoggers();
  for (auto& logger : all.by_layer) logger->set_level(level);
  std::lock_guard<std::mutex> lock(all.mu);
  for (auto& logger : all.app) logger->set_level(level);
}

void SetLogStamp(LogStamp stamp) {
  std::lock_guard<std::mutex> lock(StampMutex());
  Stamp() = std::move(stamp);
}

void AddLogSink(spdlog::sink_ptr sink) {
  Loggers& all = AllLoggers();
  std::lock_guard<std::mutex> lock(all.mu);
  sink->set_formatter(MakeFormatter(all.format));
  all.sinks.push_back(sink);
  for (auto& logger : all.by_layer) logger->sinks().push_back(sink);
  for (auto& logger : all.app) logger->sinks().push_back(sink);
}

void SetLogFormat(LogFormat format) {
  Loggers& all = AllLoggers();
  std::lock_guard<std::mutex> lock(all.mu);
  all.format = format;
  for (auto& sink : all.sinks) sink->set_formatter(MakeFormatter(format));
}

LogFormat GetLogFormat() {
  Loggers& all = AllLoggers();
  std::lock_guard<std::mutex> lock(all.mu);
  return all.format;
}

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format \"", std::string(name), "\": expected \"text\" or \"json\""));
}

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name) {
  Loggers& all = AllLoggers();
  std::lock_guard<std::mutex> lock(all.mu);
  auto logger = std::make_shared<spdlog::logger>(name, all.sinks.begin(), all.sinks.end());
  logger->set_level(spdlog::level::info);
  all.app.push_back(logger);
  return logger;
}

}  // namespace netlayer
