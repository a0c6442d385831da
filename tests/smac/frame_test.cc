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

TEST(FrameTest, AHeaderAloneNeverReservesMoreThanTheInitialRoom) {
  FrameDecoder d;  // 64 MiB limit
  const std::string payload((size_t{5} << 20) + 3, 'z');
  const std::string frame = EncodeFrame(payload);
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, 4), [](auto, auto) {}).ok());
  EXPECT_EQ(d.state(), FrameDecoder::State::kPayload);
  EXPECT_LE(d.reserved_bytes(), kInitialRoom);
  // As bytes arrive the buffer grows with them, within the documented bound.
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
      EXPECT_LE(d.reserved_bytes(), MaxPartialFrameBuffer(payload.size(), fed - 4));
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

// A reader that uses PayloadSpan as posix does: reads of at most `read_size` bytes go into the
// decoder's span when it offers one, else into the reader's own buffer; each read is then fed.
struct InPlaceReader {
  std::string stream;  // what the peer sent
  size_t pos = 0;
  size_t in_place_bytes = 0;
  std::vector<std::string> messages;
  // Reads `n` bytes (fewer if the span is shorter) and feeds them.
  absl::Status Read(FrameDecoder& d, size_t n) {
    n = std::min(n, stream.size() - pos);
    absl::Span<char> span = d.PayloadSpan();
    std::string own;
    std::string_view fed;
    if (!span.empty()) {
      n = std::min(n, span.size());
      std::copy_n(stream.data() + pos, n, span.data());
      fed = std::string_view(span.data(), n);
      in_place_bytes += n;
    } else {
      own = stream.substr(pos, n);
      fed = own;
    }
    pos += n;
    return d.Feed(fed, [&](std::string_view m, std::string* owned) {
      if (owned != nullptr) {
        EXPECT_EQ(*owned, m);
      }
      messages.emplace_back(m);
    });
  }
};

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7) % 251);
  return s;
}

TEST(FrameTest, PayloadSpanOnlyForTheRestOfALargePayloadNeverItsLastByte) {
  FrameDecoder d;
  EXPECT_TRUE(d.PayloadSpan().empty()) << "between frames";
  const std::string payload = Pattern(kMinInPlaceRead + 10, 1);
  const std::string frame = EncodeFrame(payload);
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, 4 + 5), [](auto, auto) {}).ok());
  absl::Span<char> span = d.PayloadSpan();
  ASSERT_EQ(span.size(), payload.size() - 5 - 1) << "the rest but the last byte";
  std::copy_n(payload.data() + 5, 100, span.data());
  ASSERT_TRUE(d.Feed(std::string_view(span.data(), 100), [](auto, auto) {}).ok());
  EXPECT_EQ(d.buffered_bytes(), 4 + 105u);
  // Less than kMinInPlaceRead to come: read with what follows instead.
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(109, 20), [](auto, auto) {}).ok());
  EXPECT_TRUE(d.PayloadSpan().empty());
  std::string got;
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(129), [&](std::string_view m, std::string*) {
                 got = std::string(m);
               }).ok());
  EXPECT_EQ(got, payload);
  EXPECT_TRUE(d.PayloadSpan().empty());
}

// Frames of several sizes (small, 64 KiB +- 1, large), read with reads of every kind of size so
// that frames are split at every boundary (inside headers, at the span's edges, one byte before
// the end): the messages are the same as with a plain decoder, and large payloads go in place.
TEST(FrameTest, InPlaceReadsGiveTheSameMessagesAtEveryBoundary) {
  const std::vector<size_t> sizes = {0,
                                     1,
                                     3,
                                     kMinInPlaceRead - 1,
                                     kMinInPlaceRead,
                                     kMinInPlaceRead + 1,
                                     kMinInPlaceRead + 5,
                                     300000,
                                     17,
                                     (size_t{1} << 20) + 7};
  Xoshiro256 rng(42);
  // Tiny reads over frames around kMinInPlaceRead (every header split, one byte at a time in
  // place); larger and random reads over every size.
  for (bool tiny : {true, false}) {
    std::string stream;
    std::vector<std::string> expected;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (tiny && sizes[i] > kMinInPlaceRead + 1) continue;
      expected.push_back(Pattern(sizes[i], static_cast<int>(i)));
      stream += EncodeFrame(expected.back());
    }
    const std::vector<size_t> read_sizes =
        tiny ? std::vector<size_t>{1, 3} : std::vector<size_t>{5,
                                                               4096,
                                                               kMinInPlaceRead - 1,
                                                               kMinInPlaceRead,
                                                               kMinInPlaceRead + 3,
                                                               100000,
                                                               size_t{1} << 21,
                                                               0};
    for (size_t read_size : read_sizes) {
      FrameDecoder d;
      InPlaceReader r;
      r.stream = stream;
      while (r.pos < r.stream.size()) {
        // read_size 0: random sizes, small and large.
        const size_t n = read_size != 0
                             ? read_size
                             : 1 + static_cast<size_t>(rng.Next() % (rng.Next() % 2 ? 9 : 200000));
        ASSERT_TRUE(r.Read(d, n).ok());
      }
      EXPECT_EQ(r.messages, expected) << "read size " << read_size;
      EXPECT_TRUE(d.at_frame_boundary());
      EXPECT_LE(d.reserved_bytes(), sizeof(std::string))
          << "nothing kept once the stream pauses between frames";
      if (!tiny && read_size <= 100000) {
        EXPECT_GT(r.in_place_bytes, size_t{1} << 20) << "large payloads were read in place";
      }
    }
  }
}

