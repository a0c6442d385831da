#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"

namespace netlayer::rpc {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(HandshakeTest, RoundTrip) {
  ServerHello s{"zeo", 3, 5};
  std::string bytes = EncodeServerHello(s);
  EXPECT_EQ(bytes, std::string("NLRP\x01\0\x03\0\x05\x03zeo", 13));
  auto back = DecodeServerHello(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
  ClientHello c{"zeo", 4};
  EXPECT_EQ(EncodeClientHello(c), std::string("NLRP\x02\0\x04\x03zeo", 11));
  auto cback = DecodeClientHello(EncodeClientHello(c));
  ASSERT_TRUE(cback.ok());
  EXPECT_EQ(*cback, c);
}

TEST(HandshakeTest, EveryTruncationAndTrailingBytesAreRejected) {
  const std::string server = EncodeServerHello({"netlayer-rpc", 1, 2});
  const std::string client = EncodeClientHello({"netlayer-rpc", 2});
  for (size_t n = 0; n < server.size(); ++n) {
    auto r = DecodeServerHello(server.substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(r.status()), HasSubstr("rpc handshake: "));
  }
  for (size_t n = 0; n < client.size(); ++n)
    EXPECT_FALSE(DecodeClientHello(client.substr(0, n)).ok());
  EXPECT_THAT(Msg(DecodeServerHello(server + "x").status()), HasSubstr("1 trailing bytes"));
  EXPECT_THAT(Msg(DecodeClientHello(client + "xy").status()), HasSubstr("2 trailing bytes"));
}

TEST(HandshakeTest, GarbageIsNamed) {
  auto r = DecodeServerHello("HTTP/1.1 400 Bad Request");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(Msg(r.status()), HasSubstr("expected a server hello starting with \"NLRP\", got "
                                         "\"HTTP/1.1 400 Bad...\" (24 bytes)"));
  // A client hello where a server hello belongs, and the reverse.
  EXPECT_THAT(Msg(DecodeServerHello(EncodeClientHello({"p", 1})).status()),
              HasSubstr("expected a server hello (type 1), got type 2"));
  EXPECT_THAT(Msg(DecodeClientHello(EncodeServerHello({"p", 1, 1})).status()),
              HasSubstr("expected a client hello (type 2), got type 1"));
  EXPECT_THAT(Msg(DecodeServerHello(std::string("NLRP\x01\0\x02\0\x01\x01p", 11)).status()),
              HasSubstr("min_version 2 > max_version 1"));
  EXPECT_THAT(Msg(DecodeServerHello(std::string("NLRP\x01\0\x01\0\x01\0", 10)).status()),
              HasSubstr("empty protocol name"));
}

TEST(HandshakeTest, ChooseVersion) {
  ServerHello s{"zeo", 2, 5};
  EXPECT_EQ(*ChooseVersion(s, "zeo", 1, 3), 3);
  EXPECT_EQ(*ChooseVersion(s, "zeo", 4, 9), 5);
  auto none = ChooseVersion(s, "zeo", 6, 7);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(none.status()),
              HasSubstr("no common version: the server supports 2..5, this client 6..7"));
  auto name = ChooseVersion(s, "other", 1, 9);
  EXPECT_THAT(Msg(name.status()),
              HasSubstr("the server speaks protocol \"zeo\", this client speaks \"other\""));
  EXPECT_TRUE(CheckClientHello({"zeo", 3}, s).ok());
  EXPECT_THAT(Msg(CheckClientHello({"zeo", 6}, s)), HasSubstr("chose version 6"));
  EXPECT_THAT(Msg(CheckClientHello({"zoe", 3}, s)), HasSubstr("protocol \"zoe\""));
}

Envelope Call(uint64_t id, std::string_view method, std::string_view payload) {
  Envelope e;
  e.kind = MessageKind::kCall;
  e.id = id;
  e.method = method;
  e.payload = payload;
  return e;
}

TEST(EnvelopeTest, BytesAreAsDocumented) {
  const EnvelopeCodec& c = BinaryCodec();
  EXPECT_EQ(EncodeEnvelope(c, Call(0x0102030405060708, "m", "pp")),
            std::string("\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01mpp", 14));
  Envelope reply;
  reply.kind = MessageKind::kReply;
  reply.id = 7;
  reply.payload = "ok";
  EXPECT_EQ(EncodeEnvelope(c, reply), std::string("\x03\0\0\0\0\0\0\0\x07ok", 11));
  EXPECT_EQ(EncodeEnvelope(c, ErrorEnvelope(7, absl::NotFoundError("gone"))),
            std::string("\x04\0\0\0\0\0\0\0\x07\x05gone", 14));
}

TEST(EnvelopeTest, RoundTripEveryKind) {
  const EnvelopeCodec& c = BinaryCodec();
  std::vector<Envelope> all;
  const std::string binary("\0\1\2", 3);  // the envelope views it
  all.push_back(Call(1, "load", binary));
  Envelope oneway = Call(0, "invalidate", "oid");
  oneway.kind = MessageKind::kOneWay;
  all.push_back(oneway);
  Envelope reply;
  reply.kind = MessageKind::kReply;
  reply.id = ~uint64_t{0};
  all.push_back(reply);
  const absl::Status denied = absl::PermissionDeniedError("no");  // the envelope views it
  all.push_back(ErrorEnvelope(9, denied));
  Envelope ping;
  ping.kind = MessageKind::kPing;
  ping.id = 3;
  all.push_back(ping);
  ping.kind = MessageKind::kPong;
  all.push_back(ping);
  for (const Envelope& e : all) {
    std::string bytes = EncodeEnvelope(c, e);
    auto d = c.Decode(bytes);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->kind, e.kind);
    EXPECT_EQ(d->id, e.id);
    EXPECT_EQ(d->method, e.method);
    EXPECT_EQ(d->code, e.code);
    EXPECT_EQ(d->payload, e.payload);
  }
  const std::string err_bytes = EncodeEnvelope(c, ErrorEnvelope(9, denied));
  auto err = c.Decode(err_bytes);
  EXPECT_EQ(StatusFromEnvelope(*err), absl::PermissionDeniedError("no"));
}

