// The server protections of issue 12 and the hostile inputs of docs/OPERATIONS.md, on the
// simulator (guarded: no sockets, no threads). Each hostile peer is a raw connection from its own
// simulated host that writes exactly the bytes the test wants; a well-behaved rpc client keeps
// calling beside it. Every test names the protection or the row of docs/OPERATIONS.md it backs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/server.h"
#include "netlayer/sim/world.h"
#include "netlayer/smac/frame.h"

namespace netlayer::rpc {
namespace {

using ::testing::HasSubstr;

constexpr uint16_t kPort = 9000;

// A peer that writes raw bytes and records what it receives and when its connection ends.
struct RawPeer : ConnectionHandler {
  void InputData(Connection&, std::string_view data) override { received.append(data); }
  void ConnectionClosed(Connection&, const CloseReason& r) override { closed = r; }
  std::string received;
  std::optional<CloseReason> closed;
  std::shared_ptr<Connection> conn;
};

std::string Hello() { return smac::EncodeFrame(EncodeClientHello({"netlayer-rpc", 1})); }

std::string Frame(const Envelope& e) { return smac::EncodeFrame(EncodeEnvelope(BinaryCodec(), e)); }

std::string CallFrame(uint64_t id, std::string_view method, std::string_view payload = "") {
  Envelope e;
  e.kind = MessageKind::kCall;
  e.id = id;
  e.method = method;
  e.payload = payload;
  return Frame(e);
}

// A server host with an rpc server, the sessions' closes (reason and time), and a well-behaved
// client on its own host.
class Bench {
 public:
  explicit Bench(ServerOptions sopt = {}, sim::WorldOptions wopt = {}) : world_(wopt) {
    server_host_ = *world_.AddHost("server");
    sopt.on_session_closed = [this](Session&, const CloseReason& r) {
      closes.push_back(r);
      close_times.push_back(world_.Now());
    };
    server = Server::Create(world_.env(server_host_), sopt);
    server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
    server->Register("hold",
                     [this](const Request&, Responder resp) { held.push_back(std::move(resp)); });
    server->Register("big", [](const Request&, Responder resp) {
      (void)resp.Reply(std::string(64 << 10, 'b'));
    });
    listener_ =
        *world_.server_factory(server_host_)
             .Listen(Address::HostName("server", kPort),
                     [this](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  }
  ~Bench() {
    for (auto& c : clients_) c->Close();
    held.clear();
    server->Close();
  }

  sim::World& world() { return world_; }
  absl::Time In(absl::Duration d) { return world_.Now() + d; }

  // A well-behaved rpc client on a new host, ready.
  std::shared_ptr<Client> GoodClient(ClientOptions copt = {}) {
    const sim::HostId h = *world_.AddHost(absl::StrCat("good", ++hosts_));
    auto conn = world_.client_factory(h).ConnectBlocking({Address::HostName("server", kPort)}, {});
    EXPECT_TRUE(conn.ok()) << conn.status();
    auto c = Client::Create(world_.env(h), *conn, copt);
    EXPECT_TRUE(c->WaitReady(In(absl::Seconds(5))));
    clients_.push_back(c);
    return c;
  }

  // A raw peer, from `host` (a new host if empty), connected; nothing written yet.
  std::shared_ptr<RawPeer> Raw(std::string host = "") {
    if (host.empty()) host = absl::StrCat("raw", ++hosts_);
    auto found = world_.FindHost(host);
    const sim::HostId h = found.ok() ? *found : *world_.AddHost(host);
    auto peer = std::make_shared<RawPeer>();
    auto conn = world_.client_factory(h).ConnectBlocking({Address::HostName("server", kPort)}, {});
    EXPECT_TRUE(conn.ok()) << conn.status();
    peer->conn = *conn;
    peer->conn->SetHandler(peer);
    return peer;
  }

  // Runs until `peer`'s connection ended (true) or `limit` passed.
  bool RunUntilClosed(RawPeer& peer, absl::Duration limit) {
    return world_.RunUntil([&] { return peer.closed.has_value(); }, In(limit));
  }

  std::shared_ptr<Server> server;
  std::vector<CloseReason> closes;
  std::vector<absl::Time> close_times;
  std::vector<Responder> held;

 private:
  sim::World world_;
  sim::HostId server_host_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::shared_ptr<Client>> clients_;
  int hosts_ = 0;
};

// ---- Before the handshake: the first frame is bounded by what a hello needs ----

TEST(ProtectionTest, AFrameBeforeTheHandshakeIsBoundedByTheHelloSize) {
  Bench b;
  auto good = b.GoodClient();
  auto peer = b.Raw();
  // A header announcing 64 MiB (the frame limit after the handshake), then a trickle of bytes:
  // without the hello bound the server would buffer it until the handshake timeout.
  const auto header = smac::EncodeHeader(size_t{64} << 20);
  ASSERT_TRUE(peer->conn->Write(std::string_view(header.data(), header.size())).ok());
  ASSERT_TRUE(peer->conn->Write(std::string(1000, 'x')).ok());
  ASSERT_TRUE(b.RunUntilClosed(*peer, absl::Seconds(1))) << "closed at the header, not later";
  ASSERT_EQ(b.closes.size(), 1u);
  EXPECT_EQ(b.closes[0].kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("exceeds the limit of 265 bytes"));
  EXPECT_EQ(*good->Call("echo", "fine", b.In(absl::Seconds(5))), "fine");
}

TEST(ProtectionTest, AfterTheHandshakeLargeMessagesPassEvenPipelinedWithTheHello) {
  Bench b;
  // The client queues a 300 KiB call before the handshake: it goes right behind the hello, so
  // the limit must switch between the two frames.
  const sim::HostId h = *b.world().AddHost("client");
  auto conn = b.world().client_factory(h).ConnectBlocking({Address::HostName("server", kPort)}, {});
  ASSERT_TRUE(conn.ok());
  auto client = Client::Create(b.world().env(h), *conn);
  const std::string big(300 << 10, 'p');
  auto early = client->CallAsync("echo", big, b.In(absl::Seconds(5)));
  ASSERT_TRUE(early.WaitUntil(b.In(absl::Seconds(5))));
  ASSERT_TRUE(early.Wait().ok()) << early.Wait().status();
  EXPECT_EQ(early.Wait()->size(), big.size());
  EXPECT_EQ(client->Call("echo", big, b.In(absl::Seconds(5)))->size(), big.size());
  client->Close();
}

// ---- Connection limits ----

TEST(ProtectionTest, MaxSessionsRefusesNewConnectionsAtOnceAndKeepsTheOthers) {
  ServerOptions sopt;
  sopt.max_sessions = 3;
  Bench b(sopt);
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(b.GoodClient());
  ASSERT_EQ(b.server->Sessions().size(), 3u);
  auto extra = b.Raw();
  ASSERT_TRUE(b.RunUntilClosed(*extra, absl::Milliseconds(100))) << "refused at once";
  EXPECT_EQ(extra->received, "") << "a refused connection gets nothing, not even a hello";
  // (The simulated connect may have retried once after seeing the refusal: >= 1.)
  EXPECT_GE(b.server->refused_connections(), 1u);
  EXPECT_EQ(b.server->Sessions().size(), 3u);
  for (auto& c : clients) EXPECT_EQ(*c->Call("echo", "x", b.In(absl::Seconds(5))), "x");
  // A slot freed is a slot usable again.
  clients[0]->Close();
  ASSERT_TRUE(
      b.world().RunUntil([&] { return b.server->Sessions().size() == 2; }, b.In(absl::Seconds(1))));
  auto again = b.GoodClient();
  EXPECT_EQ(*again->Call("echo", "y", b.In(absl::Seconds(5))), "y");
}

TEST(ProtectionTest, MaxSessionsPerHostCountsEachPeerHost) {
  ServerOptions sopt;
  sopt.max_sessions_per_host = 2;
  Bench b(sopt);
  auto a1 = b.Raw("a");
  auto a2 = b.Raw("a");
  auto a3 = b.Raw("a");
  auto c1 = b.Raw("c");
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  EXPECT_FALSE(a1->closed);
  EXPECT_FALSE(a2->closed);
  EXPECT_TRUE(a3->closed) << "the third from host a is refused";
  EXPECT_FALSE(c1->closed) << "host c has its own allowance";
  EXPECT_EQ(b.server->refused_connections(), 1u);
}

// ---- Slow peers ----

TEST(ProtectionTest, ADripCannotExtendTheHandshakeDeadline) {
  ServerOptions sopt;
  sopt.handshake_timeout = absl::Seconds(3);
  Bench b(sopt);
  auto peer = b.Raw();
  // A hello frame whose header announces 200 bytes (within the hello bound), then one byte every
  // 100 ms: each byte arrives, none completes a message.
  const auto header = smac::EncodeHeader(200);
  ASSERT_TRUE(peer->conn->Write(std::string_view(header.data(), header.size())).ok());
  const absl::Time start = b.world().Now();
  for (int i = 1; i <= 190; ++i) {
    ASSERT_TRUE(
        b.world()
            .At(start + i * absl::Milliseconds(100), [peer] { (void)peer->conn->Write("x"); })
            .ok());
  }
  ASSERT_TRUE(b.RunUntilClosed(*peer, absl::Seconds(30)));
  ASSERT_EQ(b.closes.size(), 1u);
  EXPECT_EQ(b.closes[0].kind(), CloseReason::Kind::kTimeout);
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("no client hello within 3s"));
  EXPECT_LE(b.close_times[0] - start, absl::Seconds(3) + absl::Milliseconds(100));
}

TEST(ProtectionTest, TheIdleTimeoutIsOnByDefaultAndADripOfAPartialFrameDoesNotCount) {
  Bench b;  // default options: idle_timeout 60 s
  auto peer = b.Raw();
  ASSERT_TRUE(peer->conn->Write(Hello()).ok());
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  ASSERT_EQ(b.server->Sessions().size(), 1u);
  ASSERT_TRUE(b.server->Sessions()[0]->ready());
  const absl::Time start = b.world().Now();
  const auto header = smac::EncodeHeader(1 << 20);
  ASSERT_TRUE(peer->conn->Write(std::string_view(header.data(), header.size())).ok());
  for (int i = 1; i <= 200; ++i) {
    ASSERT_TRUE(
        b.world().At(start + i * absl::Seconds(1), [peer] { (void)peer->conn->Write("x"); }).ok());
  }
  ASSERT_TRUE(b.RunUntilClosed(*peer, absl::Seconds(120)));
  ASSERT_EQ(b.closes.size(), 1u);
  EXPECT_EQ(b.closes[0].kind(), CloseReason::Kind::kTimeout);
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("idle_timeout 1m"));
  EXPECT_LE(b.close_times[0] - start, absl::Seconds(61));
}

TEST(ProtectionTest, ADefaultClientIdleForLongIsNeverDroppedByADefaultServer) {
  Bench b;
  auto client = b.GoodClient();
  ASSERT_TRUE(b.world().RunFor(absl::Minutes(10)).ok());
  EXPECT_TRUE(client->ready());
  EXPECT_TRUE(b.closes.empty()) << b.closes[0].ToString();
  EXPECT_EQ(*client->Call("echo", "still here", b.In(absl::Seconds(5))), "still here");
}

// ---- Per-session bounds ----

TEST(ProtectionTest, CallsInFlightPerSessionAreBoundedWithResourceExhausted) {
  ServerOptions sopt;
  sopt.max_inflight_calls = 4;
  Bench b(sopt);
  auto client = b.GoodClient();
  std::vector<CallFuture> futures;
  for (int i = 0; i < 6; ++i) {
    futures.push_back(client->CallAsync("hold", "", b.In(absl::Seconds(30))));
  }
  ASSERT_TRUE(b.world().RunUntil([&] { return futures[5].Ready(); }, b.In(absl::Seconds(1))));
  EXPECT_EQ(b.held.size(), 4u) << "no handler runs for a call over the bound";
  for (int i = 4; i < 6; ++i) {
    EXPECT_EQ(futures[i].Wait().status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(futures[i].Wait().status().message()),
                HasSubstr("max_inflight_calls 4"));
  }
  for (auto& r : b.held) ASSERT_TRUE(r.Reply("done").ok());
  b.held.clear();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*futures[i].Wait(), "done");
  // Answered calls free their slots.
  EXPECT_EQ(*client->Call("echo", "next", b.In(absl::Seconds(5))), "next");
}

TEST(ProtectionTest, APeerThatNeverReadsIsBoundedByTheOutputLimitThenDropped) {
  sim::WorldOptions wopt;
  wopt.connection_limits.max_output_bytes = 256 << 10;
  wopt.connection_limits.max_pending_input_bytes = 64 << 10;
  Bench b({}, wopt);
  auto good = b.GoodClient();
  auto peer = b.Raw();
  peer->conn->SetHandler(nullptr);  // reads nothing from now on
  std::string calls = Hello();
  for (uint64_t id = 1; id <= 2000; ++id) calls += CallFrame(id, "big");
  ASSERT_TRUE(peer->conn->Write(calls).ok());
  // Replies pile up in the server's output queue until it is full (256 KiB here); then each reply
  // that does not fit becomes a small RESOURCE_EXHAUSTED error reply, until even that does not
  // fit and the session closes: never unbounded memory.
  ASSERT_TRUE(b.world().RunUntil([&] { return !b.closes.empty(); }, b.In(absl::Seconds(10))));
  ASSERT_EQ(b.closes.size(), 1u) << "the session of the peer that does not read is dropped";
  EXPECT_EQ(b.closes[0].kind(), CloseReason::Kind::kError);
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("could not be sent"));
  EXPECT_EQ(*good->Call("echo", "unaffected", b.In(absl::Seconds(5))), "unaffected");
}

