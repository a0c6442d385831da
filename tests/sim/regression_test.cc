// Regressions found in review: each test failed before its fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "sim_test_util.h"

namespace netlayer::sim {
namespace {

using ::testing::HasSubstr;
using testing_util::ConnectPair;
using testing_util::Pattern;
using testing_util::Recorder;

constexpr absl::Duration kLong = absl::Seconds(60);

// A send takes up to max_write_chunk bytes, however many output chunks hold them: with a
// 1 MiB max_write_chunk and alternating 1-byte / 64 KiB writes, more than 16 chunks (one peek)
// are needed for one send.
TEST(Regression, ASendLargerThanSixteenOutputChunks) {
  WorldOptions o;
  o.profile.max_write_chunk = size_t{1} << 20;
  o.profile.send_buffer_bytes = size_t{4} << 20;
  o.profile.full_write_probability = 1.0;
  World w(o);
  const HostId a = *w.AddHost("a");
  const HostId b = *w.AddHost("b");
  std::shared_ptr<Listener> listener;
  auto [c, s] = ConnectPair(w, a, listener, b);
  ASSERT_NE(s, nullptr);
  auto r = std::make_shared<Recorder>();
  s->SetHandler(r);
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    const std::string piece = Pattern(i % 2 == 0 ? 1 : 64 << 10, static_cast<uint64_t>(i));
    ASSERT_TRUE(c->Write(piece).ok());
    expected += piece;
  }
  ASSERT_TRUE(w.RunUntil([&] { return r->received.size() >= expected.size(); }, w.Now() + kLong));
  EXPECT_TRUE(r->received == expected);
  // The first send took all of it (full writes, everything fits in one max_write_chunk).
  const auto sends = testing_util::Find(w, TraceKind::kSend, "conn#1 a->b");
  ASSERT_FALSE(sends.empty());
  EXPECT_EQ(sends[0].bytes, expected.size());
}

}  // namespace
}  // namespace netlayer::sim