TEST(FrameTest, PayloadBufferIsReusedWhileFramesKeepComingAndFreedBetweenThem) {
  FrameDecoder d;
  const std::string a = Pattern(200000, 1), b = Pattern(200000, 2);
  const std::string frames = EncodeFrame(a) + EncodeFrame(b);
  std::vector<std::string> got;
  std::vector<const char*> buffers;
  auto sink = [&](std::string_view m, std::string* owned) {
    got.emplace_back(m);
    if (owned != nullptr) buffers.push_back(owned->data());
  };
  // The first frame split; the Feed that completes it goes on into the second.
  ASSERT_TRUE(d.Feed(std::string_view(frames).substr(0, 1000), sink).ok());
  ASSERT_FALSE(d.PayloadSpan().empty());
  ASSERT_TRUE(d.Feed(std::string_view(frames).substr(1000, a.size() + 4 + 1000), sink).ok());
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(buffers.size(), 1u);
  const absl::Span<char> second = d.PayloadSpan();
  ASSERT_FALSE(second.empty());
  // 1996 bytes of the second payload came before this span.
  EXPECT_EQ(second.data() - 1996, buffers[0]) << "the first frame's buffer, reused";
  ASSERT_TRUE(d.Feed(std::string_view(frames).substr(a.size() + 2004), sink).ok());
  EXPECT_THAT(got, ElementsAre(a, b));
  EXPECT_LE(d.reserved_bytes(), sizeof(std::string)) << "freed when the Feed ended between frames";
}

// ---- Memory budget (issue 29) ----

TEST(FrameBudgetTest, LargeBuffersAreChargedAsTheyGrowAndReleasedWhenTheFrameCompletes) {
  auto budget = std::make_shared<MemoryBudget>(size_t{64} << 20);
  FrameDecoder d;
  d.set_budget(budget);
  const std::string payload = Pattern((size_t{3} << 20) + 11, 3);
  const std::string frame = EncodeFrame(payload);
  // Small frames and the first 64 KiB of room are not charged.
  ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, 4 + 1000), [](auto, auto) {}).ok());
  EXPECT_EQ(budget->charged(), 0u);
  size_t fed = 4 + 1000;
  std::string got;
  while (fed < frame.size()) {
    const size_t n = std::min<size_t>(frame.size() - fed, 100000);
    ASSERT_TRUE(d.Feed(std::string_view(frame).substr(fed, n),
                       [&](std::string_view m, std::string*) { got = std::string(m); })
                    .ok());
    fed += n;
    if (fed < frame.size()) {
      EXPECT_EQ(budget->charged(), d.charged_bytes());
      EXPECT_EQ(d.charged_bytes(), d.reserved_bytes() > kUnbudgetedBytes ? d.reserved_bytes() : 0);
      EXPECT_LE(d.reserved_bytes(), MaxPartialFrameBuffer(payload.size(), fed - 4));
    }
  }
  EXPECT_EQ(got, payload);
  EXPECT_EQ(budget->charged(), 0u) << "released when the frame completed";
  EXPECT_GE(budget->peak_charged(), payload.size());
  EXPECT_LE(budget->peak_charged(), budget->limit());
}

TEST(FrameBudgetTest, AFrameTheBudgetCannotTakeFailsWithResourceExhausted) {
  auto budget = std::make_shared<MemoryBudget>(size_t{1} << 20);
  FrameDecoder holder;  // holds most of the budget
  holder.set_budget(budget);
  const std::string big = EncodeFrame(std::string(size_t{900} << 10, 'h'));
  ASSERT_TRUE(holder.Feed(std::string_view(big).substr(0, big.size() - 1), [](auto, auto) {}).ok());
  const size_t held = budget->charged();
  EXPECT_GT(held, size_t{800} << 10);
  FrameDecoder d;
  d.set_budget(budget);
  // A small frame is never refused.
  int small = 0;
  const std::string s = EncodeFrame(std::string(1000, 's'));
  ASSERT_TRUE(d.Feed(std::string_view(s).substr(0, 10), [](auto, auto) {}).ok());
  ASSERT_TRUE(d.Feed(std::string_view(s).substr(10), [&](auto, auto) { ++small; }).ok());
  EXPECT_EQ(small, 1);
  // A large one is refused once it would grow past what is left.
  const std::string frame = EncodeFrame(std::string(size_t{500} << 10, 'x'));
  absl::Status status = d.Feed(std::string_view(frame).substr(0, 300000), [](auto, auto) {});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("smac: a frame of 512000 bytes was refused"));
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("the memory budget for large frames (1048576 bytes) is spent"));
  EXPECT_EQ(d.state(), FrameDecoder::State::kFailed);
  EXPECT_EQ(d.charged_bytes(), 0u);
  EXPECT_EQ(budget->charged(), held) << "the refused frame holds nothing";
  EXPECT_EQ(budget->refusals(), 1u);
  // Discard frees the holder's buffer at once (a closed connection).
  holder.Discard();
  EXPECT_EQ(budget->charged(), 0u);
  EXPECT_LE(holder.reserved_bytes(), sizeof(std::string));
  EXPECT_EQ(holder.state(), FrameDecoder::State::kFailed);
}

TEST(FrameBudgetTest, DestroyingADecoderReleasesItsCharge) {
  auto budget = std::make_shared<MemoryBudget>(size_t{8} << 20);
  {
    FrameDecoder d;
    d.set_budget(budget);
    const std::string frame = EncodeFrame(std::string(size_t{2} << 20, 'd'));
    ASSERT_TRUE(d.Feed(std::string_view(frame).substr(0, size_t{1} << 20), [](auto, auto) {}).ok());
    EXPECT_GT(budget->charged(), 0u);
  }
  EXPECT_EQ(budget->charged(), 0u);
}

}  // namespace
}  // namespace netlayer::smac
