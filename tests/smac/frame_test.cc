#include "netlayer/smac/frame.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netlayer/core/generator.h"

namespace netlayer::smac {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> FeedAll(FrameDecoder& d, const std::vector<std::string_view>& chunks,
                                 absl::Status* status = nullptr) {
  std::vector<std::string> out;
  for (std::string_view c : chunks) {
    absl::Status s = d.Feed(c, [&](std::string_view m, std::string* owned) {
      if (owned != nullptr) {
        EXPECT_EQ(*owned, m);
      }
      out.emplace_back(m);
    });
    if (!s.ok()) {
      if (status != nullptr) *status = s;
      break;
    }
  }
  return out;
}

TEST(FrameTest, HeaderIsBigEndian) {
  auto h = EncodeHeader(0x01020304);
  EXPECT_EQ(std::string(h.data(), 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(DecodeHeader(std::string_view("\xff\xff\xff\xfe", 4)), 0xfffffffeu);
  EXPECT_EQ(EncodeFrame("abc"), std::string("\0\0\0\3abc", 7));
  EXPECT_EQ(EncodeFrame(""), std::string("\0\0\0\0", 4));
}

TEST(FrameTest, WholeFramesInOneChunkAreDeliveredWithoutCopy) {
  FrameDecoder d;
  std::string input = EncodeFrame("hello") + EncodeFrame("") + EncodeFrame("world");
  std::vector<std::string> got;
  int owned_count = 0;
  ASSERT_TRUE(d.Feed(input, [&](std::string_view m, std::string* owned) {
                 got.emplace_back(m);
                 if (owned) ++owned_count;
                 // A view into the input itself.
                 EXPECT_TRUE(m.empty() ||
                             (m.data() >= input.data() && m.data() < input.data() + input.size()));
               }).ok());
  EXPECT_THAT(got, ElementsAre("hello", "", "world"));
  EXPECT_EQ(owned_count, 0);
  EXPECT_TRUE(d.at_frame_boundary());
}

// Every split point, and every pair of split points, gives the same messages.
TEST(FrameTest, InputSplitAtEveryOffset) {
  const std::vector<std::string> messages = {"a", "", std::string(300, 'x'), "tail\0x"};
  std::string input;
  for (const auto& m : messages) input += EncodeFrame(m);
  for (size_t i = 0; i <= input.size(); ++i) {
    for (size_t j = i; j <= input.size(); ++j) {
      FrameDecoder d;
      std::string_view v(input);
      auto got = FeedAll(d, {v.substr(0, i), v.substr(i, j - i), v.substr(j)});
      ASSERT_EQ(got, messages) << "split at " << i << ", " << j;
      ASSERT_TRUE(d.at_frame_boundary());
    }
  }
}

TEST(FrameTest, ByteByByte) {
  std::string input = EncodeFrame("one") + EncodeFrame(std::string(1000, 'z'));
  FrameDecoder d;
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < input.size(); ++i) chunks.push_back(std::string_view(input).substr(i, 1));
  auto got = FeedAll(d, chunks);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "one");
  EXPECT_EQ(got[1], std::string(1000, 'z'));
}

TEST(FrameTest, RandomChunkingOfManyMessages) {
  Xoshiro256 gen(42);
  std::vector<std::string> messages;
  std::string input;
  for (int i = 0; i < 200; ++i) {
    std::string m(UniformInt(gen, 0, 3000), static_cast<char>('a' + i % 26));
    input += EncodeFrame(m);
    messages.push_back(std::move(m));
  }
  FrameDecoder d;
  std::vector<std::string_view> chunks;
  std::string_view rest(input);
  while (!rest.empty()) {
    size_t n = std::min<size_t>(rest.size(), UniformInt(gen, 1, 5000));
    chunks.push_back(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  EXPECT_EQ(FeedAll(d, chunks), messages);
}

TEST(FrameTest, OversizedHeaderFailsBeforeAllocating) {
  FrameDecoder d(/*max_message_size=*/100);
  absl::Status status;
  // 4 GiB - 1: must fail at once with a clear error, whatever the split.
  std::string input = std::string("\0\0\0\2ok", 6) + std::string("\xff\xff\xff\xff", 4) + "junk";
  for (size_t split = 0; split <= input.size(); ++split) {
    FrameDecoder d2(100);
    absl::Status s;
    std::string_view v(input);
    auto got = FeedAll(d2, {v.substr(0, split), v.substr(split)}, &s);
    EXPECT_THAT(got, ElementsAre("ok"));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << split;
    EXPECT_THAT(std::string(s.message()), HasSubstr("4294967295 bytes exceeds the limit of 100"));
    EXPECT_EQ(d2.state(), FrameDecoder::State::kFailed);
    EXPECT_EQ(d2.buffered_bytes(), 0u);
  }
  // Once failed, always failed, and nothing more is delivered.
  auto got = FeedAll(d, {input}, &status);
  EXPECT_FALSE(status.ok());
  bool called = false;
  EXPECT_FALSE(
      d.Feed(EncodeFrame("x"), [&](std::string_view, std::string*) { called = true; }).ok());
  EXPECT_FALSE(called);
}

TEST(FrameTest, LimitIsInclusive) {
  FrameDecoder d(5);
  absl::Status s;
  EXPECT_THAT(FeedAll(d, {EncodeFrame("12345")}, &s), ElementsAre("12345"));
  EXPECT_TRUE(s.ok());
  FeedAll(d, {EncodeFrame("123456")}, &s);
  EXPECT_FALSE(s.ok());
}

// A small limit for a first message (a hello), raised from inside the sink: the frames that
// follow in the same input are checked against the new limit (rpc's max_hello_size).
TEST(FrameTest, TheLimitCanBeRaisedFromInsideTheSink) {
  const std::string input = EncodeFrame("hello") + EncodeFrame(std::string(100, 'c'));
  for (size_t split = 0; split <= input.size(); ++split) {
    FrameDecoder d(/*max_message_size=*/8);
    std::vector<std::string> out;
    auto sink = [&](std::string_view m, std::string*) {
      out.emplace_back(m);
      d.set_max_message_size(1000);
    };
    ASSERT_TRUE(d.Feed(std::string_view(input).substr(0, split), sink).ok()) << split;
    ASSERT_TRUE(d.Feed(std::string_view(input).substr(split), sink).ok()) << split;
    ASSERT_EQ(out.size(), 2u) << split;
    EXPECT_EQ(out[1].size(), 100u);
  }
  // Without the raise, the second frame is over the first limit.
  FrameDecoder strict(8);
  absl::Status s;
  FeedAll(strict, {input}, &s);
  EXPECT_THAT(std::string(s.message()), HasSubstr("exceeds the limit of 8 bytes"));
}

TEST(FrameTest, TruncatedFrameIsHeldNotDelivered) {
  FrameDecoder d;
  std::string frame = EncodeFrame("abcdef");
  for (size_t n = 0; n < frame.size(); ++n) {
    FrameDecoder d2;
    EXPECT_TRUE(FeedAll(d2, {std::string_view(frame).substr(0, n)}).empty());
    EXPECT_EQ(d2.buffered_bytes(), n);
    EXPECT_EQ(d2.at_frame_boundary(), n == 0);
  }
}

TEST(FrameTest, AHeaderAloneNeverReservesMoreThanOneMiB) {
  FrameDecoder d;  // 64 MiB limit
  const std::string payload((size_t{5} << 20) + 3, 'z');
  const std::string frame = EncodeFrame(payload);
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, 4), [](auto, auto) {}).ok());
  EXPECT_EQ(d.state(), FrameDecoder::State::kPayload);
  EXPECT_LE(d.reserved_bytes(), kReserveUpFront);
  // As bytes arrive the buffer grows with them (at most about twice what was received).
  size_t fed = 4;
  std::string got;
  while (fed < frame.size()) {
    const size_t n = std::min<size_t>(frame.size() - fed, 300000);
    ASSERT_TRUE(
        d.Feed(std::string_view(frame).substr(fed, n), [&](std::string_view m, std::string*) {
           got = std::string(m);
         }).ok());
    fed += n;
    if (fed < frame.size()) {
      EXPECT_LE(d.reserved_bytes(), std::max(kReserveUpFront, 2 * (fed - 4)));
    }
  }
  EXPECT_EQ(got, payload);
}

TEST(FrameTest, LargeFrameAssembledIntoOwnedBuffer) {
  std::string payload(1 << 20, 'q');
  std::string frame = EncodeFrame(payload);
  FrameDecoder d;
  int calls = 0;
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, 1000), [&](auto, auto) { ++calls; }).ok());
  ASSERT_TRUE(
      d.Feed(std::string_view(frame).substr(1000), [&](std::string_view m, std::string* owned) {
         ++calls;
         ASSERT_NE(owned, nullptr);
         EXPECT_EQ(m.data(), owned->data());
         EXPECT_EQ(*owned, payload);
       }).ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace netlayer::smac
