// hostile-peers: an rpc server with its protections (docs/OPERATIONS.md) under the seed's fault
// mix, a well-behaved reconnecting client calling it, and two hosts that keep opening connections
// that misbehave in one of the hostile ways (drawn from the seed): garbage before the hello, a
// 64 MiB header, a slow drip, silence before or after the hello, a truncated frame, a malformed
// envelope, a flood of calls past max_inflight_calls, a peer that never reads its replies, a
// large partial frame (1..6 MiB announced, most of it sent, then silence).
//
// Safety, checked as events happen:
//   - the server never holds more than max_sessions sessions (the rest are refused at once);
//   - a connection that has not completed its handshake is gone by the handshake deadline (a
//     drip cannot extend it): checked every 100 ms against each session's start;
//   - the server-wide memory budget (memory_budget_bytes, 8 MiB here, so that a few large
//     partial frames spend it) holds: the bytes charged for partial frames (ServerStats'
//     frame_buffer_bytes, and its peak) never pass it, checked every 100 ms and whenever a
//     session ends; a frame past it closes only its own session;
//   - every call of the good client completes at most once, with its own reply or with
//     kUnavailable / kDeadlineExceeded, never after its deadline (hostile peers never make it
//     fail otherwise, e.g. never kResourceExhausted: the bounds are per session).
// Liveness, after faults stop (the hostile hosts stop opening connections): the server is rid of
// every hostile connection by itself (handshake deadline, idle timeout, output bound), every byte
// charged to the budget is released, and the good client completes new calls.
// Plant "protections-off" runs the server without its protections: the invariants catch it.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "builtin.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/server.h"
#include "netlayer/smac/frame.h"

