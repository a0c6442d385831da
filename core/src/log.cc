#include "netlayer/core/log.h"

#include <array>
#include <mutex>

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

// "%*" in the pattern: the stamp (e.g. virtual time and host), or nothing.
class StampFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string text;
    {
      std::lock_guard<std::mutex> lock(StampMutex());
      if (Stamp()) text = Stamp()();
    }
    if (!text.empty()) {
      dest.append(text.data(), text.data() + text.size());
      dest.push_back(' ');
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<StampFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<StampFlag>('*').set_pattern("[%H:%M:%S.%e] [%n] [%l] %*%v");
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
  Loggers() {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(MakeFormatter());
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
  for (auto& logger : AllLoggers().by_layer) logger->set_level(level);
}

void SetLogStamp(LogStamp stamp) {
  std::lock_guard<std::mutex> lock(StampMutex());
  Stamp() = std::move(stamp);
}

}  // namespace netlayer

namespace netlayer {
void AddLogSink(spdlog::sink_ptr sink) {
  sink->set_formatter(MakeFormatter());
  for (auto& logger : AllLoggers().by_layer) logger->sinks().push_back(sink);
}
}  // namespace netlayer
