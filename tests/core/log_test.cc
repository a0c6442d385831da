#include "netlayer/core/log.h"

#include <gtest/gtest.h>

#include <sstream>

#include "spdlog/sinks/ostream_sink.h"

namespace netlayer {
namespace {

TEST(LogTest, QuietByDefaultAndStampedWhenAStampIsSet) {
  std::ostringstream out;
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
