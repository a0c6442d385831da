#include "netlayer/core/log.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <vector>

#include "spdlog/sinks/ostream_sink.h"

namespace netlayer {
namespace {

// Sinks stay attached for the process, so each test's stream must outlive it; the streams stay
// reachable (not leaked) from one list that is never destroyed, which nothing logs into at exit.
std::ostringstream& StreamForTheProcess() {
  static auto* streams = new std::vector<std::unique_ptr<std::ostringstream>>();
  streams->push_back(std::make_unique<std::ostringstream>());
  return *streams->back();
}

TEST(LogTest, QuietByDefaultAndStampedWhenAStampIsSet) {
  std::ostringstream& out = StreamForTheProcess();
  AddLogSink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  Log(LogLayer::kCore).info("not shown at the default level");
  EXPECT_EQ(out.str(), "");
  SetLogLevel(spdlog::level::info);
  SetLogStamp([] { return std::string("[t=1.500s host=a]"); });
  Log(LogLayer::kSim).info("hello {}", 42);
  SetLogStamp(nullptr);
  Log(LogLayer::kRpc).info("plain");
  SetLogLevel(spdlog::level::warn);
  const std::string text = out.str();
  EXPECT_NE(text.find("[netlayer.sim] [info] [t=1.500s host=a] hello 42"), std::string::npos)
      << text;
  EXPECT_NE(text.find("[netlayer.rpc] [info] plain"), std::string::npos) << text;
}

}  // namespace
}  // namespace netlayer

namespace netlayer {
namespace {

// Every line of the json format is one object with the documented fields; the stamp (a
// simulated run's virtual time) stays; application loggers write the same way.
TEST(LogTest, JsonFormatWritesOneObjectPerLineWithTheDocumentedFields) {
  std::ostringstream& out = StreamForTheProcess();
  AddLogSink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  std::shared_ptr<spdlog::logger> app = MakeLogger("myapp");
  SetLogFormat(LogFormat::kJson);
  SetLogLevel(spdlog::level::info);
  SetLogStamp([] { return std::string("[t=2s]"); });
  Log(LogLayer::kRpc).warn("a \"quoted\"\tline\n{}", "end");
  SetLogStamp(nullptr);
  app->info("from the app");
  SetLogLevel(spdlog::level::warn);
  SetLogFormat(LogFormat::kText);
  const std::string text = out.str();
  const size_t first_end = text.find('\n');
  ASSERT_NE(first_end, std::string::npos) << text;
  const std::string first = text.substr(0, first_end);
  const std::string second = text.substr(first_end + 1, text.find('\n', first_end + 1) - first_end - 1);
  EXPECT_EQ(first.substr(0, 9), "{\"time\":\"") << first;
  EXPECT_NE(first.find("Z\",\"level\":\"warning\",\"logger\":\"netlayer.rpc\",\"message\":"
                       "\"a \\\"quoted\\\"\\tline\\nend\",\"stamp\":\"[t=2s]\"}"),
            std::string::npos)
      << first;
  EXPECT_NE(second.find("\"level\":\"info\",\"logger\":\"myapp\",\"message\":\"from the app\"}"),
            std::string::npos)
      << second;
  EXPECT_EQ(second.find("stamp"), std::string::npos) << second;
  EXPECT_EQ(ParseLogFormat("json").value(), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

TEST(LogTest, TextFormatHasDateTimeLoggerAndLevel) {
  std::ostringstream& out = StreamForTheProcess();
  AddLogSink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  Log(LogLayer::kTls).error("x");
  const std::string line = out.str();
  // [YYYY-MM-DD HH:MM:SS.mmm] [netlayer.tls] [error] x
  ASSERT_GE(line.size(), 26u) << line;
  EXPECT_EQ(line[0], '[');
  EXPECT_EQ(line[5], '-');
  EXPECT_EQ(line[8], '-');
  EXPECT_EQ(line[11], ' ');
  EXPECT_EQ(line[20], '.');
  EXPECT_EQ(line[24], ']');
  EXPECT_NE(line.find("] [netlayer.tls] [error] x"), std::string::npos) << line;
}

}  // namespace
}  // namespace netlayer