// ---- Hostile inputs (docs/OPERATIONS.md): each closes that one connection, clearly ----

// Sends `bytes` from a raw peer and returns the server's close reason for that session; a
// well-behaved client keeps being served. `received` gets what the peer received.
CloseReason Provoke(Bench& b, const std::string& bytes, std::string* received = nullptr,
                    bool end_stream = false) {
  auto good = b.GoodClient();
  auto peer = b.Raw();
  EXPECT_TRUE(peer->conn->Write(bytes).ok());
  if (end_stream) peer->conn->Close();
  EXPECT_TRUE(b.world().RunUntil([&] { return !b.closes.empty(); }, b.In(absl::Seconds(1))))
      << "the server did not close the connection at once";
  if (!end_stream) {
    EXPECT_TRUE(b.RunUntilClosed(*peer, absl::Seconds(1)));
  }
  if (received != nullptr) *received = peer->received;
  EXPECT_EQ(*good->Call("echo", "ok", b.In(absl::Seconds(5))), "ok");
  EXPECT_EQ(b.server->Sessions().size(), 1u);
  return b.closes.empty() ? CloseReason(CloseReason::Kind::kError, "no close") : b.closes[0];
}

// ---- The server-wide memory budget (ServerOptions::memory_budget_bytes, issue 29) ----

