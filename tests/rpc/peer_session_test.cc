// PeerSession driven directly: no I/O, no thread, no Env. Each case is a table of inputs (a
// message or a timer at a time in seconds) and the Step each must produce, written as a string.
#include "netlayer/rpc/peer_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"

namespace netlayer::rpc {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

std::string Ping(uint64_t id) {
  return EncodeEnvelope(BinaryCodec(), Envelope{MessageKind::kPing, id, {}, {}, {}});
}
std::string Pong(uint64_t id) {
  return EncodeEnvelope(BinaryCodec(), Envelope{MessageKind::kPong, id, {}, {}, {}});
}
std::string Call(uint64_t id) {
  return EncodeEnvelope(BinaryCodec(), Envelope{MessageKind::kCall, id, "m", {}, "p"});
}
std::string Reply(uint64_t id) {
  return EncodeEnvelope(BinaryCodec(), Envelope{MessageKind::kReply, id, {}, {}, "r"});
}

// The Step as text: "send=<names> ready=<v> message=<kind>#<id> close=<kind>: <detail>", only
// the parts present; "-" for an empty Step.
std::string Describe(const PeerSession::Step& step) {
  std::vector<std::string> parts;
  if (!step.send.empty()) {
    std::vector<std::string> names;
    for (const std::string& m : step.send) {
      if (m.rfind(kHandshakeMagic, 0) == 0) {
        names.push_back(m[4] == 1 ? "server-hello" : "client-hello");
        continue;
      }
      auto e = BinaryCodec().Decode(m);
      names.push_back(e.ok() ? absl::StrCat(KindName(e->kind), "#", e->id) : "?");
    }
    parts.push_back(absl::StrCat("send=", absl::StrJoin(names, ",")));
  }
  if (step.ready) parts.push_back(absl::StrCat("ready=", *step.ready));
  if (step.message) {
    parts.push_back(absl::StrCat("message=", KindName(step.message->kind), "#", step.message->id));
  }
  if (step.close) parts.push_back(absl::StrCat("close=", step.close->ToString()));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

struct Input {
  double at_seconds;            // since kT0
  std::string message;          // empty: a timer (OnTimer with ping id 42)
  std::string expect;           // Describe(step), or a prefix of it ending in "..."
  std::string next_timer = "";  // if set: seconds of NextTimer() after it, or "never"
};

struct Case {
  std::string name;
  PeerSession::Options options;
  std::string start;  // Describe(Start(kT0))
  std::vector<Input> inputs;
};

PeerSession::Options Client(absl::Duration ping = absl::ZeroDuration(),
                            absl::Duration silence = absl::ZeroDuration()) {
  PeerSession::Options o;
  o.role = PeerSession::Role::kClient;
  o.min_version = 1;
  o.max_version = 3;
  o.handshake_timeout = absl::Seconds(5);
  o.ping_interval = ping;
  o.silence_limit = silence;
  return o;
}

PeerSession::Options Server(absl::Duration idle = absl::ZeroDuration()) {
  PeerSession::Options o;
  o.role = PeerSession::Role::kServer;
  o.min_version = 2;
  o.max_version = 2;
  o.handshake_timeout = absl::Seconds(5);
  o.silence_limit = idle;
  return o;
}

const std::string kServerHello = EncodeServerHello({"netlayer-rpc", 2, 4});
const std::string kClientHello = EncodeClientHello({"netlayer-rpc", 2});

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"ClientHandshakeChoosesTheHighestCommonVersion",
       Client(),
       "-",
       {{1, kServerHello, "send=client-hello ready=3", "never"},
        {2, Reply(7), "message=reply#7"},
        {3, Ping(9), "send=pong#9"},
        {4, Pong(9), "-"},
        {5, Call(3), "send=error reply#3"}}},  // the client serves no calls
      {"ClientClosesOnNoCommonVersion",
       [] {
         auto o = Client();
         o.max_version = 1;
         return o;
       }(),
       "-",
       {{1, kServerHello,
         "close=protocol error: rpc handshake: no common version: the server supports 2..4, this "
         "client 1..1"},
        {2, Reply(1), "-"}}},  // closed: nothing more happens
      {"ClientHandshakeDeadline",
       Client(),
       "-",
       {{4, "", "-", "5"},
        {5, "", "close=timeout: rpc handshake: no server hello within 5s", "never"}}},
      {"HeartbeatPingsAndClosesASilentServer",
       Client(absl::Seconds(1), absl::Seconds(3)),
       "-",
       {{0, kServerHello, "send=client-hello ready=3", "1"},
        {1, "", "send=ping#42", "2"},
        {1.5, Pong(42), "-", "2"},
        {2, "", "send=ping#42", "3"},
        {3, "", "send=ping#42", "4"},
        // The silence limit runs out at 1.5 + 3, before the next ping: the check is armed then.
        {4, "", "send=ping#42", "4.5"},
        {4.5, "",
         "close=timeout: rpc heartbeat: nothing received from the server for 3s (limit 3s)",
         "never"}}},
      {"HeartbeatClosesExactlyAtTheSilenceLimitBetweenPings",
       Client(absl::Seconds(10), absl::Seconds(3)),
       "-",
       {{0, kServerHello, "send=client-hello ready=3", "3"},
        {2, Reply(7), "message=reply#7", "3"},  // a message moves no timer...
        {3, "", "-", "5"},                      // ...the check finds it and re-arms for 2 + 3
        {5, "", "close=timeout: rpc heartbeat: nothing received from the server for 3s (limit 3s)",
         "never"}}},
      {"ServerSpeaksFirstAndChecksTheClientHello",
       Server(),
       "send=server-hello",
       {{1, kClientHello, "ready=2", "never"},
        {2, Call(1), "message=call#1"},
        {3, Ping(5), "send=pong#5"},
        {4, Reply(1),
         "close=protocol error: rpc: the client sent a reply (id 1) but the server makes no "
         "calls"}}},
      {"ServerRejectsAWrongVersionAndGarbage",
       Server(),
       "send=server-hello",
       {{1, EncodeClientHello({"netlayer-rpc", 3}),
         "close=protocol error: rpc handshake: the client chose version 3, this server supports "
         "2..2"}}},
      {"ServerClosesOnAMalformedEnvelope",
       Server(),
       "send=server-hello",
       {{1, kClientHello, "ready=2"},
        {2, std::string("\x09x", 2),
         "close=protocol error: rpc: malformed message from the client: rpc envelope: unknown "
         "kind 9 (first bytes \"\\tx\")"}}},
      {"ServerIdleTimeoutChecksLazily",
       Server(absl::Seconds(10)),
       "send=server-hello",
       {{1, kClientHello, "ready=2", "11"},
        {4, Call(1), "message=call#1", "11"},  // a message moves no timer
        {11, "", "-", "14"},                   // not silent long enough: check again at 4 + 10
        {14, "", "close=timeout: rpc: nothing received from the client for 10s (idle_timeout 10s)",
         "never"}}},
  };
  return cases;
}

std::string Seconds(absl::Time t) {
  if (t == absl::InfiniteFuture()) return "never";
  return absl::StrCat(absl::ToDoubleSeconds(t - kT0));
}

class PeerSessionTest : public ::testing::TestWithParam<Case> {};

TEST_P(PeerSessionTest, Steps) {
  const Case& c = GetParam();
  PeerSession peer(c.options);
  EXPECT_EQ(Describe(peer.Start(kT0)), c.start);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Input& in = c.inputs[i];
    const absl::Time now = kT0 + absl::Seconds(in.at_seconds);
    const PeerSession::Step step =
        in.message.empty() ? peer.OnTimer(now, 42) : peer.OnMessage(now, in.message);
    EXPECT_EQ(Describe(step), in.expect) << "input " << i;
    if (!in.next_timer.empty()) {
      EXPECT_EQ(Seconds(peer.NextTimer()), in.next_timer) << "input " << i;
    }
    if (step.close) {
      EXPECT_EQ(peer.phase(), PeerSession::Phase::kClosed);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, PeerSessionTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace netlayer::rpc
