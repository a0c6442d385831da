#include "network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/sim/promise_checker.h"
#include "sim_connection.h"
#include "world_impl.h"

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
  NETLAYER_ASSERT(p.delivered + p.discarded + p.bytes == p.sent,
                  "per direction, bytes delivered + discarded + in the pipe == bytes sent");
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
          if (World::Impl* w = *r) w->PromiseBroken(end_hosts[side], std::move(why));
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
    if (a.reset) {
      w_.RecordStream(
          link->host[conn.side()], TraceKind::kClose,
          absl::StrCat("conn#", link->id, " aborted by ", w_.Label(link->host[conn.side()])),
          *link);
      ResetLink(*link, "connection reset by peer (abort)");
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
    if (link != nullptr && !link->dead && link->pipe[1 - conn.side()].bytes > 0) {
      ResetLink(*link, "connection reset by peer (closed with unread data)");
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
        if (keep->dead) return;
        w_.RecordStream(keep->host[side], TraceKind::kFault,
                        absl::StrCat("flapping server drops conn#", keep->id, " after ",
                                     keep->end[side]->flap.answers, " round trips"),
                        *keep);
        ResetLink(*keep, "connection reset by peer (flapping server)");
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
  const size_t sent = Transmit(*link, conn.side(), pieces, SIZE_MAX);
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
  if (link->dead || p.fin) return;
  if (w_.host(link->host[side]).frozen) {
    // The sending process is stopped: it moves nothing from its output queue.
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
  if (p.fin || link.dead) return;
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
  const Host& h = w_.hosts[rx.host().value];
  return !h.frozen && !h.not_reading && !rx.not_reading;
}

void Network::Release() {
  for (auto& [id, link] : links) {
    for (int side = 0; side < 2; ++side) {
      Pipe& p = link->pipe[side];
      if (p.wait == Pipe::Wait::kHeld && Reading(*link->end[1 - side])) {
        p.wait = Pipe::Wait::kNone;
        ScheduleDelivery(*link, side, w_.loop.now);
      }
      if (p.pump_held && !w_.host(link->host[side]).frozen) {
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
  // A crash ends every stream of the host (Faults::Crash tears them down): a live stream's
  // ends are of the incarnations it was made with.
  NETLAYER_ASSERT(w_.host(to).incarnation == link->incarnation[1 - side] &&
                      w_.host(from).incarnation == link->incarnation[side],
                  "no delivery to or from a crashed host's incarnation");
  if (Blocked(from, to)) {
    p.wait = Pipe::Wait::kStalled;
    return;
  }
  if (const absl::Time until = ClogEnd(from, to); until > now) {
    p.wait = Pipe::Wait::kStalled;
    ScheduleKick(until);
    return;
  }
  std::shared_ptr<SimConnection> rx = link->end[1 - side];
  ConnectionState& state = rx->state();
  if (!Reading(*rx) && (!p.segments.empty() || p.fin)) {
    // The kernel keeps the bytes (they count against the send buffer); nobody reads them.
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
    ResetLink(*link, "connection reset by peer (data after close)");
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
      ResetLink(*link, "connection reset by peer (flapping server)");
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