TEST(ProtectionTest, TheMemoryBudgetRefusesAFramePastItWhileOtherSessionsAreServed) {
  ServerOptions sopt;
  sopt.memory_budget_bytes = size_t{9} << 20;
  Bench b(sopt);
  b.server->Register("huge", [](const Request&, Responder resp) {
    (void)resp.Reply(std::string(size_t{2} << 20, 'h'));
  });
  auto good = b.GoodClient();
  // A holds all but one byte of an 8 MiB frame: its buffer is charged, about 8 MiB.
  auto a = b.Raw();
  ASSERT_TRUE(a->conn->Write(Hello()).ok());
  const auto header_a = smac::EncodeHeader(size_t{8} << 20);
  ASSERT_TRUE(a->conn->Write(std::string_view(header_a.data(), header_a.size())).ok());
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(a->conn->Write(std::string((size_t{1} << 20) - (i == 7 ? 1 : 0), 'a')).ok());
  }
  ASSERT_TRUE(b.world().RunFor(absl::Seconds(1)).ok());
  ServerStats st = b.server->stats();
  EXPECT_EQ(st.memory_budget_bytes, sopt.memory_budget_bytes);
  EXPECT_GE(st.frame_buffer_bytes, (size_t{8} << 20) - 1);
  EXPECT_LE(st.frame_buffer_bytes, size_t{8} << 20);
  EXPECT_FALSE(a->closed.has_value());
  // Small calls go on; a reply that would pass the budget becomes an error reply.
  EXPECT_EQ(*good->Call("echo", "fine", b.In(absl::Seconds(5))), "fine");
  absl::StatusOr<std::string> huge = good->Call("huge", "", b.In(absl::Seconds(5)));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(huge.status().message(), HasSubstr("the server's memory budget (9437184 bytes)"));
  // B's frame cannot grow past what is left: its session is closed with a clear reason.
  auto peer_b = b.Raw();
  ASSERT_TRUE(peer_b->conn->Write(Hello()).ok());
  const auto header_b = smac::EncodeHeader(size_t{4} << 20);
  ASSERT_TRUE(peer_b->conn->Write(std::string_view(header_b.data(), header_b.size())).ok());
  ASSERT_TRUE(peer_b->conn->Write(std::string(size_t{3} << 20, 'b')).ok());
  ASSERT_TRUE(b.RunUntilClosed(*peer_b, absl::Seconds(5)));
  ASSERT_EQ(b.closes.size(), 1u);
  EXPECT_EQ(b.closes[0].kind(), CloseReason::Kind::kError);
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("smac: a frame of 4194304 bytes was refused"));
  EXPECT_THAT(b.closes[0].detail(), HasSubstr("the memory budget for large frames (9437184 bytes)"));
  st = b.server->stats();
  EXPECT_LE(st.peak_frame_buffer_bytes, sopt.memory_budget_bytes);
  EXPECT_GE(st.budget_refusals, 2u);
  EXPECT_FALSE(a->closed.has_value()) << "A's session is untouched";
  EXPECT_EQ(*good->Call("echo", "still fine", b.In(absl::Seconds(5))), "still fine");
  // A goes away: its buffer is freed at once, and large calls fit again.
  a->conn->Close();
  ASSERT_TRUE(b.world().RunUntil([&] { return b.closes.size() == 2; }, b.In(absl::Seconds(5))));
  EXPECT_EQ(b.server->stats().frame_buffer_bytes, 0u);
  const std::string four(size_t{4} << 20, 'f');
  absl::StatusOr<std::string> echoed = good->Call("echo", four, b.In(absl::Seconds(10)));
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->size(), four.size());
  EXPECT_TRUE(good->Call("huge", "", b.In(absl::Seconds(5))).ok());
  EXPECT_EQ(b.server->stats().frame_buffer_bytes, 0u);
}

