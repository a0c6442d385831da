// lock: a lock service written on rpc as a user would, under the seed's fault mix (server crash
// and restart, freezes, partitions, clogs, resets, skewed client clocks).
//
// Hosts: "server" (the lock service: crashable, freezable; its clock is not skewed, see below),
// "client1".."client3" (freezable, clocks with offset, drift and forward steps) and "storage"
// (a resource that only accepts writes carrying a fencing token).
//
// The correct service (the default): leases with fencing tokens.
//   - The server grants the lock for kLease on its own clock, with a token: larger than every
//     token it granted before, also across a restart of its (in-memory) process, because a token
//     is the server clock's reading at the grant in nanoseconds (at least the last token + 1),
//     and that clock never goes back. A holder renews by asking again (same token while its
//     lease runs); "release" frees it early.
//   - A restarted server remembers nothing, so it grants nothing until kLease after its start:
//     by then every lease its previous incarnation may have granted has expired.
//   - A client counts itself the holder only until its own conservative lease end: measured
//     from when it SENT the request (the grant can only be later), kLease shortened by the drift
//     two clocks may have between them (kMaxDriftPpm each way) and a margin. Clock steps only
//     move a client's clock forward: they end its belief earlier, never later.
//   - The storage host accepts a write only with a token at least the largest it accepted, so a
//     write from a holder whose lease ran out while the write was on its way is refused.
//   Why the server's clock is not skewed: the simulator's skew includes forward steps (NTP), and
//   a lease server whose clock jumps forward expires a lease early. Real lease servers time
//   leases on a monotonic clock; this one assumes it.
// The planted bug `lock-without-leases`: the server grants until the holder's connection
// closes (no lease, no wait after a restart); the client counts itself the holder until it
// sees its connection close. A holder whose server died and restarted, and who has not noticed
// yet (its heartbeat has not run out, its process is stopped, the FIN waits in a partition),
// still believes it holds the lock when the new server grants it to someone else.
//
// Safety, as each event happens:
//   - at no world instant do two clients believe they hold the lock (checked when a client starts
//     to believe: two belief intervals overlap iff one starts inside the other);
//   - the storage accepts writes in token order, and each token only from the client it was
//     granted to;
//   - a client whose server goes silent notices within the documented bound
//     (docs/OPERATIONS.md): while its connection is ready, nothing from the server for
//     heartbeat_timeout (on its clock: / (1 - drift) in world time, plus the time its host was
//     frozen meanwhile) means it has closed the connection; when it closes by heartbeat it is
//     no later than that.
// Liveness, after faults stop: every client gets the lock again and has a write accepted.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "builtin.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace netlayer::scenarios {
namespace {

using sim::HostId;
using sim::ScenarioContext;
using sim::TraceEvent;
using sim::TraceKind;

constexpr int kClients = 3;
constexpr uint16_t kLockPort = 7000;
constexpr uint16_t kStoragePort = 7001;
// The lease the server grants, on its clock.
constexpr absl::Duration kLease = absl::Seconds(2);
// What the client assumes of any clock's drift (the simulator's largest: 1000 ppm).
constexpr double kMaxDriftPpm = 1000;
// The client's belief: kLease * (1 - 2 drift) - a margin for clock rounding, from the send.
const absl::Duration kBelief = kLease * (1 - 2 * kMaxDriftPpm * 1e-6) - absl::Milliseconds(1);
constexpr absl::Duration kCallDeadline = absl::Seconds(1);
constexpr absl::Duration kHeartbeatInterval = absl::Milliseconds(500);
constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(2);
constexpr absl::Duration kIdleTimeout = absl::Seconds(3);
// World-time slack on the heartbeat bound: the host-time / world-time rounding (1 ns).
constexpr absl::Duration kBoundSlack = absl::Microseconds(1);

std::string S(std::string_view v) { return std::string(v); }

class Lock final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kLockWithoutLeases,
             "the lock server grants until the holder's connection closes (no lease, no wait "
             "after a restart); the client believes until it sees its connection close"}};
  }

  absl::Duration LivenessBound() const override { return absl::Seconds(30); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    leases_ = !ctx.planted(kLockWithoutLeases);
    server_host_ = *world_->AddHost("server");
    world_->SetCrashable(server_host_, true);
    world_->SetFreezable(server_host_, true);
    world_->SetRestartHook(server_host_, [this] { StartServer(); });
    StartServer();
    storage_host_ = *world_->AddHost("storage");
    world_->SetFreezable(storage_host_, true);
    StartStorage();
    for (int i = 0; i < kClients; ++i) {
      auto c = std::make_unique<ClientState>();
      c->name = absl::StrCat("client", i + 1);
      c->host = *world_->AddHost(c->name);
      world_->SetFreezable(c->host, true);
      world_->SetClockSkewable(c->host, true);
      clients_.push_back(std::move(c));
    }
    for (auto& c : clients_) StartClient(*c);
    ctx.ObserveTrace([this](const TraceEvent& e) { OnTrace(e); });
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    for (auto& c : clients_) {
      ClientState* client = c.get();
      const uint64_t grants = client->grants;
      const uint64_t writes = client->writes_accepted;
      ctx.Eventually(
          absl::StrCat(client->name, " gets the lock again and writes with it"),
          [client, grants, writes] {
            return client->grants > grants && client->writes_accepted > writes;
          },
          [client, grants, writes] {
            return absl::StrCat(client->grants - grants, " grants and ",
                                client->writes_accepted - writes,
                                " accepted writes since the heal; lock client: ",
                                client->lock->last_error().ToString());
          });
    }
  }

  void Finish(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      world_->Note(c->host, absl::StrCat(c->name, ": grants=", c->grants, " writes accepted=",
                                         c->writes_accepted, " refused=", c->writes_refused,
                                         " heartbeat closes=", c->heartbeat_closes));
    }
  }

  void TearDown(ScenarioContext&) override {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->lock) c->lock->Close();
      if (c->store) c->store->Close();
    }
    if (server_) server_->Close();
    if (storage_) storage_->Close();
  }

 private:
  // One rpc connection of a client, watched for the heartbeat bound.
  struct Link {
    explicit Link(std::string p) : peer(std::move(p)) {}
    std::string peer;  // the server's host name
    bool ready = false;
    absl::Time last_from_peer = absl::InfinitePast();  // world time of the last delivery from it
    absl::Duration frozen_at_last;                     // the client host's FrozenTime() then
  };
  struct ClientState {
    std::string name;
    HostId host;
    // The lock as this client sees it.
    bool holding = false;
    uint64_t token = 0;
    absl::Time belief_end;         // on the client's clock (leases only)
    uint64_t hold_generation = 0;  // one per hold
    uint64_t renew_epoch = 0;      // one per grant or renewal
    absl::Time hold_until;         // on the client's clock: when it releases
    bool acquiring = false;
    uint64_t next_write = 1;
    uint64_t grants = 0, writes_accepted = 0, writes_refused = 0, heartbeat_closes = 0;
    Link lock_link{"server"}, store_link{"storage"};
    // Last, so they are destroyed first: their callbacks use the members above.
    std::shared_ptr<rpc::Client> store;
    std::shared_ptr<rpc::Client> lock;
  };

  // ---- The lock server ----------------------------------------------------------------------

  void StartServer() {
    Env& env = world_->env(server_host_);
    rpc::ServerOptions options;
    options.idle_timeout = kIdleTimeout;
    options.on_session_closed = [this](rpc::Session& session, const CloseReason&) {
      // The lease-less design: a holder holds until its connection closes.
      if (!leases_ && holder_session_ == session.id()) holder_.clear();
    };
    server_ = rpc::Server::Create(env, options);
    holder_.clear();
    holder_session_ = 0;
    last_token_ = 0;
    // A restarted server grants nothing until every lease of its past life has run out.
    grant_from_ = leases_ ? env.Now() + kLease : env.Now();
    server_->Register("acquire", [this, &env](const rpc::Request& r, rpc::Responder responder) {
      const std::string who = S(r.payload);
      const absl::Time now = env.Now();
      const bool free = holder_.empty() || (leases_ && lease_until_ <= now);
      if (now < grant_from_ || (!free && holder_ != who)) {
        (void)responder.Reply("busy");
        return;
      }
      if (free) {
        holder_ = who;
        token_ = std::max(last_token_ + 1, static_cast<uint64_t>(absl::ToUnixNanos(now)));
        last_token_ = token_;
        auto [it, fresh] = issued_.emplace(token_, who);
        // A named copy: clang 14 cannot capture structured bindings.
        ctx_->Check(fresh && it->second == who, "each fencing token is granted once",
                    [&, &earlier = it->second] {
                      return absl::StrCat("token ", token_, " granted to ", who,
                                          " and earlier to ", earlier);
                    });
      }
      holder_session_ = r.session.id();
      lease_until_ = now + kLease;
      (void)responder.Reply(absl::StrCat("granted ", token_));
    });
    server_->Register("release", [this](const rpc::Request& r, rpc::Responder responder) {
      std::vector<std::string> parts = absl::StrSplit(S(r.payload), ' ');
      uint64_t token = 0;
      if (parts.size() == 2 && absl::SimpleAtoi(parts[1], &token) && parts[0] == holder_ &&
          token == token_) {
        holder_.clear();
      }
      (void)responder.Reply("ok");
    });
    auto listener = world_->server_factory(server_host_)
                        .Listen(Address::HostName("server", kLockPort),
                                [this](std::shared_ptr<Connection> c) { server_->Serve(c); });
    ctx_->Check(listener.ok(), "the lock server can listen after a (re)start",
                [&] { return listener.status().ToString(); });
    if (listener.ok()) listener_ = *listener;
  }

  // ---- The storage (the resource the lock protects) -----------------------------------------

  void StartStorage() {
    rpc::ServerOptions options;
    options.idle_timeout = kIdleTimeout;
    storage_ = rpc::Server::Create(world_->env(storage_host_), options);
    storage_->Register("write", [this](const rpc::Request& r, rpc::Responder responder) {
      std::vector<std::string> parts = absl::StrSplit(S(r.payload), ' ');
      uint64_t token = 0;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &token)) {
        (void)responder.Fail(absl::InvalidArgumentError("bad write"));
        return;
      }
      if (token < max_accepted_) {  // fencing: a stale holder's write
        (void)responder.Reply("stale");
        return;
      }
      // The scenario's view of what the resource accepted.
      ctx_->Check(accepted_.empty() || accepted_.back().first <= token,
                  "the storage accepts writes in token order",
                  [&] { return absl::StrCat("token ", token, " after ", accepted_.back().first); });
      auto it = issued_.find(token);
      ctx_->Check(it != issued_.end() && it->second == parts[0],
                  "a write is accepted only with a token granted to its writer", [&] {
                    return absl::StrCat(parts[0], " wrote with token ", token, " granted to ",
                                        it == issued_.end() ? std::string("nobody") : it->second);
                  });
      max_accepted_ = token;
      accepted_.emplace_back(token, parts[0]);
      if (accepted_.size() > 64) accepted_.erase(accepted_.begin());
      (void)responder.Reply("ok");
    });
    auto listener = world_->server_factory(storage_host_)
                        .Listen(Address::HostName("storage", kStoragePort),
                                [this](std::shared_ptr<Connection> c) { storage_->Serve(c); });
    ctx_->Check(listener.ok(), "the storage can listen",
                [&] { return listener.status().ToString(); });
    if (listener.ok()) storage_listener_ = *listener;
  }

  // ---- Clients ------------------------------------------------------------------------------

  // Whether `c` believes, right now, that it holds the lock.
  bool Believes(const ClientState& c) const {
    if (!c.holding) return false;
    return !leases_ || world_->HostNow(c.host) < c.belief_end;
  }

  rpc::ClientOptions LinkOptions(ClientState& c, Link& link) {
    rpc::ClientOptions options;
    options.heartbeat_interval = kHeartbeatInterval;
    options.heartbeat_timeout = kHeartbeatTimeout;
    options.handshake_timeout = absl::Seconds(2);
    options.on_ready = [this, &c, &link](uint16_t) {
      link.ready = true;
      link.last_from_peer = std::max(link.last_from_peer, world_->Now());
      link.frozen_at_last = world_->FrozenTime(c.host);
    };
    options.on_disconnected = [this, &c, &link](const CloseReason& reason) {
      if (link.ready && reason.kind() == CloseReason::Kind::kTimeout) {
        ++c.heartbeat_closes;
        CheckHeartbeatBound(c, link, "closed");
      }
      link.ready = false;
      // The lease-less design: the holder holds until it sees its connection close.
      if (&link == &c.lock_link && !leases_ && c.holding) Drop(c);
    };
    return options;
  }

  void StartClient(ClientState& c) {
    ConnectOptions connect;
    connect.min_delay = absl::Milliseconds(100);
    connect.max_delay = absl::Seconds(1);
    connect.delay_backoff = 2;
    connect.attempt_timeout = absl::Seconds(1);
    Env& env = world_->env(c.host);
    auto lock = rpc::Client::CreateReconnecting(env, world_->client_factory(c.host),
                                                {Address::HostName("server", kLockPort)}, connect,
                                                LinkOptions(c, c.lock_link));
    auto store = rpc::Client::CreateReconnecting(env, world_->client_factory(c.host),
                                                 {Address::HostName("storage", kStoragePort)},
                                                 connect, LinkOptions(c, c.store_link));
    ctx_->Check(lock.ok() && store.ok(), "the clients start", [&] {
      return absl::StrCat(lock.status().ToString(), " ", store.status().ToString());
    });
    if (!lock.ok() || !store.ok()) return;
    c.lock = *lock;
    c.store = *store;
    ScheduleAcquire(c);
  }

  absl::Duration Random(int64_t lo_ms, int64_t hi_ms) {
    return absl::Milliseconds(UniformInt(world_->generator(), lo_ms, hi_ms));
  }

  void ScheduleAcquire(ClientState& c) {
    Env& env = world_->env(c.host);
    env.RunAt(env.Now() + Random(20, 250), [this, &c] { Acquire(c); });
  }

  // Asks for the lock (or, as the holder, renews it).
  void Acquire(ClientState& c) {
    if (stopping_ || ctx_->failed() || c.acquiring) return;
    Env& env = world_->env(c.host);
    const absl::Time sent = env.Now();
    c.acquiring = true;
    c.lock->CallAsync("acquire", c.name, sent + kCallDeadline,
                      [this, &c, sent](rpc::CallResult r) { OnAcquireAnswer(c, sent, r); });
  }

  void OnAcquireAnswer(ClientState& c, absl::Time sent, const rpc::CallResult& r) {
    c.acquiring = false;
    if (stopping_ || ctx_->failed()) return;
    Env& env = world_->env(c.host);
    uint64_t token = 0;
    absl::string_view answer = r.ok() ? absl::string_view(r->data(), r->size()) : "";
    const bool granted =
        absl::ConsumePrefix(&answer, "granted ") && absl::SimpleAtoi(answer, &token);
    // A grant that arrives after the lease it could give ran out (on this client's clock)
    // gives nothing.
    const absl::Time end = sent + kBelief;
    if (!granted || (leases_ && env.Now() >= end)) {
      // Refused or failed: a holder keeps its belief until it ends by itself.
      if (!c.holding) ScheduleAcquire(c);
      return;
    }
    const bool renewal = Believes(c) && token == c.token;
    for (auto& other : clients_) {
      if (other.get() == &c || !Believes(*other)) continue;
      ctx_->Fail(
          "at most one client believes it holds the lock",
          absl::StrCat(c.name, " got token ", token, " (asked at its ", absl::FormatTime(sent),
                       ") while ", other->name, " still believes it holds token ", other->token,
                       leases_ ? absl::StrCat(" until its ", absl::FormatTime(other->belief_end))
                               : std::string(" (no lease)")));
      return;
    }
    if (!renewal) {
      // A new hold: writes until hold_until, then release.
      c.holding = true;
      c.token = token;
      ++c.grants;
      ++c.hold_generation;
      c.hold_until = env.Now() + Random(200, 1500);
      ScheduleWrite(c, c.hold_generation, absl::ZeroDuration());
    }
    c.belief_end = end;
    ScheduleRenewOrEnd(c);
  }

  // Renews halfway through the belief (leases; the lease-less client asks again too, which
  // changes nothing), releases at hold_until, and ends the belief at its end if no renewal came.
  void ScheduleRenewOrEnd(ClientState& c) {
    Env& env = world_->env(c.host);
    const uint64_t generation = c.hold_generation;
    const uint64_t epoch = ++c.renew_epoch;
    const absl::Time renew = std::min(env.Now() + kBelief / 2, c.hold_until);
    env.RunAt(renew, [this, &c, generation, epoch] {
      if (stopping_ || !c.holding || c.hold_generation != generation || c.renew_epoch != epoch) {
        return;
      }
      Env& env = world_->env(c.host);
      if (env.Now() >= c.hold_until) {
        Release(c);
      } else if (leases_ && env.Now() >= c.belief_end) {
        Drop(c);  // the lease ran out: no longer the holder
      } else {
        Acquire(c);
      }
    });
    if (leases_) {
      env.RunAt(c.belief_end, [this, &c, generation, epoch] {
        if (c.holding && c.hold_generation == generation && c.renew_epoch == epoch) Drop(c);
      });
    }
  }

  void Drop(ClientState& c) {
    c.holding = false;
    ++c.hold_generation;
    ScheduleAcquire(c);
  }

  void Release(ClientState& c) {
    const uint64_t token = c.token;
    Drop(c);  // not the holder from this moment, whatever the answer
    c.lock->CallAsync("release", absl::StrCat(c.name, " ", token),
                      world_->env(c.host).Now() + kCallDeadline, [](rpc::CallResult) {});
  }

  void ScheduleWrite(ClientState& c, uint64_t generation, absl::Duration after) {
    Env& env = world_->env(c.host);
    env.RunAt(env.Now() + after, [this, &c, generation] {
      if (stopping_ || ctx_->failed() || c.hold_generation != generation || !Believes(c)) return;
      Env& env = world_->env(c.host);
      c.store->CallAsync("write", absl::StrCat(c.name, " ", c.token, " ", c.next_write++),
                         env.Now() + kCallDeadline, [&c](rpc::CallResult r) {
                           if (r.ok() && *r == "ok") ++c.writes_accepted;
                           if (r.ok() && *r == "stale") ++c.writes_refused;
                         });
      ScheduleWrite(c, generation, Random(50, 200));
    });
  }

  // ---- The heartbeat bound ------------------------------------------------------------------

  absl::Duration Bound(const ClientState& c, const Link& link) const {
    // heartbeat_timeout on the client's clock is at most this much world time...
    const absl::Duration world_timeout = kHeartbeatTimeout / (1 - kMaxDriftPpm * 1e-6);
    // ...plus the time its process did not run meanwhile.
    return world_timeout + (world_->FrozenTime(c.host) - link.frozen_at_last) + kBoundSlack;
  }

  void CheckHeartbeatBound(ClientState& c, Link& link, const char* how) {
    const absl::Duration silent = world_->Now() - link.last_from_peer;
    ctx_->Check(silent <= Bound(c, link),
                "a client notices a silent server within heartbeat_timeout", [&] {
                  return absl::StrCat(c.name, " ", how, " its connection to ", link.peer, " after ",
                                      absl::FormatDuration(silent), " of silence (bound ",
                                      absl::FormatDuration(Bound(c, link)), ")");
                });
  }

  void OnTrace(const TraceEvent& e) {
    for (auto& c : clients_) {
      for (Link* link : {&c->lock_link, &c->store_link}) {
        if (e.kind == TraceKind::kDeliver && e.host == c->name && e.peer == link->peer) {
          link->last_from_peer = world_->Now();
          link->frozen_at_last = world_->FrozenTime(c->host);
        } else if (link->ready && world_->Now() - link->last_from_peer > Bound(*c, *link)) {
          CheckHeartbeatBound(*c, *link, "has not closed");
        }
      }
    }
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  bool leases_ = true;
  HostId server_host_, storage_host_;
  // The lock server's state (lost in a crash).
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::string holder_;
  uint64_t holder_session_ = 0;
  uint64_t token_ = 0, last_token_ = 0;
  absl::Time lease_until_, grant_from_;
  // The storage's state.
  std::shared_ptr<rpc::Server> storage_;
  std::shared_ptr<Listener> storage_listener_;
  uint64_t max_accepted_ = 0;
  std::vector<std::pair<uint64_t, std::string>> accepted_;  // the last accepted (token, writer)
  // The scenario's record: every token ever granted, to whom.
  std::map<uint64_t, std::string> issued_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeLock() { return std::make_unique<Lock>(); }

}  // namespace netlayer::scenarios