namespace netlayer::scenarios {
namespace {

using sim::HostId;
using sim::ScenarioContext;

constexpr uint16_t kPort = 8200;
constexpr size_t kMaxSessions = 12;
constexpr int kOpenPerHostileHost = 10;  // two hosts: more than max_sessions at times
const absl::Duration kHandshakeTimeout = absl::Seconds(2);
const absl::Duration kIdleTimeout = absl::Seconds(4);
constexpr size_t kMemoryBudget = size_t{8} << 20;

enum class Behaviour {
  kGarbage,
  kBigHeader,
  kDrip,
  kSilent,
  kSilentAfterHello,
  kTruncated,
  kMalformed,
  kFloodCalls,
  kNeverReads,
  kLargePartialFrame,
  kCount,
};

std::string Frame(std::string_view payload) { return smac::EncodeFrame(payload); }
std::string Hello() { return Frame(rpc::EncodeClientHello({"netlayer-rpc", 1})); }
std::string Call(uint64_t id, std::string_view method) {
  rpc::Envelope e;
  e.kind = rpc::MessageKind::kCall;
  e.id = id;
  e.method = method;
  return Frame(rpc::EncodeEnvelope(rpc::BinaryCodec(), e));
}

// A hostile connection: whatever arrives is dropped; its close is recorded.
struct HostilePeer : ConnectionHandler {
  void InputData(Connection&, std::string_view) override {}
  void ConnectionClosed(Connection&, const CloseReason&) override { closed = true; }
  bool closed = false;
};

class HostilePeers final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kProtectionsOff,
             "the server runs without its protections (handshake deadline, idle timeout, "
             "max_sessions, hello and in-flight bounds)"},
            {kCloseAfterLocalClose,
             "core's ConnectionState reports a peer's close that arrives after a local Close() "
             "(promise 4)"}};
  }

  absl::Duration LivenessBound() const override { return absl::Seconds(25); }

  // Planted in core's connection path (every connection of the world): the world's promise
  // checker must catch it. The server closes misbehaving connections itself, and their peers'
  // end of stream or reset arrives afterwards.
  void ConfigureWorld(const sim::ScenarioOptions& options, sim::WorldOptions& world) override {
    world.connection_limits.planted_close_after_local_close =
        options.planted_bug == kCloseAfterLocalClose;
  }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    server_host_ = *world_->AddHost("server");
    // Every host may stop for a while and has its own clock (offset, drift, steps).
    world_->SetFreezable(server_host_, true);
    world_->SetClockSkewable(server_host_, true);
    StartServer();
    client_host_ = *world_->AddHost("client");
    world_->SetFreezable(client_host_, true);
    world_->SetClockSkewable(client_host_, true);
    StartClient();
    for (int i = 0; i < 2; ++i) {
      Hostile h;
      h.host = *world_->AddHost(absl::StrCat("hostile", i + 1));
      world_->SetFreezable(h.host, true);
      world_->SetClockSkewable(h.host, true);
      hostiles_.push_back(std::move(h));
    }
    for (size_t i = 0; i < hostiles_.size(); ++i) ScheduleHostile(i);
    ScheduleDeadlineCheck();
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    hostile_active_ = false;
    ok_at_heal_ = ok_;
    ctx.Eventually(
        "the server closes every hostile connection by itself",
        [this] { return HostileSessions() == 0; },
        [this] { return absl::StrCat(HostileSessions(), " hostile sessions still open"); });
    ctx.Eventually(
        "every byte charged to the memory budget is released",
        [this] { return server_->stats().frame_buffer_bytes == 0; },
        [this] {
          return absl::StrCat(server_->stats().frame_buffer_bytes,
                              " bytes still charged for partial frames");
        });
    ctx.Eventually(
        "the good client completes new calls", [this] { return ok_ >= ok_at_heal_ + 5; },
        [this] {
          return absl::StrCat(ok_ - ok_at_heal_, " of 5 calls succeeded; last error ",
                              client_->last_error().ToString());
        });
  }

  void Finish(ScenarioContext& ctx) override {
    stopping_ = true;
    world_->RunUntil([&] { return ctx.failed() || outstanding_.empty(); },
                     world_->Now() + absl::Seconds(10));
    ctx.Check(outstanding_.empty(), "every call completes",
              [&] { return absl::StrCat(outstanding_.size(), " calls never completed"); });
    const rpc::ServerStats st = server_->stats();
    world_->Note(server_host_,
                 absl::StrCat("hostile connections ", hostile_opened_, ", refused ",
                              server_->refused_connections(), ", good calls ok ", ok_, " failed ",
                              failed_, ", partial-frame bytes at most ", st.peak_frame_buffer_bytes,
                              " of ", st.memory_budget_bytes, ", budget refusals ",
                              st.budget_refusals, budget_refused_ ? "" : " (none)"));
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    hostile_active_ = false;
    if (client_) client_->Close();
    for (auto& h : hostiles_) {
      for (auto& c : h.open) c->Close();
    }
    if (server_) server_->Close();
  }

 private:
  struct Hostile {
    HostId host;
    std::vector<std::shared_ptr<Connection>> open;
  };
  struct Served {
    std::weak_ptr<rpc::Session> session;
    absl::Time start;          // world time
    absl::Duration frozen_at;  // the server's frozen time then
  };

  void StartServer() {
    rpc::ServerOptions options;
    options.handshake_timeout = kHandshakeTimeout;
    options.idle_timeout = kIdleTimeout;
    options.max_sessions = kMaxSessions;
    options.max_inflight_calls = 16;
    options.memory_budget_bytes = kMemoryBudget;
    options.on_session_closed = [this](rpc::Session&, const CloseReason&) { CheckBudget(); };
    if (ctx_->planted(kProtectionsOff)) {
      options.handshake_timeout = absl::Hours(1);
      options.idle_timeout = absl::ZeroDuration();
      options.max_sessions = 0;
      options.max_hello_size = 0;
      options.max_inflight_calls = 0;
    }
    Env& env = world_->env(server_host_);
    server_ = rpc::Server::Create(env, options);
    server_->Register("echo", [](const rpc::Request& r, rpc::Responder responder) {
      (void)responder.Reply(r.payload);
    });
    // Answered 500 ms later: a flood of these fills max_inflight_calls.
    server_->Register("slow", [&env](const rpc::Request&, rpc::Responder responder) {
      env.RunAt(env.Now() + absl::Milliseconds(500),
                [r = std::move(responder)]() mutable { (void)r.Reply(std::string(1000, 's')); });
    });
    server_->Register("big", [](const rpc::Request&, rpc::Responder responder) {
      (void)responder.Reply(std::string(64 << 10, 'b'));
    });
    auto listener = world_->server_factory(server_host_)
                        .Listen(Address::HostName("server", kPort),
                                [this](std::shared_ptr<Connection> c) { OnAccept(std::move(c)); });
    ctx_->Check(listener.ok(), "the server listens", [&] { return listener.status().ToString(); });
    if (listener.ok()) listener_ = *listener;
  }

  void OnAccept(std::shared_ptr<Connection> c) {
    std::shared_ptr<rpc::Session> session = server_->Serve(std::move(c));
    const size_t open = server_->Sessions().size();
    ctx_->Check(open <= kMaxSessions, "the server never holds more than max_sessions sessions",
                [&] { return absl::StrCat(open, " sessions open, max_sessions ", kMaxSessions); });
    if (session) {
      served_.push_back(Served{session, world_->Now(), world_->FrozenTime(server_host_)});
    }
  }

  // The budget as an invariant, from the server's own byte accounting (not from memory use).
  void CheckBudget() {
    if (server_ == nullptr || ctx_->planted(kProtectionsOff)) return;
    const rpc::ServerStats st = server_->stats();
    ctx_->Check(st.memory_budget_bytes == kMemoryBudget &&
                    st.frame_buffer_bytes <= st.memory_budget_bytes &&
                    st.peak_frame_buffer_bytes <= st.memory_budget_bytes,
                "the bytes held for partial frames never pass the server's memory budget", [&] {
                  return absl::StrCat(st.frame_buffer_bytes, " bytes charged now, ",
                                      st.peak_frame_buffer_bytes, " at most, budget ",
                                      st.memory_budget_bytes);
                });
    if (st.budget_refusals > 0) budget_refused_ = true;
  }

  // Every 100 ms: no session is still handshaking past its deadline; the memory budget holds.
  void ScheduleDeadlineCheck() {
    Env& env = world_->env(server_host_);
    env.RunAt(env.Now() + absl::Milliseconds(100), [this] {
      if (stopping_ || ctx_->failed()) return;
      CheckBudget();
      std::erase_if(served_, [](const Served& s) { return s.session.expired(); });
      for (const Served& s : served_) {
        auto session = s.session.lock();
        if (!session || !session->IsOpen() || session->ready()) continue;
        // The time the server ran since the connection came (world time less its freezes); its
        // timer runs on its own clock, which may drift up to 1000 ppm slow (clock steps only
        // make it fire earlier).
        const absl::Duration age =
            world_->Now() - s.start - (world_->FrozenTime(server_host_) - s.frozen_at);
        ctx_->Check(age <= kHandshakeTimeout + kHandshakeTimeout / 1000 + absl::Milliseconds(1),
                    "a connection without a handshake is closed at the handshake deadline", [&] {
                      return absl::StrCat("session ", session->id(), " from ",
                                          session->peer_address().ToString(), " still open ",
                                          absl::FormatDuration(age), " after it started");
                    });
      }
      ScheduleDeadlineCheck();
    });
  }

  size_t HostileSessions() const {
    size_t n = 0;
    for (const auto& s : server_->Sessions()) {
      if (absl::StartsWith(s->peer_address().host(), "hostile")) ++n;
    }
    return n;
  }

  void StartClient() {
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Seconds(1);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(1);
    rpc::ClientOptions options;
    options.heartbeat_interval = absl::Seconds(1);
    options.heartbeat_timeout = absl::Seconds(3);
    auto client = rpc::Client::CreateReconnecting(
        world_->env(client_host_), world_->client_factory(client_host_),
        {Address::HostName("server", kPort)}, connect, options);
    ctx_->Check(client.ok(), "the client starts", [&] { return client.status().ToString(); });
    if (!client.ok()) return;
    client_ = *client;
    for (int i = 0; i < 2; ++i) IssueCall();
  }

  void IssueCall() {
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(client_host_);
    const uint64_t number = next_call_++;
    const std::string payload = absl::StrCat("call#", number);
    const absl::Time deadline = env.Now() + absl::Seconds(3);
    outstanding_.emplace(number, Outstanding{deadline, world_->FrozenTime(client_host_),
                                             world_->ClockStepped(client_host_)});
    client_->CallAsync("echo", payload, deadline,
                       [this, number, payload](rpc::CallResult r) { OnDone(number, payload, r); });
  }

  void OnDone(uint64_t number, const std::string& payload, const rpc::CallResult& r) {
    auto it = outstanding_.find(number);
    ctx_->Check(it != outstanding_.end(), "every call completes at most once",
                [&] { return absl::StrCat("call #", number, " completed again"); });
    if (it == outstanding_.end()) return;
    // On the client's own clock, where its deadline is: its timer fires at most kHostTimerSlack
    // past it (a drifting clock may skip the exact nanosecond), and a freeze or clock step of the
    // client meanwhile may make it late by as much.
    const absl::Time deadline = it->second.deadline;
    const absl::Duration allowed = sim::kHostTimerSlack +
                                   (world_->FrozenTime(client_host_) - it->second.frozen_at) +
                                   (world_->ClockStepped(client_host_) - it->second.stepped_at);
    outstanding_.erase(it);
    const absl::Time now = world_->HostNow(client_host_);
    ctx_->Check(now <= deadline + allowed, "a call never outlives its deadline", [&] {
      return absl::StrCat("call #", number, " completed ", absl::FormatDuration(now - deadline),
                          " after its deadline (", absl::FormatDuration(allowed), " allowed)");
    });
    if (r.ok()) {
      ctx_->Check(*r == payload, "each reply goes to its own call",
                  [&] { return absl::StrCat("call #", number, " got '", *r, "'"); });
      ++ok_;
    } else {
      const absl::StatusCode code = r.status().code();
      ctx_->Check(code == absl::StatusCode::kUnavailable ||
                      code == absl::StatusCode::kDeadlineExceeded ||
                      (stopping_ && code == absl::StatusCode::kCancelled),
                  "hostile peers never make a good call fail other than by a lost connection",
                  [&] { return absl::StrCat("call #", number, ": ", r.status().ToString()); });
      ++failed_;
    }
    Env& env = world_->env(client_host_);
    env.RunAt(env.Now() + absl::Milliseconds(UniformInt(world_->generator(), 1, 50)),
              [this] { IssueCall(); });
  }

  // Each hostile host opens a connection every Exponential(300 ms), keeping at most
  // kOpenPerHostileHost open, while the fault phase lasts.
  void ScheduleHostile(size_t index) {
    Env& env = world_->env(hostiles_[index].host);
    const auto wait =
        absl::Microseconds(static_cast<int64_t>(Exponential(world_->generator(), 300'000)));
    env.RunAt(env.Now() + wait, [this, index] {
      if (!hostile_active_ || ctx_->failed()) return;
      Hostile& h = hostiles_[index];
      std::erase_if(h.open, [](const std::shared_ptr<Connection>& c) { return !c->IsOpen(); });
      if (h.open.size() < static_cast<size_t>(kOpenPerHostileHost)) OpenHostile(h);
      ScheduleHostile(index);
    });
  }

  void OpenHostile(Hostile& h) {
    const auto behaviour = static_cast<Behaviour>(
        UniformInt(world_->generator(), 0, static_cast<int>(Behaviour::kCount) - 1));
    auto attempt = world_->client_factory(h.host).Connect(
        {Address::HostName("server", kPort)}, OneAttempt(),
        std::make_shared<OnConnected>([this, &h, behaviour](std::shared_ptr<Connection> c) {
          ++hostile_opened_;
          Misbehave(h, std::move(c), behaviour);
        }));
    (void)attempt;
  }

  static ConnectOptions OneAttempt() {
    ConnectOptions o;
    o.max_attempts = 1;
    o.attempt_timeout = absl::Seconds(1);
    return o;
  }

  class OnConnected final : public ConnectHandler {
   public:
    explicit OnConnected(std::function<void(std::shared_ptr<Connection>)> f) : f_(std::move(f)) {}
    void Connected(std::shared_ptr<Connection> c) override { f_(std::move(c)); }
    void FailedConnection(const absl::Status&) override {}

   private:
    std::function<void(std::shared_ptr<Connection>)> f_;
  };

  void Misbehave(Hostile& h, std::shared_ptr<Connection> c, Behaviour behaviour) {
    if (!hostile_active_) {
      c->Close();
      return;
    }
    auto peer = std::make_shared<HostilePeer>();
    c->SetHandler(peer);
    h.open.push_back(c);
    Env& env = world_->env(h.host);
    switch (behaviour) {
      case Behaviour::kGarbage:
        (void)c->Write("GET / HTTP/1.1\r\n\r\n");
        break;
      case Behaviour::kBigHeader:
        (void)c->Write(std::string("\x04\0\0\0", 4) + std::string(4096, 'x'));  // 64 MiB
        break;
      case Behaviour::kDrip: {
        // A 100-byte "hello", one byte every 100 ms: it would take 10 s.
        const auto header = smac::EncodeHeader(100);
        (void)c->Write(std::string_view(header.data(), header.size()));
        Drip(env, c, 100);
        break;
      }
      case Behaviour::kSilent:
        break;
      case Behaviour::kSilentAfterHello:
        (void)c->Write(Hello());
        break;
      case Behaviour::kTruncated:
        (void)c->Write(Hello() + std::string("\0\0\0\x40trunc", 9));
        c->Close();
        break;
      case Behaviour::kMalformed:
        (void)c->Write(Hello() + Frame(std::string("\x09garbage", 8)));
        break;
      case Behaviour::kFloodCalls: {
        std::string calls = Hello();
        for (uint64_t id = 1; id <= 40; ++id) calls += Call(id, "slow");
        (void)c->Write(calls);
        break;
      }
      case Behaviour::kNeverReads: {
        std::string calls = Hello();
        for (uint64_t id = 1; id <= 12; ++id) calls += Call(id, "big");
        (void)c->Write(calls);
        c->SetHandler(nullptr);  // reads nothing from now on
        break;
      }
      case Behaviour::kLargePartialFrame: {
        // A frame of 1..6 MiB announced after the hello, 50..99% of it sent, then nothing: its
        // buffer grows with the bytes (and is charged to the budget) until the idle timeout, or
        // the budget refuses it.
        const size_t size = static_cast<size_t>(UniformInt(world_->generator(), 1 << 20, 6 << 20));
        const size_t sent =
            size / 100 * static_cast<size_t>(UniformInt(world_->generator(), 50, 99));
        const auto header = smac::EncodeHeader(size);
        (void)c->Write(Hello() + std::string(header.data(), header.size()) +
                       std::string(sent, 'L'));
        break;
      }
      case Behaviour::kCount:
        break;
    }
  }

  void Drip(Env& env, std::shared_ptr<Connection> c, int left) {
    if (left == 0) return;
    std::weak_ptr<Connection> weak = c;
    env.RunAt(env.Now() + absl::Milliseconds(100), [this, &env, weak, left] {
      auto conn = weak.lock();
      if (!conn || !conn->IsOpen() || stopping_) return;
      (void)conn->Write("d");
      Drip(env, conn, left - 1);
    });
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  HostId server_host_;
  HostId client_host_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::vector<Served> served_;
  std::vector<Hostile> hostiles_;
  bool hostile_active_ = true;
  bool stopping_ = false;
  uint64_t hostile_opened_ = 0;
  bool budget_refused_ = false;  // the budget refused a frame or a reply at least once
  struct Outstanding {
    absl::Time deadline;  // on the client's clock
    absl::Duration frozen_at, stepped_at;
  };
  std::map<uint64_t, Outstanding> outstanding_;  // by call number
  uint64_t next_call_ = 1;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  uint64_t ok_at_heal_ = 0;
  // Last, so it is destroyed first: its callbacks use the members above.
  std::shared_ptr<rpc::Client> client_;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeHostilePeers() { return std::make_unique<HostilePeers>(); }

}  // namespace netlayer::scenarios