TEST(EnvelopeTest, TruncatedHeadsAreRejectedAtEveryOffset) {
  const EnvelopeCodec& c = BinaryCodec();
  const std::string call = c.EncodeHead(Call(5, "method", ""));
  for (size_t n = 0; n < call.size(); ++n) {
    auto d = c.Decode(call.substr(0, n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(d.status()), HasSubstr("rpc envelope: "));
  }
  const std::string error = c.EncodeHead(ErrorEnvelope(5, absl::InternalError("")));
  for (size_t n = 0; n < error.size(); ++n) EXPECT_FALSE(c.Decode(error.substr(0, n)).ok()) << n;
}

TEST(EnvelopeTest, GarbageIsRejectedClearly) {
  const EnvelopeCodec& c = BinaryCodec();
  EXPECT_THAT(Msg(c.Decode("").status()), HasSubstr("empty message"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x00garbage", 8)).status()), HasSubstr("unknown kind 0"));
  EXPECT_THAT(Msg(c.Decode("\x07"
                           "12345678")
                      .status()),
              HasSubstr("unknown kind 7"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x01"
                                       "12345678\0\0",
                                       11))
                      .status()),
              HasSubstr("empty method name"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x01"
                                       "12345678\x04\x01",
                                       11))
                      .status()),
              HasSubstr("method name of 1025 bytes"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x01"
                                       "12345678\0\x05"
                                       "ab",
                                       13))
                      .status()),
              HasSubstr("5 bytes announced, 2 left"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x04"
                                       "12345678\0",
                                       10))
                      .status()),
              HasSubstr("status code 0"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x04"
                                       "12345678\x11",
                                       10))
                      .status()),
              HasSubstr("status code 17"));
  EXPECT_THAT(Msg(c.Decode(std::string("\x05"
                                       "12345678x",
                                       10))
                      .status()),
              HasSubstr("ping with 1 trailing bytes"));
}

}  // namespace
}  // namespace netlayer::rpc
