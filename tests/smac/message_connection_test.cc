#include "netlayer/smac/message_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim_net.h"

namespace netlayer::smac {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::SimNet;

class Recorder final : public MessageHandler {
 public:
  void MessageReceived(MessageConnection& c, std::string_view m) override {
    EXPECT_FALSE(inside_) << "handler re-entered";
    inside_ = true;
    messages.emplace_back(m);
    if (on_message) on_message(c, m);
    inside_ = false;
  }
  void ConnectionClosed(MessageConnection&, const CloseReason& r) override {
    EXPECT_FALSE(inside_);
    closes.push_back(r);
  }
  std::vector<std::string> messages;
  std::vector<CloseReason> closes;
  std::function<void(MessageConnection&, std::string_view)> on_message;

 private:
  bool inside_ = false;
};

struct SmacPair {
  explicit SmacPair(SimNet& w, MessageOptions options = {}) {
    auto p = w.NewPair();
    raw_client = p.client;
    raw_server = p.server;
    client = MessageConnection::Create(p.client, options);
    server = MessageConnection::Create(p.server, options);
  }
  std::shared_ptr<Connection> raw_client, raw_server;
  std::shared_ptr<MessageConnection> client, server;
};

TEST(MessageConnectionTest, MessagesArriveWholeInOrderUnderRandomChunking) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SimNet w(seed, /*max_chunk=*/1 + seed * 7);
    SmacPair p(w);
    auto rec = std::make_shared<Recorder>();
    p.server->SetHandler(rec);
    std::vector<std::string> sent;
    for (int i = 0; i < 50; ++i) {
      std::string m(static_cast<size_t>(i * 13 % 200), static_cast<char>('A' + i % 26));
      ASSERT_TRUE(p.client->Send(m).ok());
      sent.push_back(m);
    }
    // A message from several pieces is one message.
    std::string_view pieces[] = {"ab", "", "cd"};
    ASSERT_TRUE(p.client->SendV(pieces).ok());
    sent.push_back("abcd");
    w.Settle();
    EXPECT_EQ(rec->messages, sent) << "seed " << seed;
    EXPECT_TRUE(rec->closes.empty());
  }
}

