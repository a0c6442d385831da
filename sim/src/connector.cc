#include "connector.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "listener.h"
#include "netlayer/core/assert.h"
#include "network.h"
#include "sim_connection.h"
#include "world_parts.h"

namespace netlayer::sim {

absl::Status Connector::CheckTarget(const Address& a, HostId* target) const {
  if (a.kind() != Address::Kind::kHostName) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: cannot connect to '", a.ToString(),
                     "': the simulator takes host-name addresses such as 'server:8100'"));
  }
  for (uint32_t i = 0; i < w_.hosts.size(); ++i) {
    if (w_.hosts[i].name == a.host()) {
      if (target != nullptr) *target = HostId{i};
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sim: cannot connect to '", a.ToString(), "': unknown host '", a.host(), "'"));
}

absl::StatusOr<std::shared_ptr<PendingConnect>> Connector::StartConnect(
    HostId from, std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler, bool blocking) {
  if (w_.loop.destroying) {
    return absl::FailedPreconditionError("sim: connect while the world is ending");
  }
  if (handler == nullptr) return absl::InvalidArgumentError("sim: connect needs a handler");
  for (const Address& a : addresses) {
    if (absl::Status s = CheckTarget(a, nullptr); !s.ok()) return s;
  }
  absl::StatusOr<ConnectSchedule> schedule =
      ConnectSchedule::Create(addresses, options, &w_.generator);
  if (!schedule.ok()) return schedule.status();
  Host& h = w_.host(from);
  if (h.Admits(HostWork::kStart) == Admission::kNever) {
    return absl::FailedPreconditionError(absl::StrCat("sim: host '", h.name, "' is down"));
  }
  const uint64_t id = next_connect_id++;
  auto pc = std::make_shared<PendingConnect>(w_.ref, id, from, *std::move(schedule),
                                             std::move(handler), blocking);
  connects.emplace(id, pc);
  std::vector<std::string> names;
  for (const Address& a : addresses) names.push_back(a.ToString());
  w_.Record(from, TraceKind::kConnect,
            absl::StrCat("connect#", id, " start [", absl::StrJoin(names, ", "), "]"));
  w_.loop.Schedule(w_.loop.now, from, false, [this, pc]() {
    if (!pc->finished) Act(pc, pc->schedule.Start(w_.loop.now));
  });
  return pc;
}

void Connector::Act(const std::shared_ptr<PendingConnect>& pc, ConnectSchedule::Action action) {
  using Kind = ConnectSchedule::Action::Kind;
  switch (action.kind) {
    case Kind::kTryAddress:
      Try(pc, action.address_index, action.attempt_deadline);
      return;
    case Kind::kWaitUntil: {
      w_.Record(pc->host, TraceKind::kConnect,
                absl::StrCat("connect#", pc->id, " round ", pc->schedule.round(), " failed, wait ",
                             absl::FormatDuration(action.wake_at - w_.loop.now)));
      w_.loop.Schedule(action.wake_at, pc->host, false, [this, pc]() {
        if (!pc->finished) Act(pc, pc->schedule.OnWakeUp(w_.loop.now));
      });
      return;
    }
    case Kind::kConnected: {
      std::shared_ptr<Link> link = std::move(pc->link);
      w_.RecordStream(pc->host, TraceKind::kConnect,
                      absl::StrCat("connect#", pc->id, " connected conn#", link->id), *link);
      Finish(pc);
      pc->handler->Connected(link->end[0]);
      return;
    }
    case Kind::kFailed: {
      w_.Record(pc->host, TraceKind::kConnect,
                absl::StrCat("connect#", pc->id, " failed: ", action.status.ToString()));
      Finish(pc);
      pc->handler->FailedConnection(action.status);
      return;
    }
  }
}

void Connector::Finish(const std::shared_ptr<PendingConnect>& pc) {
  pc->finished = true;
  pc->trying = false;
  if (pc->deadline_event != 0) w_.loop.Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  connects.erase(pc->id);
}

void Connector::Try(const std::shared_ptr<PendingConnect>& pc, size_t index, absl::Time deadline) {
  const absl::Time now = w_.loop.now;
  const uint64_t try_no = ++pc->try_no;
  pc->trying = true;
  pc->target_address = pc->schedule.addresses()[index];
  NETLAYER_ASSERT(CheckTarget(pc->target_address, &pc->target).ok(), "targets checked at start");
  pc->rto = absl::Seconds(1);
  w_.Record(pc->host, TraceKind::kConnect,
            absl::StrCat("connect#", pc->id, " round ", pc->schedule.round(), " try ",
                         pc->target_address.ToString()));
  // The schedule's deadline is the attempt timeout or, if sooner, the give-up deadline of the
  // whole connect: say which one cut the attempt short.
  const ConnectOptions& copts = pc->schedule.options();
  const absl::Time started = now;
  const bool gives_up = deadline < now + copts.attempt_timeout;
  pc->deadline_event =
      w_.loop.Schedule(deadline, pc->host, false, [this, pc, try_no, started, gives_up]() {
        if (!Current(*pc, try_no)) return;
        pc->deadline_event = 0;
        const ConnectOptions& o = pc->schedule.options();
        std::string why =
            gives_up
                ? absl::StrCat("connect to ", pc->target_address.ToString(), " stopped after ",
                               absl::FormatDuration(w_.loop.now - started), ": give_up_after (",
                               absl::FormatDuration(o.give_up_after), ") reached")
                : absl::StrCat("connect to ", pc->target_address.ToString(), " timed out after ",
                               absl::FormatDuration(o.attempt_timeout));
        AttemptFailed(pc, try_no, absl::DeadlineExceededError(std::move(why)));
      });
  bool fail_fast = false;
  {
    const std::string& name = w_.host(pc->host).name;
    const uint64_t attempt = ++w_.connect_attempts[name];
    if (w_.options.replay_tape != nullptr) {
      fail_fast = !w_.decider.stopped() && w_.TapeFind("connect-fail", name, attempt) != nullptr;
    } else {
      fail_fast = w_.decider.ConnectFailsFast();
      if (fail_fast) {
        TapeEntry e;
        e.process = "connect-fail";
        e.kind = "fail";
        e.ordinal = attempt;
        e.host = name;
        w_.TapeRecord(std::move(e));
      }
    }
  }
  if (fail_fast) {
    w_.Record(pc->host, TraceKind::kFault,
              absl::StrCat("connect#", pc->id, " will fail fast (injected)"));
    w_.loop.Schedule(now + w_.net.Latency(), pc->host, false, [this, pc, try_no]() {
      AttemptFailed(pc, try_no,
                    absl::UnavailableError(absl::StrCat(
                        "connect to ", pc->target_address.ToString(), " failed (injected fault)")));
    });
    return;
  }
  SendSyn(pc, try_no);
}

void Connector::SendSyn(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  w_.loop.Schedule(w_.loop.now + w_.net.Latency(), kNoHost, false,
                   [this, pc, try_no]() { SynArrive(pc, try_no); });
}

void Connector::SynLost(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                        const char* why) {
  w_.Record(pc->host, TraceKind::kConnect,
            absl::StrCat("connect#", pc->id, " SYN to ", pc->target_address.ToString(), " lost (",
                         why, "), retransmit in ", absl::FormatDuration(pc->rto)));
  const absl::Time at = w_.loop.now + pc->rto;
  pc->rto *= 2;
  w_.loop.Schedule(at, pc->host, false, [this, pc, try_no]() { SendSyn(pc, try_no); });
}

void Connector::SynArrive(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  const absl::Time now = w_.loop.now;
  Network& net = w_.net;
  const HostId from = pc->host;
  const HostId to = pc->target;
  // A powered-off host answers nothing; a crashed process's kernel refuses (no listener).
  if (w_.host(to).Admits(HostWork::kAnswerSyn) == Admission::kNever) {
    return SynLost(pc, try_no, "host down");
  }
  if (net.Blocked(from, to)) return SynLost(pc, try_no, "partition");
  if (const absl::Time until = net.ClogEnd(from, to); until > now) {
    w_.loop.Schedule(until, kNoHost, false, [this, pc, try_no]() { SynArrive(pc, try_no); });
    return;
  }
  Host& server = w_.host(to);
  auto it = server.listeners.find(pc->target_address.port());
  if (it == server.listeners.end()) {
    if (net.Blocked(to, from)) return SynLost(pc, try_no, "partition on the way back");
    // Owned by the client: a frozen client learns it when it resumes.
    w_.loop.Schedule(now + net.Latency(), pc->host, false, [this, pc, try_no]() {
      AttemptFailed(pc, try_no,
                    absl::UnavailableError(absl::StrCat(
                        "connect to ", pc->target_address.ToString(), ": connection refused")));
    });
    return;
  }
  std::shared_ptr<SimListener> listener = it->second;
  if (!listener->callback() && listener->queue().size() >= w_.options.profile.accept_backlog) {
    return SynLost(pc, try_no, "accept queue full");
  }
  if (net.Blocked(to, from)) return SynLost(pc, try_no, "partition on the way back");
  // The handshake completes at the listener now; the client learns it one latency later.
  Host& client = w_.host(from);
  const uint16_t client_port = client.next_port;
  client.next_port = client.next_port == 65535 ? 49152 : static_cast<uint16_t>(client_port + 1);
  const Address client_address = Address::HostName(client.name, client_port);
  std::shared_ptr<Link> link = net.NewLink(from, to, client_address, listener->address());
  pc->link = link;
  w_.RecordStream(to, TraceKind::kAccept,
                  absl::StrCat("conn#", link->id, " from ", client_address.ToString(), " at ",
                               listener->address().ToString(), " (connect#", pc->id, ")"),
                  *link);
  const absl::Time back = std::max(now + net.Latency(), net.ClogEnd(to, from));
  w_.loop.Schedule(back, pc->host, false, [this, pc, try_no]() { Established(pc, try_no); });
  // A flapping server (scripted for the host, or drawn for this connection).
  Flap flap = server.flap;
  if (flap.kind == Flap::Kind::kOff) {
    const std::string& name = server.name;
    const uint64_t accept = ++w_.accepts[name];
    if (w_.options.replay_tape != nullptr) {
      const TapeEntry* e = w_.decider.stopped() ? nullptr : w_.TapeFind("flap", name, accept);
      if (e != nullptr) {
        flap.kind = e->kind == "at-once"       ? Flap::Kind::kAtOnce
                    : e->kind == "after-bytes" ? Flap::Kind::kAfterBytes
                                               : Flap::Kind::kAfterRoundTrips;
        flap.count = std::max<uint64_t>(e->count, 1);
      }
    } else {
      flap = w_.decider.FlapOnAccept();
      if (flap.kind != Flap::Kind::kOff) {
        TapeEntry e;
        e.process = "flap";
        e.kind = flap.kind == Flap::Kind::kAtOnce       ? "at-once"
                 : flap.kind == Flap::Kind::kAfterBytes ? "after-bytes"
                                                        : "after-round-trips";
        e.ordinal = accept;
        e.host = name;
        e.count = flap.count;
        w_.TapeRecord(std::move(e));
      }
    }
  }
  if (flap.kind == Flap::Kind::kAtOnce) {
    w_.RecordStream(to, TraceKind::kFault,
                    absl::StrCat("flapping server closes conn#", link->id, " at once"), *link);
    link->end[1]->Close();
    return;
  }
  if (flap.kind != Flap::Kind::kOff) {
    link->end[1]->flap.plan = flap;
    w_.RecordStream(to, TraceKind::kFault,
                    absl::StrCat("flapping server will drop conn#", link->id, " after ", flap.count,
                                 flap.kind == Flap::Kind::kAfterBytes ? " bytes" : " round trips"),
                    *link);
  }
  w_.listeners.Arrive(*listener, link->end[1]);
}

void Connector::Established(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  if (pc->link == nullptr || pc->link->dead) {
    pc->link = nullptr;
    AttemptFailed(pc, try_no,
                  absl::UnavailableError(absl::StrCat("connect to ", pc->target_address.ToString(),
                                                      ": connection reset during the handshake")));
    return;
  }
  if (pc->deadline_event != 0) w_.loop.Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  pc->trying = false;
  Act(pc, pc->schedule.OnAttemptSucceeded(w_.loop.now));
}

void Connector::AttemptFailed(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                              absl::Status status) {
  if (!Current(*pc, try_no)) return;
  if (pc->deadline_event != 0) w_.loop.Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  pc->trying = false;
  if (pc->link != nullptr) {
    std::shared_ptr<Link> link = std::move(pc->link);
    w_.net.ResetLink(*link, "connect attempt abandoned by the client");
  }
  w_.Record(pc->host, TraceKind::kConnect,
            absl::StrCat("connect#", pc->id, " attempt failed: ", status.message()));
  Act(pc, pc->schedule.OnAttemptFailed(w_.loop.now, status));
}

void Connector::Cancel(PendingConnect& pc) {
  if (pc.finished) return;
  std::shared_ptr<PendingConnect> keep = connects.at(pc.id);
  pc.schedule.Cancel();
  if (pc.link != nullptr) {
    std::shared_ptr<Link> link = std::move(pc.link);
    w_.net.ResetLink(*link, "connect cancelled");
  }
  w_.Record(pc.host, TraceKind::kConnect, absl::StrCat("connect#", pc.id, " cancelled"));
  Finish(keep);
}

void PendingConnect::Cancel() {
  if (WorldParts* w = *world) w->connector.Cancel(*this);
}

namespace {
class BlockingConnectHandler final : public ConnectHandler {
 public:
  void Connected(std::shared_ptr<Connection> connection) override {
    result = std::move(connection);
    done = true;
  }
  void FailedConnection(const absl::Status& status) override {
    result = status;
    done = true;
  }
  bool done = false;
  absl::StatusOr<std::shared_ptr<Connection>> result = absl::UnknownError("not finished");
};
}  // namespace

absl::StatusOr<std::shared_ptr<ConnectAttempt>> SimClientFactory::Connect(
    std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler) {
  absl::StatusOr<std::shared_ptr<PendingConnect>> pc = world_->connector.StartConnect(
      host_, std::move(addresses), options, std::move(handler), false);
  if (!pc.ok()) return pc.status();
  return std::shared_ptr<ConnectAttempt>(*std::move(pc));
}

absl::StatusOr<std::shared_ptr<Connection>> SimClientFactory::ConnectBlocking(
    std::vector<Address> addresses, ConnectOptions options) {
  NETLAYER_ASSERT(world_->loop.depth == 0,
                  "ConnectBlocking was called from inside a callback run by the simulator");
  auto handler = std::make_shared<BlockingConnectHandler>();
  absl::StatusOr<std::shared_ptr<PendingConnect>> pc =
      world_->connector.StartConnect(host_, std::move(addresses), options, handler, true);
  if (!pc.ok()) return pc.status();
  world_->loop.RunUntil([&handler]() { return handler->done; }, absl::InfiniteFuture());
  if (!handler->done) {
    (*pc)->Cancel();
    if (!world_->loop.halted.ok()) return world_->loop.halted;
    return absl::UnavailableError("sim: connect cannot finish: the world has no events left");
  }
  return handler->result;
}

}  // namespace netlayer::sim