TEST(HostileInputTest, GarbageBeforeTheHelloFailsAtTheFrameHeader) {
  Bench b;
  const CloseReason r = Provoke(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr("frame of 1195725856 bytes exceeds the limit of 265 bytes"));
}

TEST(HostileInputTest, GarbageInAHelloSizedFrame) {
  Bench b;
  const CloseReason r = Provoke(b, smac::EncodeFrame("220 smtp.example.com ESMTP"));
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr("expected a client hello starting with \"NLRP\""));
}

TEST(HostileInputTest, WrongVersion) {
  Bench b;
  const CloseReason r = Provoke(b, smac::EncodeFrame(EncodeClientHello({"netlayer-rpc", 7})));
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr("the client chose version 7, this server supports 1..1"));
}

TEST(HostileInputTest, FourGiBHeader) {
  Bench b;
  const CloseReason r = Provoke(b, Hello() + "\xff\xff\xff\xff");
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr("frame of 4294967295 bytes exceeds the limit of 67108864"));
}

TEST(HostileInputTest, TruncatedFrame) {
  Bench b;
  const auto header = smac::EncodeHeader(100);
  const CloseReason r = Provoke(
      b, Hello() + std::string(header.data(), header.size()) + std::string(10, 't'), nullptr,
      /*end_stream=*/true);
  EXPECT_THAT(r.detail(), HasSubstr("a partial smac frame was discarded (14 bytes received)"));
}