TEST(MessageConnectionTest, QueuedUntilHandlerSetThenCloseDeliveredOnceAfterMessages) {
  SimNet w(3, 3);
  SmacPair p(w);
  ASSERT_TRUE(p.client->Send("one").ok());
  ASSERT_TRUE(p.client->Send("two").ok());
  p.client->Close();  // flushes, then the server sees a peer close
  EXPECT_FALSE(p.client->IsOpen());
  EXPECT_EQ(p.client->Send("late").code(), absl::StatusCode::kFailedPrecondition);
  w.Settle();
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  EXPECT_THAT(rec->messages, ElementsAre("one", "two"));
  ASSERT_EQ(rec->closes.size(), 1u);
  EXPECT_EQ(rec->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  // Replacing the handler delivers nothing again.
  auto rec2 = std::make_shared<Recorder>();
  EXPECT_EQ(p.server->SetHandler(rec2), rec);
  w.Settle();
  EXPECT_TRUE(rec2->messages.empty());
  EXPECT_TRUE(rec2->closes.empty());
}

TEST(MessageConnectionTest, LocalCloseFiresNoCallbackAndDropsQueued) {
  SimNet w;
  SmacPair p(w);
  auto rec = std::make_shared<Recorder>();
  ASSERT_TRUE(p.client->Send("x").ok());
  w.Settle();
  p.server->Close();
  p.server->SetHandler(rec);
  w.Settle();
  EXPECT_TRUE(rec->messages.empty());
  EXPECT_TRUE(rec->closes.empty());
}

TEST(MessageConnectionTest, OversizedFrameClosesWithProtocolError) {
  SimNet w(5, 2);
  MessageOptions options;
  options.max_message_size = 16;
  SmacPair p(w, options);
  auto rec = std::make_shared<Recorder>();
  auto client_rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  p.client->SetHandler(client_rec);
  ASSERT_TRUE(p.client->Send("fine").ok());
  // The sender refuses an oversized message with a clear error...
  EXPECT_EQ(p.client->Send(std::string(17, 'x')).code(), absl::StatusCode::kInvalidArgument);
  // ...and a peer that sends one anyway (raw bytes) gets closed.
  ASSERT_TRUE(p.raw_client->Write(std::string("\x7f\xff\xff\xff", 4) + "garbage").ok());
  w.Settle();
  EXPECT_THAT(rec->messages, ElementsAre("fine"));
  ASSERT_EQ(rec->closes.size(), 1u);
  EXPECT_EQ(rec->closes[0].kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(rec->closes[0].detail(), HasSubstr("2147483647 bytes exceeds the limit of 16"));
  EXPECT_FALSE(p.server->IsOpen());
  // The peer sees the stream end.
  ASSERT_EQ(client_rec->closes.size(), 1u);
  EXPECT_EQ(client_rec->closes[0].kind(), CloseReason::Kind::kPeerClosed);
}

TEST(MessageConnectionTest, PeerDyingMidFrameIsReported) {
  SimNet w;
  SmacPair p(w);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  ASSERT_TRUE(p.raw_client
                  ->Write(std::string("\0\0\0\x0a"
                                      "abc",
                                      7))
                  .ok());
  w.Settle();
  ASSERT_TRUE(w.world().Reset(*p.raw_client).ok());
  (void)w.world().RunFor(absl::Seconds(1));  // the client's RST crosses the network
  ASSERT_EQ(rec->closes.size(), 1u);
  EXPECT_EQ(rec->closes[0].kind(), CloseReason::Kind::kReset);
  EXPECT_THAT(rec->closes[0].detail(), HasSubstr("partial smac frame was discarded (7 bytes"));
}

TEST(MessageConnectionTest, HandlerMaySendAndCloseFromInsideCallback) {
  SimNet w(9, 5);
  SmacPair p(w);
  auto server_rec = std::make_shared<Recorder>();
  server_rec->on_message = [](MessageConnection& c, std::string_view m) {
    ASSERT_TRUE(c.Send(std::string("echo:") + std::string(m)).ok());
    if (m == "bye") c.Close();
  };
  auto client_rec = std::make_shared<Recorder>();
  p.server->SetHandler(server_rec);
  p.client->SetHandler(client_rec);
  ASSERT_TRUE(p.client->Send("hi").ok());
  ASSERT_TRUE(p.client->Send("bye").ok());
  ASSERT_TRUE(p.client->Send("ignored").ok());
  w.Settle();
  EXPECT_THAT(client_rec->messages, ElementsAre("echo:hi", "echo:bye"));
  ASSERT_EQ(client_rec->closes.size(), 1u);
  EXPECT_EQ(client_rec->closes[0].kind(), CloseReason::Kind::kPeerClosed);
  EXPECT_TRUE(server_rec->closes.empty());
}

TEST(MessageConnectionTest, QueueBoundWithoutHandlerClosesClearly) {
  SimNet w;
  MessageOptions options;
  options.max_queued_bytes = 100;
  SmacPair p(w, options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p.client->Send(std::string(30, 'm')).ok());
  w.Settle();
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  EXPECT_EQ(rec->messages.size(), 3u);
  ASSERT_EQ(rec->closes.size(), 1u);
  EXPECT_EQ(rec->closes[0].kind(), CloseReason::Kind::kError);
  EXPECT_THAT(rec->closes[0].detail(), HasSubstr("bound of 100 bytes"));
}

TEST(MessageConnectionTest, CloseWithReasonIsReportedOnce) {
  SimNet w;
  SmacPair p(w);
  auto rec = std::make_shared<Recorder>();
  p.server->SetHandler(rec);
  p.server->CloseWithReason(CloseReason(CloseReason::Kind::kTimeout, "no heartbeat"));
  p.server->CloseWithProtocolError("second");
  (void)w.world().Reset(*p.raw_server);  // the stream may have ended already
  w.Settle();
  ASSERT_EQ(rec->closes.size(), 1u);
  EXPECT_EQ(rec->closes[0], CloseReason(CloseReason::Kind::kTimeout, "no heartbeat"));
}

}  // namespace
}  // namespace netlayer::smac

namespace netlayer::smac {
namespace {

// Records WriteV calls, to check that a message is ONE WriteV whose pieces are the caller's own
// buffers (no concatenation or copy in smac).
class RecordingConnection final : public Connection {
 public:
  bool IsOpen() const override { return true; }
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler> h) override {
    std::swap(handler, h);
    return h;
  }
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override {
    calls.emplace_back(pieces.begin(), pieces.end());
    return absl::OkStatus();
  }
  void Close() override {}
  void Abort() override {}
  size_t QueuedOutputBytes() const override { return 0; }
  Address local_address() const override { return Address::HostName("a", 1); }
  Address peer_address() const override { return Address::HostName("b", 1); }
  std::shared_ptr<ConnectionHandler> handler;
  std::vector<std::vector<std::string_view>> calls;
};

TEST(MessageConnectionTest, OneWriteVPerMessageWithoutCopyingThePayload) {
  auto raw = std::make_shared<RecordingConnection>();
  auto mc = MessageConnection::Create(raw);
  const std::string big(100000, 'b');
  const std::string small = "tail";
  std::string_view pieces[] = {big, small};
  ASSERT_TRUE(mc->SendV(pieces).ok());
  ASSERT_EQ(raw->calls.size(), 1u);
  ASSERT_EQ(raw->calls[0].size(), 3u);
  EXPECT_EQ(raw->calls[0][0], std::string_view(EncodeHeader(100004).data(), 4));
  EXPECT_EQ(raw->calls[0][1].data(), big.data());  // the caller's buffer itself
  EXPECT_EQ(raw->calls[0][2].data(), small.data());
  // Many pieces (past the inline array) still make one WriteV.
  std::vector<std::string_view> many(20, std::string_view("x"));
  ASSERT_TRUE(mc->SendV(many).ok());
  ASSERT_EQ(raw->calls.size(), 2u);
  EXPECT_EQ(raw->calls[1].size(), 21u);
  EXPECT_EQ(raw->calls[1][0], std::string_view(EncodeHeader(20).data(), 4));
}

}  // namespace
}  // namespace netlayer::smac
