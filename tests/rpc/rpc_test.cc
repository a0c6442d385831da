// rpc over the simulator on a calm profile (tests/support/sim_net.h): a client host and a server
// host, no random faults, optional chunking; no sockets, no threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/server.h"
#include "netlayer/smac/frame.h"
#include "sim_net.h"

namespace netlayer::rpc {
namespace {

using netlayer::testing::SimNet;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

void RegisterEcho(Server& server) {
  server.Register("echo", [](const Request& r, Responder resp) {
    ASSERT_TRUE(resp.Reply(absl::StrCat("echo:", std::string(r.payload))).ok());
  });
}

struct Fixture {
  explicit Fixture(uint64_t seed = 1, size_t chunk = 1 << 20, ClientOptions copt = {},
                   ServerOptions sopt = {})
      : world(seed, chunk) {
    server = Server::Create(world.server_env(), sopt);
    RegisterEcho(*server);
    auto pair = world.NewPair();
    raw_client = pair.client;
    raw_server = pair.server;
    session = server->Serve(pair.server);
    client = Client::Create(world.client_env(), pair.client, copt);
  }
  absl::Time In(absl::Duration d) { return world.In(d); }
  SimNet world;
  std::shared_ptr<Server> server;
  std::shared_ptr<Session> session;
  std::shared_ptr<Client> client;
  std::shared_ptr<Connection> raw_client, raw_server;
};

TEST(RpcTest, BlockingCallRunsTheWorldAndReturnsTheReply) {
  Fixture f;
  auto r = f.client->Call("echo", "hi", f.In(absl::Seconds(5)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hi");
  EXPECT_TRUE(f.client->ready());
  EXPECT_EQ(f.client->version(), 1);
  EXPECT_EQ(f.session->version(), 1);
  EXPECT_EQ(f.client->pending_calls(), 0u);
}

TEST(RpcTest, UnknownMethodAndErrorRepliesCarryStatus) {
  Fixture f;
  f.server->Register("fail", [](const Request&, Responder resp) {
    ASSERT_TRUE(resp.Fail(absl::NotFoundError("no such oid")).ok());
  });
  f.server->Register("drop", [](const Request&, Responder) {});
  auto r = f.client->Call("nope", "", f.In(absl::Seconds(5)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Msg(r.status()), HasSubstr("unknown method \"nope\""));
  EXPECT_EQ(f.client->Call("fail", "", f.In(absl::Seconds(5))).status(),
            absl::NotFoundError("no such oid"));
  auto d = f.client->Call("drop", "", f.In(absl::Seconds(5)));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Msg(d.status()), HasSubstr("dropped the call"));
  // The connection is still fine.
  EXPECT_EQ(*f.client->Call("echo", "x", f.In(absl::Seconds(5))), "echo:x");
}

TEST(RpcTest, ManyConcurrentCallsWithDeferredRepliesInRandomOrder) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    Fixture f(seed, /*chunk=*/seed * 3);
    std::vector<std::pair<std::string, Responder>> held;
    f.server->Register("later", [&](const Request& r, Responder resp) {
      held.emplace_back(std::string(r.payload), std::move(resp));
    });
    std::map<int, std::string> results;
    std::vector<CallFuture> futures;
    for (int i = 0; i < 100; ++i) {
      futures.push_back(f.client->CallAsync("later", absl::StrCat("p", i), f.In(absl::Hours(1)),
                                            [&results, i](CallResult r) {
                                              ASSERT_TRUE(r.ok()) << r.status();
                                              EXPECT_FALSE(results.count(i));
                                              results[i] = *r;
                                            }));
    }
    f.world.RunFor([&] { return held.size() == 100; }, absl::Seconds(1));
    ASSERT_EQ(held.size(), 100u);
    EXPECT_FALSE(futures[0].Ready());
    // Answer in a seeded random order.
    Xoshiro256 gen(seed);
    while (!held.empty()) {
      size_t k = UniformInt(gen, 0, held.size() - 1);
      ASSERT_TRUE(held[k].second.Reply("r" + held[k].first).ok());
      held.erase(held.begin() + static_cast<long>(k));
    }
    f.world.Settle();
    ASSERT_EQ(results.size(), 100u);
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(results[i], absl::StrCat("rp", i));
      ASSERT_TRUE(futures[i].Ready());
      EXPECT_EQ(*futures[i].Wait(), absl::StrCat("rp", i));
    }
  }
}

TEST(RpcTest, RepliesAndPushesRunInArrivalOrder) {
  std::vector<std::string> events;
  ClientOptions copt;
  copt.on_push = [&](std::string_view method, std::string_view payload) {
    events.push_back(absl::StrCat("push:", std::string(method), ":", std::string(payload)));
  };
  Fixture f(7, 2, copt);
  f.server->Register("commit", [](const Request& r, Responder resp) {
    // ZEO: the invalidation the server sends first must be processed first.
    ASSERT_TRUE(r.session.Push("invalidate", "before").ok());
    ASSERT_TRUE(resp.Reply("committed").ok());
    ASSERT_TRUE(r.session.Push("invalidate", "after").ok());
  });
  auto fut = f.client->CallAsync("commit", "", f.In(absl::Seconds(5)),
                                 [&](CallResult r) { events.push_back("reply:" + *r); });
  EXPECT_EQ(*fut.Wait(), "committed");
  f.world.Settle();
  EXPECT_THAT(events,
              ElementsAre("push:invalidate:before", "reply:committed", "push:invalidate:after"));
}

// Issue 12 bug 1: a reply that cannot be sent becomes an error reply (or a close), never
// silence; a handler that reacts to the failure with Fail gets a Status, never an abort.
TEST(RpcTest, OversizedReplyBecomesAResourceExhaustedErrorReply) {
  ServerOptions sopt;
  sopt.message_options.max_message_size = 1024;
  Fixture f(1, 1 << 20, {}, sopt);
  std::vector<absl::Status> reply_status, fail_status;
  f.server->Register("big", [&](const Request&, Responder resp) {
    reply_status.push_back(resp.Reply(std::string(4096, 'x')));
    EXPECT_TRUE(resp.answered());
    fail_status.push_back(resp.Fail(absl::InternalError("could not reply")));
  });
  auto fut = f.client->CallAsync("big", "", absl::InfiniteFuture());
  f.world.Settle();
  ASSERT_TRUE(fut.Ready()) << "an oversized reply left the call unanswered";
  EXPECT_EQ(fut.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Msg(fut.Wait().status()), HasSubstr("exceeds the limit"));
  ASSERT_EQ(reply_status.size(), 1u);
  EXPECT_EQ(reply_status[0].code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(fail_status.size(), 1u);
  EXPECT_EQ(fail_status[0].code(), absl::StatusCode::kFailedPrecondition);
  // The connection is still fine.
  EXPECT_EQ(*f.client->Call("echo", "x", f.In(absl::Seconds(5))), "echo:x");
}

TEST(RpcTest, AnsweringTwiceIsAnErrorNotAnAbort) {
  Fixture f;
  std::vector<absl::Status> statuses;
  f.server->Register("twice", [&](const Request&, Responder resp) {
    statuses.push_back(resp.Reply("first"));
    statuses.push_back(resp.Reply("second"));
    statuses.push_back(resp.Fail(absl::NotFoundError("third")));
  });
  EXPECT_EQ(*f.client->Call("twice", "", f.In(absl::Seconds(5))), "first");
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(statuses[2].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(statuses[1]), HasSubstr("already answered"));
  f.world.Settle();
  EXPECT_EQ(f.client->pending_calls(), 0u);
}

// The server's output queue is full (a client that does not read): each call still gets exactly
// one answer, a reply, an error reply or the connection's close, once bytes move again.
TEST(RpcTest, EveryCallIsAnsweredWhenTheOutputQueueIsFull) {
  sim::WorldOptions options = SimNet::Options();
  options.connection_limits.max_output_bytes = 4096;
  options.profile.send_buffer_bytes = 2048;  // the network holds little: the output queue fills
  SimNet w(options);
  auto pair = w.NewPair();
  auto server = Server::Create(w.server_env());
  std::vector<Responder> held;
  server->Register("hold",
                   [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  server->Serve(pair.server);
  auto client = Client::Create(w.client_env(), pair.client);
  constexpr int kCalls = 10;
  std::vector<int> completions(kCalls, 0);
  std::vector<absl::StatusCode> codes(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync("hold", "", absl::InfiniteFuture(), [&, i](CallResult r) {
      ++completions[i];
      codes[i] = r.status().code();
    });
  }
  w.Settle();
  ASSERT_EQ(held.size(), static_cast<size_t>(kCalls));
  w.Freeze(true);  // nothing reaches the client: the server's output fills up
  int failed_replies = 0;
  for (Responder& r : held) {
    if (!r.Reply(std::string(1500, 'r')).ok()) ++failed_replies;
    EXPECT_TRUE(r.answered());
  }
  EXPECT_GT(failed_replies, 0);
  w.Freeze(false);
  w.Settle();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(completions[i], 1) << "call " << i << " was not answered exactly once";
    EXPECT_TRUE(codes[i] == absl::StatusCode::kOk ||
                codes[i] == absl::StatusCode::kResourceExhausted ||
                codes[i] == absl::StatusCode::kUnavailable)
        << absl::StatusCodeToString(codes[i]);
  }
  EXPECT_EQ(client->pending_calls(), 0u);
}

// Issue 10 item 5: an application's mistakes return a Status; nothing aborts.
TEST(RpcTest, ApplicationMistakesAreStatusesNotAborts) {
  Fixture f;
  const std::string too_long(kMaxMethodLength + 1, 'm');
  EXPECT_EQ(f.client->Call(too_long, "", f.In(absl::Seconds(1))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.client->Call("", "", f.In(absl::Seconds(1))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.client->Notify(too_long, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CallFuture().Wait().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(CallFuture().WaitUntil(f.In(absl::Seconds(1))));
  f.server->Register(too_long, [](const Request&, Responder) {});  // logged, not registered
  f.server->Register("nohandler", nullptr);
  EXPECT_EQ(f.client->Call("nohandler", "", f.In(absl::Seconds(1))).status().code(),
            absl::StatusCode::kUnimplemented);
  ASSERT_TRUE(f.client->WaitReady(f.In(absl::Seconds(1))));
  f.world.Settle();
  EXPECT_EQ(f.session->Push(too_long, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.client->Call("echo", "fine", f.In(absl::Seconds(1))), "echo:fine");

  // Bad options: a closed client whose calls say why; a server that serves nothing.
  ClientOptions bad;
  bad.max_pending_calls = 0;
  EXPECT_EQ(ValidateClientOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  auto pair = f.world.NewPair();
  auto closed = Client::Create(f.world.client_env(), pair.client, bad);
  auto r = closed->Call("echo", "", f.In(absl::Seconds(1)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("max_pending_calls"));
  EXPECT_EQ(closed->last_error().code(), absl::StatusCode::kInvalidArgument);
  ClientOptions bad_protocol;
  bad_protocol.protocol = "";
  EXPECT_EQ(Client::CreateReconnecting(f.world.client_env(), f.world.client_factory(),
                                       {Address::HostName("server", 1)}, {}, bad_protocol)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ConnectOptions jittered;
  jittered.jitter = 0.5;  // needs ClientOptions::jitter_source
  EXPECT_EQ(Client::CreateReconnecting(f.world.client_env(), f.world.client_factory(),
                                       {Address::HostName("server", 1)}, jittered)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ServerOptions bad_server;
  bad_server.min_version = 3;
  bad_server.max_version = 2;
  EXPECT_EQ(ValidateServerOptions(bad_server).code(), absl::StatusCode::kInvalidArgument);
  auto server = Server::Create(f.world.server_env(), bad_server);
  auto pair2 = f.world.NewPair();
  EXPECT_EQ(server->Serve(pair2.server), nullptr);
}

TEST(RpcTest, ConnectionLossFailsEveryPendingCallAtOnce) {
  Fixture f;
  int answered = 0;
  f.server->Register("hang", [&](const Request&, Responder resp) {
    static std::vector<Responder> keep;  // never answered while the connection lives
    keep.push_back(std::move(resp));
    ++answered;
  });
  std::vector<CallResult> results;
  for (int i = 0; i < 5; ++i) {
    f.client->CallAsync("hang", "", absl::InfiniteFuture(),
                        [&](CallResult r) { results.push_back(std::move(r)); });
  }
  f.world.Settle();
  ASSERT_EQ(answered, 5);
  EXPECT_EQ(f.client->pending_calls(), 5u);
  const absl::Time reset_at = f.world.Now();
  // The client's own end is reset (its peer would learn of an RST one latency later).
  ASSERT_TRUE(f.world.world().Reset(*f.raw_client).ok());
  // At once: the world delivers the reset as an event at the same virtual time, and the calls
  // fail as the client sees it (not at their deadline, which is infinite here).
  (void)f.world.world().RunFor(absl::ZeroDuration());
  EXPECT_EQ(f.world.Now(), reset_at);
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(Msg(r.status()), HasSubstr("connection reset (scripted)"));
  }
  // A non-reconnecting client is closed now.
  EXPECT_EQ(f.client->Call("echo", "", f.In(absl::Seconds(1))).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(f.client->WaitReady(f.In(absl::Seconds(1))));
}

TEST(RpcTest, DeadlinePerCallAndLateRepliesAreIgnored) {
  Fixture f;
  std::vector<Responder> held;
  f.server->Register("slow",
                     [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  const absl::Time start = f.world.Now();
  auto r = f.client->Call("slow", "", f.In(absl::Seconds(2)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Msg(r.status()), HasSubstr("rpc call \"slow\""));
  EXPECT_EQ(f.world.Now() - start, absl::Seconds(2));
  ASSERT_EQ(held.size(), 1u);
  ASSERT_TRUE(held[0].Reply("too late").ok());
  f.world.Settle();
  EXPECT_EQ(f.client->pending_calls(), 0u);
  EXPECT_EQ(*f.client->Call("echo", "after", f.In(absl::Seconds(2))), "echo:after");
  // A deadline already passed fails at once.
  EXPECT_EQ(f.client->Call("echo", "", f.world.Now()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(RpcTest, PendingCallsAreBounded) {
  ClientOptions copt;
  copt.max_pending_calls = 3;
  Fixture f(1, 1 << 20, copt);
  std::vector<Responder> held;
  f.server->Register("hold",
                     [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  for (int i = 0; i < 3; ++i) f.client->CallAsync("hold", "", absl::InfiniteFuture());
  auto over = f.client->CallAsync("hold", "", absl::InfiniteFuture());
  ASSERT_TRUE(over.Ready());
  EXPECT_EQ(over.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Msg(over.Wait().status()), HasSubstr("max_pending_calls"));
}

TEST(RpcTest, NotifyBeforeHandshakeIsQueuedInOrderWithCalls) {
  Fixture f(3, 1);
  std::vector<std::string> seen;
  f.server->Register("log", [&](const Request& r, Responder resp) {
    EXPECT_TRUE(r.one_way);
    EXPECT_TRUE(resp.one_way());
    seen.push_back(std::string(r.payload));
  });
  f.server->Register("mark", [&](const Request& r, Responder resp) {
    seen.push_back("call:" + std::string(r.payload));
    ASSERT_TRUE(resp.Reply("").ok());
  });
  ASSERT_FALSE(f.client->ready());
  ASSERT_TRUE(f.client->Notify("log", "1").ok());
  auto fut = f.client->CallAsync("mark", "2", f.In(absl::Seconds(5)));
  ASSERT_TRUE(f.client->Notify("log", "3").ok());
  EXPECT_TRUE(fut.Wait().ok());
  f.world.Settle();
  EXPECT_THAT(seen, ElementsAre("1", "call:2", "3"));
  // Unknown one-way: dropped, the connection stays.
  ASSERT_TRUE(f.client->Notify("unknown", "").ok());
  EXPECT_EQ(*f.client->Call("echo", "ok", f.In(absl::Seconds(1))), "echo:ok");
}

TEST(RpcTest, CloseCancelsPendingCalls) {
  Fixture f;
  std::vector<Responder> held;
  f.server->Register("hold",
                     [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  auto fut = f.client->CallAsync("hold", "", absl::InfiniteFuture());
  f.world.Settle();
  f.client->Close();
  ASSERT_TRUE(fut.Ready());
  EXPECT_EQ(fut.Wait().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(f.client->Notify("x", "").code(), absl::StatusCode::kCancelled);
}

TEST(RpcTest, VersionMismatchClosesWithClearError) {
  ClientOptions copt;
  copt.min_version = 2;
  copt.max_version = 3;
  std::vector<CloseReason> disconnects;
  copt.on_disconnected = [&](const CloseReason& r) { disconnects.push_back(r); };
  std::vector<CloseReason> session_closes;
  ServerOptions sopt;
  sopt.on_session_closed = [&](Session&, const CloseReason& r) { session_closes.push_back(r); };
  Fixture f(1, 1 << 20, copt, sopt);
  auto r = f.client->Call("echo", "", f.In(absl::Seconds(5)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(r.status()),
              HasSubstr("protocol error: rpc handshake: no common version: the server supports "
                        "1..1, this client 2..3"));
  ASSERT_EQ(disconnects.size(), 1u);
  EXPECT_EQ(disconnects[0].kind(), CloseReason::Kind::kProtocolError);
  f.world.Settle();
  ASSERT_EQ(session_closes.size(), 1u);
  EXPECT_EQ(session_closes[0].kind(), CloseReason::Kind::kPeerClosed);
}

TEST(RpcTest, HandshakeChoosesTheHighestCommonVersion) {
  ClientOptions copt;
  copt.min_version = 2;
  copt.max_version = 5;
  ServerOptions sopt;
  sopt.min_version = 1;
  sopt.max_version = 3;
  Fixture f(1, 1 << 20, copt, sopt);
  ASSERT_TRUE(f.client->WaitReady(f.In(absl::Seconds(1))));
  EXPECT_EQ(f.client->version(), 3);
  f.world.Settle();
  EXPECT_TRUE(f.session->ready());
  EXPECT_EQ(f.session->version(), 3);
}

TEST(RpcTest, GarbageInsteadOfServerHelloClosesClient) {
  SimNet w;
  auto pair = w.NewPair();
  auto client = Client::Create(w.client_env(), pair.client);
  ASSERT_TRUE(pair.server->Write(smac::EncodeFrame("220 smtp.example.com ESMTP")).ok());
  auto r = client->Call("echo", "", w.Now() + absl::Seconds(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(r.status()), HasSubstr("expected a server hello starting with \"NLRP\""));
  // Unframed garbage: the 4 "length" bytes are over the limit.
  SimNet w2;
  auto pair2 = w2.NewPair();
  auto client2 = Client::Create(w2.client_env(), pair2.client);
  ASSERT_TRUE(pair2.server->Write("HTTP/1.1 200 OK\r\n\r\n").ok());
  auto r2 = client2->Call("echo", "", w2.Now() + absl::Seconds(5));
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(r2.status()), HasSubstr("exceeds the limit"));
}

TEST(RpcTest, HandshakeTimeout) {
  SimNet w;
  auto pair = w.NewPair();
  ClientOptions copt;
  copt.handshake_timeout = absl::Seconds(3);
  auto client = Client::Create(w.client_env(), pair.client, copt);
  auto r = client->Call("echo", "", w.Now() + absl::Seconds(10));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(r.status()), HasSubstr("timeout: rpc handshake: no server hello within 3s"));
}

// A hand-driven client: handshake, then whatever bytes the test wants.
struct RawClient : smac::MessageHandler {
  void MessageReceived(smac::MessageConnection&, std::string_view m) override {
    messages.emplace_back(m);
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& r) override {
    closes.push_back(r);
  }
  std::vector<std::string> messages;
  std::vector<CloseReason> closes;
};

TEST(RpcTest, MalformedMessageClosesOnlyThatSession) {
  std::vector<CloseReason> closes;
  ServerOptions sopt;
  sopt.on_session_closed = [&](Session&, const CloseReason& r) { closes.push_back(r); };
  Fixture f(1, 1 << 20, {}, sopt);
  auto pair = f.world.NewPair();
  f.server->Serve(pair.server);
  auto raw = smac::MessageConnection::Create(pair.client);
  auto rec = std::make_shared<RawClient>();
  raw->SetHandler(rec);
  ASSERT_TRUE(raw->Send(EncodeClientHello({"netlayer-rpc", 1})).ok());
  ASSERT_TRUE(raw->Send(std::string("\x09garbage", 8)).ok());
  f.world.Settle();
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].kind(), CloseReason::Kind::kProtocolError);
  EXPECT_THAT(closes[0].detail(),
              HasSubstr("rpc: malformed message from the client: rpc envelope: unknown kind 9"));
  ASSERT_EQ(rec->closes.size(), 1u);  // the raw peer sees the close
  EXPECT_EQ(f.server->Sessions().size(), 1u);
  // The well-behaved client keeps being served.
  EXPECT_EQ(*f.client->Call("echo", "still", f.In(absl::Seconds(1))), "echo:still");

  // Garbage instead of a client hello, too.
  auto pair3 = f.world.NewPair();
  f.server->Serve(pair3.server);
  ASSERT_TRUE(pair3.client->Write(smac::EncodeFrame("GET / HTTP/1.0")).ok());
  f.world.Settle();
  ASSERT_EQ(closes.size(), 2u);
  EXPECT_THAT(closes[1].detail(), HasSubstr("expected a client hello starting with \"NLRP\""));
  EXPECT_EQ(*f.client->Call("echo", "again", f.In(absl::Seconds(1))), "echo:again");
}

TEST(RpcTest, ReconnectingClientRedoesHandshakeAndWaitsWhileDisconnected) {
  SimNet w(11, 5);
  const Address addr = Address::HostName("server", 1);
  std::shared_ptr<Server> server = Server::Create(w.server_env());
  RegisterEcho(*server);
  std::vector<Responder> held;
  server->Register("hold",
                   [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  auto listener = *w.server_factory().Listen(
      addr, [&](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
  int connect_attempts = 0;
  w.world().trace().SetSink([&](const sim::TraceEvent& e) {
    if (e.kind == sim::TraceKind::kConnect && e.host == "client" &&
        e.detail.find(" try ") != std::string::npos) {
      ++connect_attempts;
    }
  });
  ConnectOptions copts;
  copts.min_delay = absl::Seconds(1);
  copts.max_delay = absl::Seconds(4);
  copts.delay_backoff = 2;
  int readies = 0;
  ClientOptions opt;
  opt.on_ready = [&](uint16_t) { ++readies; };
  auto client = Client::CreateReconnecting(w.client_env(), w.client_factory(), {addr}, copts, opt);
  ASSERT_TRUE(client.ok()) << client.status();
  auto c = *client;
  EXPECT_EQ(*c->Call("echo", "1", w.Now() + absl::Seconds(5)), "echo:1");
  EXPECT_EQ(readies, 1);

  // Reset mid-call: the call fails kUnavailable, the client reconnects and works again.
  auto fut = c->CallAsync("hold", "", absl::InfiniteFuture());
  w.Settle();
  ASSERT_EQ(server->Sessions().size(), 1u);
  // Break the connection from the server side (a graceful close).
  server->Sessions()[0]->Close();
  EXPECT_EQ(fut.Wait().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(fut.Wait().status()), HasSubstr("peer closed"));
  EXPECT_EQ(*c->Call("echo", "2", w.Now() + absl::Seconds(5)), "echo:2");
  EXPECT_EQ(readies, 2);

  // Server down: calls wait for a connection up to their deadline.
  listener->Close();
  server->Close();
  w.Settle();  // the client sees the close
  EXPECT_FALSE(c->ready());
  server = Server::Create(w.server_env());  // the restarted server
  RegisterEcho(*server);
  auto r = c->Call("echo", "3", w.Now() + absl::Seconds(3));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Msg(r.status()), HasSubstr("while waiting for a connection (last error: "));
  // A call made now succeeds once the server is back (the schedule retries within 4 s).
  auto later = c->CallAsync("echo", "4", w.Now() + absl::Seconds(30));
  w.Settle(absl::Seconds(1));
  EXPECT_FALSE(later.Ready());
  listener = *w.server_factory().Listen(
      addr, [&](std::shared_ptr<Connection> conn) { server->Serve(std::move(conn)); });
  EXPECT_EQ(*later.Wait(), "echo:4");
  EXPECT_EQ(readies, 3);
  EXPECT_GE(connect_attempts, 4);
}

TEST(RpcTest, ReconnectingClientGivesUpAfterMaxAttempts) {
  SimNet w;
  ConnectOptions copts;
  copts.max_attempts = 2;
  // The server host has no listener: every attempt is refused.
  auto c = *Client::CreateReconnecting(w.client_env(), w.client_factory(),
                                       {Address::HostName("server", 9)}, copts);
  auto r = c->Call("echo", "", w.Now() + absl::Seconds(60));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(r.status()), HasSubstr("gave up connecting"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("connection refused"));
  EXPECT_FALSE(Client::CreateReconnecting(w.client_env(), w.client_factory(), {}, copts).ok());
}

TEST(RpcTest, HeartbeatDetectsSilentDeadPeer) {
  ClientOptions copt;
  copt.heartbeat_interval = absl::Seconds(1);
  copt.heartbeat_timeout = absl::Seconds(3);
  std::vector<CloseReason> disconnects;
  copt.on_disconnected = [&](const CloseReason& r) { disconnects.push_back(r); };
  Fixture f(1, 1 << 20, copt);
  std::vector<Responder> held;
  f.server->Register("hold",
                     [&](const Request&, Responder resp) { held.push_back(std::move(resp)); });
  // Alive: heartbeats keep the connection up for a long time.
  EXPECT_EQ(*f.client->Call("echo", "", f.In(absl::Seconds(1))), "echo:");
  f.world.Settle(absl::Seconds(60));
  EXPECT_TRUE(f.client->ready());
  // Silent dead peer: nothing moves any more.
  auto fut = f.client->CallAsync("hold", "", absl::InfiniteFuture());
  f.world.Settle();
  f.world.Freeze(true);
  const absl::Time frozen = f.world.Now();
  EXPECT_EQ(fut.Wait().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LE(f.world.Now() - frozen, absl::Seconds(5));
  ASSERT_EQ(disconnects.size(), 1u);
  EXPECT_EQ(disconnects[0].kind(), CloseReason::Kind::kTimeout);
  EXPECT_THAT(disconnects[0].detail(), HasSubstr("rpc heartbeat: nothing received"));
}

TEST(RpcTest, ServerIdleTimeoutClosesSilentClientsOnly) {
  ServerOptions sopt;
  sopt.idle_timeout = absl::Seconds(5);
  std::vector<CloseReason> closes;
  sopt.on_session_closed = [&](Session&, const CloseReason& r) { closes.push_back(r); };
  ClientOptions beating;
  beating.heartbeat_interval = absl::Seconds(1);
  Fixture f(1, 1 << 20, beating, sopt);
  auto pair = f.world.NewPair();
  f.server->Serve(pair.server);
  auto quiet = Client::Create(f.world.client_env(), pair.client);
  ASSERT_TRUE(quiet->WaitReady(f.In(absl::Seconds(1))));
  ASSERT_TRUE(f.client->WaitReady(f.In(absl::Seconds(1))));
  f.world.Settle(absl::Seconds(20));
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].kind(), CloseReason::Kind::kTimeout);
  EXPECT_TRUE(f.client->ready());
  EXPECT_FALSE(quiet->ready());
}

}  // namespace
}  // namespace netlayer::rpc
