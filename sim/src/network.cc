#include "network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/probe.h"
#include "netlayer/sim/promise_checker.h"
#include "sim_connection.h"
#include "world_parts.h"

namespace netlayer::sim {

absl::Duration Network::Latency() {
  const FaultProfile& p = w_.options.profile;
  absl::Duration d = p.latency_min + w_.Exp(p.latency_mean);
  if (p.tail_probability > 0 && Bernoulli(w_.generator, p.tail_probability)) {
    d += w_.Exp(p.tail_mean);
  }
  return d;
}

void Network::CheckAccounting(const Pipe& p) {
  NETLAYER_ASSERT(p.delivered + p.discarded + p.lost + p.bytes == p.sent,
                  "per direction, bytes delivered + discarded + lost + in the pipe == bytes sent");
  NETLAYER_ASSERT(p.lost == 0 || p.aborted,
                  "bytes are lost while a stream lives only when aborted");
  NETLAYER_ASSERT(!p.aborted || (p.bytes == 0 && p.segments.empty()),
                  "an aborted direction holds nothing");
}

std::string Network::Stream(const Link& l, int from_side) const {
  return absl::StrCat("conn#", l.id, " ", w_.Label(l.host[from_side]), "->",
                      w_.Label(l.host[1 - from_side]));
}

void Network::AddBlocks(const std::vector<HostId>& from, const std::vector<HostId>& to,
                        bool one_way, int delta) {
  for (HostId a : from) {
    for (HostId b : to) {
      blocked[Dir(a, b)] += delta;
      if (!one_way) blocked[Dir(b, a)] += delta;
    }
  }
  std::erase_if(blocked, [](const auto& kv) { return kv.second <= 0; });
}

std::shared_ptr<Link> Network::NewLink(HostId from, HostId to, const Address& client_address,
                                       const Address& server_address) {
  auto link = std::make_shared<Link>();
  link->id = next_link_id++;
  link->host = {from, to};
  link->incarnation = {w_.host(from).incarnation, w_.host(to).incarnation};
  const ConnectionLimits& limits = w_.options.connection_limits;
  link->end[0] = std::make_shared<SimConnection>(w_.ref, link.get(), 0, from, client_address,
                                                 server_address, limits);
  link->end[1] = std::make_shared<SimConnection>(w_.ref, link.get(), 1, to, server_address,
                                                 client_address, limits);
  std::shared_ptr<PromiseChecker> checker;
  if (w_.options.check_promises) {
    checker = std::make_shared<PromiseChecker>(
        link->id, std::array<std::string, 2>{w_.Label(from), w_.Label(to)},
        [r = w_.ref, end_hosts = link->host](int side, absl::Status why) {
          if (WorldParts* w = *r) w->PromiseBroken(end_hosts[side], std::move(why));
        });
  }
  for (const auto& end : link->end) {
    end->set_stream_id(link->id);
    end->set_checker(checker);
    all_connections.push_back(end);
  }
  if (all_connections.size() > 64 && all_connections.size() > 4 * links.size()) {
    std::erase_if(all_connections, [](const auto& w) { return w.expired(); });
  }
  links.emplace(link->id, link);
  return link;
}

void Network::OnLocalClose(SimConnection& conn, ConnectionState::Actions actions) {
  Link* link = conn.link();
  if (link != nullptr) {
    w_.RecordStream(link->host[conn.side()], TraceKind::kClose,
                    absl::StrCat("conn#", link->id, " local close, ", conn.state().output_bytes(),
                                 " bytes to flush"),
                    *link);
  }
  Carry(conn, actions);
  // Input held back for a reader that is gone is now discarded, which unblocks the peer.
  link = conn.link();
  if (link != nullptr && !link->dead) {
    Pipe& in = link->pipe[1 - conn.side()];
    if (in.wait == Pipe::Wait::kReadBlocked) {
      in.wait = Pipe::Wait::kNone;
      ScheduleDelivery(*link, 1 - conn.side(), w_.loop.now);
    }
  }
}

void Network::Carry(SimConnection& conn, ConnectionState::Actions a) {
  ConnectionState& state = conn.state();
  Link* link = conn.link();
  if (link != nullptr && !link->dead) {
    if (a.wake_transport && state.HasOutput()) SchedulePump(*link, conn.side());
    if (a.shutdown_write) SendFin(*link, conn.side());
    // An end its kernel already forgot (it reset the stream before) has no RST left to send.
    if (a.reset && conn.fate() == SimConnection::Fate::kLive) {
      w_.RecordStream(
          link->host[conn.side()], TraceKind::kClose,
          absl::StrCat("conn#", link->id, " aborted by ", w_.Label(link->host[conn.side()])),
          *link);
      ResetFrom(*link, conn.side(), "abort");
    }
  }
  if (!a.wake_reader && !a.release) return;
  const ConnectionState::ReadPlan plan = state.PlanRead();
  if (state.closed_locally() && plan.kind == ConnectionState::ReadPlan::Kind::kStop &&
      !state.released()) {
    // The closing end's reader is done (flushed and drained, or cut short): the socket is closed
    // for good. Unread input then resets the stream, as a real close() does.
    state.OnTransportDone();
    link = conn.link();
    if (link != nullptr && !link->dead && conn.fate() == SimConnection::Fate::kLive &&
        link->pipe[1 - conn.side()].bytes > 0) {
      ResetFrom(*link, conn.side(), "closed with unread data");
    }
    return;
  }
  if (plan.deadline != absl::InfiniteFuture() && plan.deadline < conn.deadline_check) {
    conn.deadline_check = plan.deadline;
    std::shared_ptr<SimConnection> keep = conn.shared_from_this();
    w_.loop.Schedule(std::max(w_.loop.now, plan.deadline), conn.host(), false, [this, keep]() {
      keep->deadline_check = absl::InfiniteFuture();
      Carry(*keep, keep->state().OnDeadline(w_.loop.now));
    });
  }
}

size_t Network::Transmit(Link& link, int side, absl::Span<const std::string_view> views,
                         size_t most) {
  Pipe& p = link.pipe[side];
  const FaultProfile& prof = w_.options.profile;
  NETLAYER_ASSERT(p.bytes <= prof.send_buffer_bytes, "a pipe holds at most its send buffer");
  NETLAYER_ASSERT(!p.fin, "no data after a FIN");
  NETLAYER_ASSERT(!p.aborted && link.end[side]->fate() == SimConnection::Fate::kLive,
                  "only a live end sends data, never into an aborted direction");
  size_t available = 0;
  for (std::string_view v : views) available += v.size();
  most = std::min({most, available, prof.send_buffer_bytes - p.bytes, prof.max_write_chunk});
  if (most == 0) return 0;
  const size_t n = Bernoulli(w_.generator, prof.full_write_probability)
                       ? most
                       : static_cast<size_t>(UniformInt(w_.generator, 1, most));
  std::string data;
  data.reserve(n);
  for (size_t i = 0; i < views.size() && data.size() < n; ++i) {
    data.append(views[i].substr(0, n - data.size()));
  }
  NETLAYER_ASSERT(data.size() == n, "a segment carries what was taken");
  const absl::Time arrive = std::max(w_.loop.now + Latency(), p.last_arrival);
  p.last_arrival = arrive;
  p.bytes += n;
  p.sent += n;
  CheckAccounting(p);
  NETLAYER_ASSERT(p.bytes <= prof.send_buffer_bytes, "a write never overfills the send buffer");
  p.segments.push_back(Pipe::Segment{std::move(data), 0, arrive});
  w_.RecordStream(link.host[side], TraceKind::kSend,
                  absl::StrCat(Stream(link, side), " ", n, " bytes"), link, n);
  ScheduleDelivery(link, side, arrive);
  SimConnection::FlapState& flap = link.end[side]->flap;
  if (flap.plan.kind == Flap::Kind::kAfterRoundTrips && flap.got_input && !flap.dropped) {
    flap.got_input = false;
    if (++flap.answers >= flap.plan.count) {
      // The answer reaches the client first; then the server drops the connection.
      flap.dropped = true;
      std::shared_ptr<Link> keep = links.at(link.id);
      w_.loop.Schedule(arrive, kNoHost, false, [this, keep, side]() {
        // A server end whose process died meanwhile is its kernel's: nobody drops it.
        if (keep->dead || keep->end[side]->fate() != SimConnection::Fate::kLive) return;
        w_.RecordStream(keep->host[side], TraceKind::kFault,
                        absl::StrCat("flapping server drops conn#", keep->id, " after ",
                                     keep->end[side]->flap.answers, " round trips"),
                        *keep);
        ResetFrom(*keep, side, "flapping server");
      });
    }
  }
  return n;
}

void Network::DirectSend(SimConnection& conn, absl::Span<const std::string_view> pieces) {
  ConnectionState& state = conn.state();
  Link* link = conn.link();
  NETLAYER_ASSERT(link != nullptr && !link->dead, "an open connection has a live stream");
  Pipe& p = link->pipe[conn.side()];
  // BUGGIFY: a direct send cut short (the socket took one byte); the rest is queued.
  const size_t sent = Transmit(*link, conn.side(), pieces,
                               NETLAYER_BUGGIFY("sim.buggify.direct-send-short") ? 1 : SIZE_MAX);
  state.OnDirectSent(pieces, sent);
  if (p.bytes >= w_.options.profile.send_buffer_bytes) p.sender_waiting = true;
  Carry(conn, state.EndWriterClaim(w_.loop.now));
}

void Network::SendCorked(SimConnection& conn) {
  Link* link = conn.link();
  NETLAYER_ASSERT(link != nullptr && !link->dead, "a connection with output has a live stream");
  NoLock lock;
  SendQueuedAsWriter(
      lock, conn.state(),
      [this, link, &conn](absl::Span<const std::string_view> views, std::optional<CloseReason>&) {
        return Transmit(*link, conn.side(), views, SIZE_MAX);
      },
      [this, &conn](const ConnectionState::Actions& a) { Carry(conn, a); },
      [this] { return w_.loop.now; });
}

void Network::SchedulePump(Link& link, int side) {
  Pipe& p = link.pipe[side];
  if (p.pump_scheduled || link.dead) return;
  p.pump_scheduled = true;
  std::shared_ptr<Link> keep = links.at(link.id);
  w_.loop.Schedule(w_.loop.now, kNoHost, false, [this, keep, side]() { Pump(keep, side); });
}

void Network::Pump(const std::shared_ptr<Link>& link, int side) {
  Pipe& p = link->pipe[side];
  p.pump_scheduled = false;
  if (link->dead || p.fin || p.aborted) return;
  // A dead end's output queue died with its process.
  if (link->end[side]->fate() != SimConnection::Fate::kLive) return;
  if (w_.host(link->host[side]).Admits(HostWork::kSend) != Admission::kNow) {
    // The sending process is stopped: it moves nothing from its output queue until it resumes.
    p.pump_held = true;
    return;
  }
  SimConnection& tx = *link->end[side];
  ConnectionState& state = tx.state();
  if (p.bytes >= w_.options.profile.send_buffer_bytes) {
    if (state.HasOutput()) p.sender_waiting = true;
    return;
  }
  if (!state.ClaimTransport()) return;
  std::array<std::string_view, 64> views;
  const size_t pieces = state.PeekOutput(absl::MakeSpan(views));
  NETLAYER_ASSERT(pieces > 0, "the output queue holds what it reports");
  const size_t n = Transmit(*link, side, absl::MakeConstSpan(views.data(), pieces), SIZE_MAX);
  NETLAYER_ASSERT(n > 0, "a pipe with room takes at least one byte");
  // The pump sends again (wake_transport) while output remains, or ends the flush with a FIN.
  Carry(tx, state.OnSent(n, w_.loop.now));
}

void Network::SendFin(Link& link, int side) {
  Pipe& p = link.pipe[side];
  if (p.fin || p.aborted || link.dead) return;
  p.fin = true;
  p.fin_at = std::max(w_.loop.now + Latency(), p.last_arrival);
  p.last_arrival = p.fin_at;
  w_.RecordStream(link.host[side], TraceKind::kClose, absl::StrCat(Stream(link, side), " FIN"),
                  link);
  ScheduleDelivery(link, side, p.fin_at);
  MaybeTeardown(link);
}

void Network::ScheduleDelivery(Link& link, int side, absl::Time at) {
  Pipe& p = link.pipe[side];
  if (p.wait != Pipe::Wait::kNone || link.dead) return;
  p.wait = Pipe::Wait::kScheduled;
  std::shared_ptr<Link> keep = links.at(link.id);
  w_.loop.Schedule(at, kNoHost, false, [this, keep, side]() { Deliver(keep, side); });
}

bool Network::Reading(const SimConnection& rx) const {
  switch (rx.fate()) {
    case SimConnection::Fate::kLive:
      break;
    case SimConnection::Fate::kClosedByKernel:
    case SimConnection::Fate::kForgotten:
      return true;  // the kernel answers for it, whatever the host's process does
    case SimConnection::Fate::kSilent:
      return false;  // nothing of a powered-off host reads
  }
  const Host& h = w_.hosts[rx.host().value];
  return h.Admits(HostWork::kRead) == Admission::kNow && !h.not_reading && !rx.not_reading;
}

void Network::Release() {
  for (auto& [id, link] : links) {
    for (int side = 0; side < 2; ++side) {
      Pipe& p = link->pipe[side];
      if (p.wait == Pipe::Wait::kHeld && Reading(*link->end[1 - side])) {
        p.wait = Pipe::Wait::kNone;
        ScheduleDelivery(*link, side, w_.loop.now);
      }
      if (p.pump_held && w_.host(link->host[side]).Admits(HostWork::kSend) == Admission::kNow) {
        p.pump_held = false;
        SchedulePump(*link, side);
      }
    }
  }
}

void Network::ScheduleKick(absl::Time at) {
  w_.loop.Schedule(at, kNoHost, false, [this]() { Kick(); });
}

void Network::Kick() {
  for (auto& [id, link] : links) {
    for (int side = 0; side < 2; ++side) {
      if (link->pipe[side].wait == Pipe::Wait::kStalled) {
        link->pipe[side].wait = Pipe::Wait::kNone;
        ScheduleDelivery(*link, side, w_.loop.now);
      }
    }
  }
}

void Network::Deliver(const std::shared_ptr<Link>& link, int side) {
  Pipe& p = link->pipe[side];
  p.wait = Pipe::Wait::kNone;
  if (link->dead) return;
  const absl::Time now = w_.loop.now;
  const HostId from = link->host[side];
  const HostId to = link->host[1 - side];
  std::shared_ptr<SimConnection> rx = link->end[1 - side];
  const SimConnection::Fate tx_fate = link->end[side]->fate();
  // A host's death leaves its ends to its kernel (BreakHost): a live end is of the incarnation
  // the stream was made with; a dead sender is a crashed process's kernel flushing its bytes and
  // FIN, or has nothing left to send.
  NETLAYER_ASSERT(rx->fate() != SimConnection::Fate::kLive ||
                      w_.host(to).incarnation == link->incarnation[1 - side],
                  "a live end belongs to the incarnation that made the stream");
  NETLAYER_ASSERT(tx_fate == SimConnection::Fate::kLive ||
                      tx_fate == SimConnection::Fate::kClosedByKernel || p.aborted,
                  "only a live end or a closing kernel sends");
  if (p.aborted) return;
  if (Blocked(from, to)) {
    NETLAYER_REACHABLE("sim.fault.partition-stalls-stream");
    p.wait = Pipe::Wait::kStalled;
    return;
  }
  if (const absl::Time until = ClogEnd(from, to); until > now) {
    NETLAYER_REACHABLE("sim.fault.clog-stalls-stream");
    p.wait = Pipe::Wait::kStalled;
    ScheduleKick(until);
    return;
  }
  if (rx->fate() != SimConnection::Fate::kLive && Reading(*rx)) {
    AnswerDeadEnd(link, side);
    return;
  }
  ConnectionState& state = rx->state();
  if (!Reading(*rx) && (!p.segments.empty() || p.fin)) {
    // The kernel keeps the bytes (they count against the send buffer); nobody reads them.
    NETLAYER_REACHABLE("sim.fault.reader-holds-stream");
    p.wait = Pipe::Wait::kHeld;
    return;
  }
  if (p.segments.empty()) {
    if (!p.fin) return;
    if (p.fin_at > now) {
      ScheduleDelivery(*link, side, p.fin_at);
      return;
    }
    NETLAYER_ASSERT(p.bytes == 0 && p.delivered + p.discarded == p.sent,
                    "the FIN is delivered only after every byte of its direction");
    w_.RecordStream(to, TraceKind::kClose, absl::StrCat(Stream(*link, side), " end of stream"),
                    *link);
    const ConnectionState::Actions a = state.OnEndOfStream();
    if (a.wake_reader) DeliverPending(rx);
    Carry(*rx, a);
    MaybeTeardown(*link);
    return;
  }
  if (p.segments.front().arrive > now) {
    ScheduleDelivery(*link, side, p.segments.front().arrive);
    return;
  }
  const FaultProfile& prof = w_.options.profile;
  if (state.released()) {
    // The socket is closed for good: data for it resets the stream, as TCP does.
    ResetFrom(*link, 1 - side, "data after close");
    return;
  }
  if (state.phase() != ConnectionState::Phase::kOpen) {
    // Closed locally: what arrives is discarded (the application will never read it).
    w_.RecordStream(to, TraceKind::kDeliver,
                    absl::StrCat(Stream(*link, side), " ", p.bytes, " bytes discarded (closed)"),
                    *link);
    p.discarded += p.bytes;
    p.segments.clear();
    p.bytes = 0;
    CheckAccounting(p);
  } else if (!state.WantRead()) {
    p.wait = Pipe::Wait::kReadBlocked;
    return;
  } else {
    size_t arrived = 0;
    for (const Pipe::Segment& s : p.segments) {
      if (s.arrive > now || arrived >= prof.max_read_chunk) break;
      arrived += s.data.size() - s.offset;
    }
    const size_t most = std::min(arrived, prof.max_read_chunk);
    const size_t n = Bernoulli(w_.generator, prof.full_read_probability)
                         ? most
                         : static_cast<size_t>(UniformInt(w_.generator, 1, most));
    NETLAYER_ASSERT(n >= 1 && n <= p.bytes, "a read takes between one byte and what is there");
    std::string data;
    data.reserve(n);
    while (data.size() < n) {
      Pipe::Segment& s = p.segments.front();
      const size_t take = std::min(n - data.size(), s.data.size() - s.offset);
      data.append(s.data, s.offset, take);
      s.offset += take;
      if (s.offset == s.data.size()) p.segments.pop_front();
    }
    p.bytes -= n;
    p.delivered += n;
    CheckAccounting(p);
    w_.RecordStream(to, TraceKind::kDeliver, absl::StrCat(Stream(*link, side), " ", n, " bytes"),
                    *link, n);
    if (PromiseChecker* checker = rx->checker()) checker->OnReceived(rx->side(), n);
    SimConnection::FlapState& flap = rx->flap;
    flap.received += n;
    flap.got_input = true;
    NoLock lock;
    // As on posix (ReadAndReceive): the answers the handler writes during this read go out
    // together when it returns.
    // (A blocking call inside the handler runs the world nested: no second cork then.)
    const bool cork = !state.corked();
    if (cork) state.BeginCork();
    ReceiveInput(lock, state, *rx, data);
    if (cork && state.EndCork()) SendCorked(*rx);
    if (flap.plan.kind == Flap::Kind::kAfterBytes && !flap.dropped && !link->dead &&
        flap.received >= flap.plan.count) {
      flap.dropped = true;
      w_.RecordStream(
          to, TraceKind::kFault,
          absl::StrCat("flapping server drops conn#", link->id, " after ", flap.received, " bytes"),
          *link);
      ResetFrom(*link, 1 - side, "flapping server");
    }
  }
  if (p.sender_waiting && !link->dead) {
    p.sender_waiting = false;
    SchedulePump(*link, side);
  }
  if (link->dead) return;
  if (!p.segments.empty()) {
    ScheduleDelivery(*link, side, std::max(w_.loop.now, p.segments.front().arrive));
  } else if (p.fin) {
    ScheduleDelivery(*link, side, std::max(w_.loop.now, p.fin_at));
  }
}

// ---- Hosts that die and come back ----

void Network::BreakHost(HostId h, HostDeath how) {
  std::vector<std::shared_ptr<Link>> affected;
  for (const auto& [id, link] : links) {
    if (link->host[0] == h || link->host[1] == h) affected.push_back(link);
  }
  for (const auto& link : affected) {
    for (int side = 0; side < 2; ++side) {
      if (link->dead) break;
      if (link->host[side] == h && link->end[side]->fate() == SimConnection::Fate::kLive) {
        KillEnd(link, side, how);
      }
    }
    if (!link->dead) MaybeTeardown(*link);
  }
}

void Network::KillEnd(const std::shared_ptr<Link>& link, int side, HostDeath how) {
  SimConnection& end = *link->end[side];
  Pipe& out = link->pipe[side];
  Pipe& in = link->pipe[1 - side];
  const char* what = how == HostDeath::kPowerOff ? "host lost power" : "process crashed";
  if (PromiseChecker* checker = end.checker()) checker->OnLocalClose(side);
  // The process is dead: its output queue is gone and its handlers are never called again.
  // The end closes first, so what a handler's destructor writes (an error reply for a call it
  // held) fails like any write after close instead of reaching the wire from a dead process.
  ConnectionState& state = end.state();
  (void)state.OnRemoteClosed(CloseReason(CloseReason::Kind::kHostDown, what));
  state.SetHandler(nullptr);
  if (link->dead) return;  // a handler's destructor ended the stream
  const bool unread = !in.segments.empty() && in.segments.front().arrive <= w_.loop.now;
  if (how == HostDeath::kPowerOff) {
    NETLAYER_REACHABLE("sim.fault.power-off-silences-stream");
    end.set_fate(SimConnection::Fate::kSilent);
    w_.RecordStream(link->host[side], TraceKind::kFault,
                    absl::StrCat("conn#", link->id, " silent: host lost power (nothing leaves it)"),
                    *link);
    AbortDirection(*link, side);
  } else if (unread) {
    NETLAYER_REACHABLE("sim.fault.crash-resets-stream");
    end.set_fate(SimConnection::Fate::kForgotten);
    const size_t dropped = DiscardArrived(in);
    AbortDirection(*link, side);
    SendRst(*link, side,
            absl::StrCat(w_.Label(link->host[side]), "'s process crashed with ", dropped,
                         " unread bytes"));
  } else {
    NETLAYER_REACHABLE("sim.fault.crash-closes-stream");
    end.set_fate(SimConnection::Fate::kClosedByKernel);
    w_.RecordStream(link->host[side], TraceKind::kClose,
                    absl::StrCat("conn#", link->id, " closed by the kernel: process crashed"),
                    *link);
    SendFin(*link, side);
  }
  if (PromiseChecker* checker = end.checker()) {
    checker->OnWriterDied(side, out.delivered + out.discarded + out.bytes);
  }
  // What waited for the dead end now meets its kernel (or, powered off, nobody).
  if (!link->dead && (in.wait == Pipe::Wait::kHeld || in.wait == Pipe::Wait::kReadBlocked)) {
    in.wait = Pipe::Wait::kNone;
    ScheduleDelivery(*link, 1 - side, w_.loop.now);
  }
}

void Network::RestartHost(HostId h) {
  for (auto& [id, link] : links) {
    for (int side = 0; side < 2; ++side) {
      SimConnection& end = *link->end[side];
      if (link->host[side] != h || end.fate() != SimConnection::Fate::kSilent) continue;
      end.set_fate(SimConnection::Fate::kForgotten);
      Pipe& in = link->pipe[1 - side];
      if (in.wait == Pipe::Wait::kHeld) {
        in.wait = Pipe::Wait::kNone;
        ScheduleDelivery(*link, 1 - side, w_.loop.now);
      }
    }
  }
}

void Network::AbortDirection(Link& link, int side) {
  Pipe& p = link.pipe[side];
  p.aborted = true;
  p.lost += p.bytes;
  p.bytes = 0;
  p.segments.clear();
  CheckAccounting(p);
}

size_t Network::DiscardArrived(Pipe& p) {
  size_t n = 0;
  while (!p.segments.empty() && p.segments.front().arrive <= w_.loop.now) {
    n += p.segments.front().data.size() - p.segments.front().offset;
    p.segments.pop_front();
  }
  p.bytes -= n;
  p.discarded += n;
  CheckAccounting(p);
  return n;
}

void Network::AnswerDeadEnd(const std::shared_ptr<Link>& link, int side) {
  Pipe& p = link->pipe[side];
  const HostId from = link->host[side];
  const HostId to = link->host[1 - side];
  SimConnection& rx = *link->end[1 - side];
  const absl::Time now = w_.loop.now;
  const bool data_due = !p.segments.empty() && p.segments.front().arrive <= now;
  const bool fin_due = p.segments.empty() && p.fin && p.fin_at <= now;
  if (!data_due && !fin_due) {
    if (!p.segments.empty()) {
      ScheduleDelivery(*link, side, p.segments.front().arrive);
    } else if (p.fin) {
      ScheduleDelivery(*link, side, p.fin_at);
    }
    return;
  }
  if (fin_due && rx.fate() == SimConnection::Fate::kClosedByKernel) {
    // A FIN for a socket its kernel closed: acknowledged; nothing more comes either way.
    w_.RecordStream(to, TraceKind::kClose,
                    absl::StrCat(Stream(*link, side), " FIN absorbed by the kernel"), *link);
    MaybeTeardown(*link);
    return;
  }
  if (Blocked(to, from)) {
    // The answer would be lost; the sender retransmits: this waits for the heal.
    w_.RecordStream(to, TraceKind::kReset,
                    absl::StrCat(Stream(*link, side),
                                 " segment for a dead socket, its RST lost "
                                 "(partition); the sender retransmits"),
                    *link);
    p.wait = Pipe::Wait::kStalled;
    return;
  }
  const size_t n = DiscardArrived(p);
  const bool forgotten = rx.fate() == SimConnection::Fate::kForgotten;
  NETLAYER_REACHABLE("sim.fault.rst-answers-dead-socket");
  if (!forgotten) {
    rx.set_fate(SimConnection::Fate::kForgotten);
    AbortDirection(*link, 1 - side);
    if (PromiseChecker* checker = rx.checker()) {
      const Pipe& out = link->pipe[1 - side];
      checker->OnWriterDied(1 - side, out.delivered + out.discarded + out.bytes);
    }
  }
  SendRst(*link, 1 - side,
          absl::StrCat(n, n == 1 ? " byte" : " bytes", fin_due ? " and a FIN" : "", " arrived for ",
                       forgotten ? "a stream " : "a closed socket of ", w_.Label(to),
                       forgotten ? " does not know" : ""));
  if (!p.segments.empty()) {
    ScheduleDelivery(*link, side, p.segments.front().arrive);
  } else if (p.fin && !fin_due) {
    ScheduleDelivery(*link, side, p.fin_at);
  }
}

void Network::ResetFrom(Link& link, int side, const std::string& why) {
  if (link.dead) return;
  SimConnection& end = *link.end[side];
  NETLAYER_ASSERT(end.fate() == SimConnection::Fate::kLive, "only a live end resets its stream");
  std::shared_ptr<Link> keep = links.at(link.id);
  std::shared_ptr<SimConnection> keep_end = link.end[side];
  w_.RecordStream(
      link.host[side], TraceKind::kReset,
      absl::StrCat("conn#", link.id, " reset by ", w_.Label(link.host[side]), ": ", why), link);
  // Both directions stop counting as deliverable: what the reader's state holds is all it gets.
  if (PromiseChecker* checker = end.checker()) checker->OnBroken();
  // The socket is gone: what arrived for it unread is dropped, what it had in flight is lost.
  DiscardArrived(link.pipe[1 - side]);
  AbortDirection(link, side);
  // The resetting end closes now (nothing if it was closed locally already: an abort, a close).
  const ConnectionState::Actions a = end.state().OnRemoteClosed(
      CloseReason(CloseReason::Kind::kReset, absl::StrCat("connection reset (", why, ")")));
  if (a.wake_reader) ScheduleDeliverPending(keep_end);
  // Its kernel knows the stream no more: what reaches it later is answered with an RST.
  end.set_fate(SimConnection::Fate::kForgotten);
  SendRst(link, side, why);
  // What waited for the end's reader now meets its kernel.
  Pipe& in = link.pipe[1 - side];
  if (!link.dead && (in.wait == Pipe::Wait::kHeld || in.wait == Pipe::Wait::kReadBlocked)) {
    in.wait = Pipe::Wait::kNone;
    ScheduleDelivery(link, 1 - side, w_.loop.now);
  }
  MaybeTeardown(link);
}

void Network::SendRst(Link& link, int side, std::string why) {
  const HostId from = link.host[side];
  const HostId to = link.host[1 - side];
  if (Blocked(from, to)) {
    NETLAYER_REACHABLE("sim.fault.rst-lost-in-partition");
    w_.RecordStream(from, TraceKind::kReset,
                    absl::StrCat(Stream(link, side), " RST lost (partition): ", why), link);
    return;
  }
  w_.RecordStream(from, TraceKind::kReset, absl::StrCat(Stream(link, side), " RST: ", why), link);
  std::shared_ptr<Link> keep = links.at(link.id);
  w_.loop.Schedule(w_.loop.now + Latency(), kNoHost, false,
                   [this, keep, side, why = std::move(why)]() { RstArrive(keep, side, why); });
}

void Network::RstArrive(const std::shared_ptr<Link>& link, int side, const std::string& why) {
  if (link->dead) return;
  const HostId from = link->host[side];
  const HostId to = link->host[1 - side];
  if (Blocked(from, to)) {
    w_.RecordStream(to, TraceKind::kReset,
                    absl::StrCat(Stream(*link, side), " RST lost (partition): ", why), *link);
    return;
  }
  if (const absl::Time until = ClogEnd(from, to); until > w_.loop.now) {
    std::shared_ptr<Link> keep = link;
    w_.loop.Schedule(until, kNoHost, false,
                     [this, keep, side, why]() { RstArrive(keep, side, why); });
    return;
  }
  if (link->end[1 - side]->fate() == SimConnection::Fate::kSilent) return;  // nobody hears it
  ResetLink(*link, absl::StrCat("connection reset by peer (", why, ")"));
}

void Network::MaybeTeardown(Link& link) {
  if (link.dead) return;
  for (const auto& end : link.end) {
    if (end->state().phase() != ConnectionState::Phase::kClosed) return;
  }
  Teardown(link);
}

void Network::Teardown(Link& link) {
  if (link.dead) return;
  link.dead = true;
  for (Pipe& p : link.pipe) {
    CheckAccounting(p);
    p.lost += p.bytes;
    p.segments.clear();
    p.bytes = 0;
  }
  for (const auto& end : link.end) end->set_link(nullptr);
  links.erase(link.id);  // events may still hold the Link; they check `dead`
}

void Network::ResetLink(Link& link, const std::string& detail) {
  if (link.dead) return;
  w_.RecordStream(link.host[1], TraceKind::kReset,
                  absl::StrCat("conn#", link.id, " reset: ", detail), link);
  std::array<std::shared_ptr<SimConnection>, 2> ends = link.end;
  Teardown(link);
  if (PromiseChecker* checker = ends[0]->checker()) checker->OnBroken();
  for (const auto& end : ends) {
    const ConnectionState::Actions a =
        end->state().OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, detail));
    if (a.wake_reader) ScheduleDeliverPending(end);
  }
}

void Network::DeliverPending(const std::shared_ptr<SimConnection>& conn) {
  CallbackScope scope(w_.loop);
  NoLock lock;
  DeliverEvents(lock, conn->state(), *conn);
  // The same decision posix's SetHandler carries out: deliveries made room, the reader resumes.
  if (conn->state().TakeRoomMade().wake_reader) ResumeRead(*conn);
}

void Network::ScheduleDeliverPending(const std::shared_ptr<SimConnection>& conn) {
  // Owned by the connection's host: dropped if that host crashes before it runs.
  w_.loop.Schedule(w_.loop.now, conn->host(), false, [this, conn]() { DeliverPending(conn); });
}

void Network::ResumeRead(SimConnection& conn) {
  Link* link = conn.link();
  if (link == nullptr) return;
  const int in = 1 - conn.side();
  Pipe& p = link->pipe[in];
  if (p.wait == Pipe::Wait::kReadBlocked && conn.state().WantRead()) {
    p.wait = Pipe::Wait::kNone;
    ScheduleDelivery(*link, in, w_.loop.now);
  }
}

}  // namespace netlayer::sim