struct MalformedCase {
  const char* name;
  std::string envelope;
  const char* detail;
};

class MalformedEnvelopeTest : public ::testing::TestWithParam<MalformedCase> {};

// A protocol-error close sends nothing first (docs/PROTOCOL.md §4): the peer receives the
// server's hello, then the end of the stream.
TEST_P(MalformedEnvelopeTest, ClosesThatSessionOnlyAndSendsNothingFirst) {
  Bench b;
  std::string received;
  const CloseReason r = Provoke(b, Hello() + smac::EncodeFrame(GetParam().envelope), &received);
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr(GetParam().detail));
  EXPECT_EQ(received, smac::EncodeFrame(EncodeServerHello({"netlayer-rpc", 1, 1})))
      << "nothing but the hello before the close";
}

std::string Id(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, id >>= 8) out[i] = static_cast<char>(id & 0xff);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, MalformedEnvelopeTest,
    ::testing::Values(
        MalformedCase{"Empty", "", "empty"},
        MalformedCase{"UnknownKind", "\x09" + Id(1), "unknown kind 9"},
        MalformedCase{"ShortCall", std::string("\x01\0\0", 3), "rpc envelope"},
        MalformedCase{"MethodLengthZero", "\x01" + Id(1) + std::string("\0\0", 2), "method"},
        MalformedCase{"MethodOver1024", "\x01" + Id(1) + "\x04\x01m", "method"},
        MalformedCase{"MethodPastTheEnd", "\x01" + Id(1) + std::string("\0\x09", 2) + "abc",
                      "method"},
        MalformedCase{"PingWithPayload", "\x05" + Id(1) + "xx", "rpc envelope"},
        MalformedCase{"PongWithPayload", "\x06" + Id(1) + "xx", "rpc envelope"},
        MalformedCase{"ErrorReplyCodeZero", "\x04" + Id(1) + std::string("\0", 1) + "m",
                      "rpc envelope"},
        MalformedCase{"ReplyFromTheClient", "\x03" + Id(1) + "r",
                      "the client sent a reply (id 1) but the server makes no calls"},
        MalformedCase{"ErrorReplyFromTheClient", "\x04" + Id(1) + "\x0c" + "unimplemented",
                      "the client sent a error reply (id 1)"},
        MalformedCase{"CallIdZero", "\x01" + Id(0) + std::string("\0\x01", 2) + "m",
                      "call with id 0"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(HostileInputTest, ACallIdReusedWhileOutstandingIsAProtocolError) {
  Bench b;
  const CloseReason r = Provoke(b, Hello() + CallFrame(5, "hold") + CallFrame(5, "hold"));
  EXPECT_EQ(r.kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(r.detail(), HasSubstr("reused call id 5 while that call is outstanding"));
}

TEST(HostileInputTest, AnIdOnAOneWayMessageIsIgnored) {
  Bench b;
  int notes = 0;
  b.server->Register("note", [&](const Request& r, Responder resp) {
    ++notes;
    EXPECT_TRUE(r.one_way);
    EXPECT_TRUE(resp.Reply("ignored").ok());  // a no-op for a one-way call
  });
  auto peer = b.Raw();
  Envelope e;
  e.kind = MessageKind::kOneWay;
  e.id = 77;
  e.method = "note";
  ASSERT_TRUE(peer->conn->Write(Hello() + Frame(e) + CallFrame(77, "echo", "after")).ok());
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  EXPECT_EQ(notes, 1);
  EXPECT_TRUE(b.closes.empty());
  // The call with the same id is answered normally: a one-way message has no outstanding id.
  Envelope reply;
  reply.kind = MessageKind::kReply;
  reply.id = 77;
  reply.payload = "after";
  EXPECT_THAT(peer->received, HasSubstr(Frame(reply)));
}

// docs/PROTOCOL.md §5, "Control messages in either direction" (issue 29): a ping with id 0 is
// answered with a pong of id 0; a pong to the server is ignored; neither closes the session.
TEST(HostileInputTest, APingWithIdZeroIsAnsweredAndAPongToTheServerIsIgnored) {
  Bench b;
  auto peer = b.Raw();
  Envelope ping;
  ping.kind = MessageKind::kPing;
  ping.id = 0;
  Envelope pong;
  pong.kind = MessageKind::kPong;
  pong.id = 5;
  ASSERT_TRUE(peer->conn->Write(Hello() + Frame(ping) + Frame(pong) + CallFrame(1, "echo", "x")).ok());
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  Envelope answer;
  answer.kind = MessageKind::kPong;
  answer.id = 0;
  Envelope reply;
  reply.kind = MessageKind::kReply;
  reply.id = 1;
  reply.payload = "x";
  EXPECT_EQ(peer->received, smac::EncodeFrame(EncodeServerHello({"netlayer-rpc", 1, 1})) +
                                Frame(answer) + Frame(reply));
  EXPECT_TRUE(b.closes.empty());
  EXPECT_FALSE(peer->closed.has_value());
}

// docs/PROTOCOL.md §5, "A refused call is not outstanding": a call refused for
// max_inflight_calls was answered, so its id may be used again at once.
TEST(HostileInputTest, ACallRefusedForMaxInflightCallsIsNotOutstanding) {
  ServerOptions sopt;
  sopt.max_inflight_calls = 1;
  Bench b(sopt);
  auto peer = b.Raw();
  ASSERT_TRUE(peer->conn->Write(Hello() + CallFrame(1, "hold") + CallFrame(2, "echo", "a") +
                                CallFrame(2, "echo", "b"))
                  .ok());
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  EXPECT_TRUE(b.closes.empty()) << "reusing a refused call's id is not a protocol error";
  ASSERT_EQ(b.held.size(), 1u);
  EXPECT_THAT(peer->received, HasSubstr("too many calls in flight on this connection"));
  // Once call 1 is answered, id 2 is served.
  ASSERT_TRUE(b.held[0].Reply("held").ok());
  ASSERT_TRUE(peer->conn->Write(CallFrame(2, "echo", "c")).ok());
  ASSERT_TRUE(b.world().RunFor(absl::Milliseconds(100)).ok());
  Envelope reply;
  reply.kind = MessageKind::kReply;
  reply.id = 2;
  reply.payload = "c";
  EXPECT_THAT(peer->received, HasSubstr(Frame(reply)));
  EXPECT_TRUE(b.closes.empty());
}

TEST(HostileInputTest, AThousandAbandonedConnectionsAreClosedAtTheHandshakeDeadline) {
  Bench b;  // default options: handshake_timeout 10 s, max_sessions 1024
  auto good = b.GoodClient();
  std::vector<std::shared_ptr<RawPeer>> peers;
  for (int i = 0; i < 1000; ++i) peers.push_back(b.Raw(absl::StrCat("abandoned", i % 10)));
  const absl::Time opened = b.world().Now();
  EXPECT_EQ(b.server->Sessions().size(), 1001u);
  EXPECT_EQ(*good->Call("echo", "busy", b.In(absl::Seconds(5))), "busy");
  ASSERT_TRUE(b.world().RunUntil([&] { return b.server->Sessions().size() == 1; },
                                 opened + absl::Seconds(11)));
  EXPECT_TRUE(b.world().RunUntil(
      [&] {
        for (const auto& p : peers) {
          if (!p->closed) return false;
        }
        return true;
      },
      b.In(absl::Seconds(1))))
      << "every abandoned peer sees its connection end";
  EXPECT_EQ(b.closes.size(), 1000u);
  EXPECT_EQ(*good->Call("echo", "after", b.In(absl::Seconds(5))), "after");
}

}  // namespace
}  // namespace netlayer::rpc
