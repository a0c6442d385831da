// The simulator: event loop, hosts, network model, fault processes and the sim backend
// (Connection, ClientConnectionFactory, ServerConnectionFactory, Listener, Env). One file so
// the pieces share World::Impl without a second header; sections are marked.
#include "netlayer/sim/world.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/log.h"
#include "netlayer/core/timer_queue.h"
#include "netlayer/sim/promise_checker.h"

namespace netlayer::sim {

class SimConnection;
class SimListener;
class PendingConnect;
class HostEnv;
class SimClientFactory;
class SimServerFactory;

// A handle to the world that outlives it: objects handed to the application hold one and find
// nullptr once the world is gone.
using WorldRef = std::shared_ptr<World::Impl*>;

namespace {

constexpr HostId kNoHost{};

// One direction of a stream: bytes written by one end, in flight or arrived, not yet read.
struct Pipe {
  struct Segment {
    std::string data;
    size_t offset = 0;
    absl::Time arrive;
  };
  enum class Wait {
    kNone,         // no delivery pending: new data schedules one
    kScheduled,    // a delivery event is queued
    kStalled,      // blocked by a partition or clog; a heal or unclog kicks it
    kReadBlocked,  // the receiver does not want input (its pending input is at its bound)
  };
  std::deque<Segment> segments;
  size_t bytes = 0;  // unread bytes in segments
  absl::Time last_arrival = absl::InfinitePast();
  bool fin = false;
  absl::Time fin_at;
  Wait wait = Wait::kNone;
  bool sender_waiting = false;  // the sender has output but this pipe was full
  bool pump_scheduled = false;  // a pump (send) event for the sending end is queued
};

}  // namespace

// A stream between two ends: end[0] is the connecting side, end[1] the accepting side;
// pipe[i] carries bytes from end[i] to end[1 - i].
struct Link {
  uint64_t id = 0;
  std::array<HostId, 2> host;
  std::array<std::shared_ptr<SimConnection>, 2> end;
  std::array<Pipe, 2> pipe;
  bool dead = false;
};

// ---------------------------------------------------------------------------------------------
// Sim connection: drives core ConnectionState with NoLock.

class SimConnection final : public Connection, public std::enable_shared_from_this<SimConnection> {
 public:
  SimConnection(WorldRef world, Link* link, int side, HostId host, Address local, Address peer,
                ConnectionLimits limits)
      : world_(std::move(world)),
        link_(link),
        side_(side),
        host_(host),
        local_(std::move(local)),
        peer_(std::move(peer)),
        state_(limits) {}

  bool IsOpen() const override { return state_.IsOpen(); }
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override;
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override;
  void Close() override;
  void Abort() override;
  size_t QueuedOutputBytes() const override { return state_.output_bytes(); }
  Address local_address() const override { return local_; }
  Address peer_address() const override { return peer_; }

  ConnectionState& state() { return state_; }
  Link* link() const { return link_; }
  void set_link(Link* link) { link_ = link; }
  int side() const { return side_; }
  // The host this end lives on (still known after the stream has ended).
  HostId host() const { return host_; }
  uint64_t stream_id() const { return stream_id_; }
  const WorldRef& world_ref() const { return world_; }
  void set_stream_id(uint64_t id) { stream_id_ = id; }
  // The promise checker watching this end's stream (shared by both ends), or nullptr if off.
  PromiseChecker* checker() const { return checker_.get(); }
  void set_checker(std::shared_ptr<PromiseChecker> checker) { checker_ = std::move(checker); }
  // The time of the pending deadline check (ConnectionState::OnDeadline), if any.
  absl::Time deadline_check = absl::InfiniteFuture();

 private:
  WorldRef world_;
  Link* link_;  // nullptr once the stream has ended
  int side_;
  HostId host_;
  uint64_t stream_id_ = 0;
  Address local_;
  Address peer_;
  ConnectionState state_;
  std::shared_ptr<PromiseChecker> checker_;
};

// ---------------------------------------------------------------------------------------------
// Listener.

class SimListener final : public Listener, public std::enable_shared_from_this<SimListener> {
 public:
  SimListener(WorldRef world, HostId host, Address address, AcceptCallback callback)
      : world_(std::move(world)),
        host_(host),
        address_(std::move(address)),
        callback_(std::move(callback)) {}
  ~SimListener() override { Close(); }

  Address address() const override { return address_; }
  std::shared_ptr<Connection> Accept(absl::Time deadline) override;
  void Close() override;
  bool IsOpen() const override { return open_; }

  HostId host() const { return host_; }
  const AcceptCallback& callback() const { return callback_; }
  std::deque<std::shared_ptr<SimConnection>>& queue() { return queue_; }
  void MarkClosed() { open_ = false; }

 private:
  WorldRef world_;
  HostId host_;
  Address address_;
  AcceptCallback callback_;
  bool open_ = true;
  std::deque<std::shared_ptr<SimConnection>> queue_;
};

// ---------------------------------------------------------------------------------------------
// Connect in progress.

class PendingConnect final : public ConnectAttempt {
 public:
  PendingConnect(WorldRef world, uint64_t id, HostId host, ConnectSchedule schedule,
                 std::shared_ptr<ConnectHandler> handler, bool blocking)
      : world(std::move(world)),
        id(id),
        host(host),
        schedule(std::move(schedule)),
        handler(std::move(handler)),
        blocking(blocking) {}
  void Cancel() override;
  bool done() const override { return finished; }

  WorldRef world;
  uint64_t id;
  HostId host;
  ConnectSchedule schedule;
  std::shared_ptr<ConnectHandler> handler;
  bool blocking;
  bool finished = false;
  // The current attempt.
  bool trying = false;
  uint64_t try_no = 0;
  HostId target = kNoHost;
  Address target_address = Address::HostName("none", 0);
  uint64_t deadline_event = 0;
  absl::Duration rto = absl::Seconds(1);
  std::shared_ptr<Link> link;  // created at the listener, waiting for the SYN-ACK to arrive
};

// ---------------------------------------------------------------------------------------------
// Per-host Env, notification and factories.

class SimNotification final : public Notification {
 public:
  explicit SimNotification(WorldRef world) : world_(std::move(world)) {}
  void Notify() override { notified_ = true; }
  bool HasBeenNotified() const override { return notified_; }
  bool WaitUntil(absl::Time deadline) override;

 private:
  WorldRef world_;
  bool notified_ = false;
};

class HostEnv final : public Env {
 public:
  HostEnv(World::Impl* world, HostId host) : world_(world), host_(host) {}
  absl::Time Now() const override;
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;

 private:
  World::Impl* world_;
  HostId host_;
};

class SimClientFactory final : public ClientConnectionFactory {
 public:
  SimClientFactory(World::Impl* world, HostId host) : world_(world), host_(host) {}
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override;
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override;

 private:
  World::Impl* world_;
  HostId host_;
};

class SimServerFactory final : public ServerConnectionFactory {
 public:
  SimServerFactory(World::Impl* world, HostId host) : world_(world), host_(host) {}
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address) override;
  absl::StatusOr<std::shared_ptr<Listener>> Listen(const Address& address,
                                                   AcceptCallback on_accept) override;

 private:
  World::Impl* world_;
  HostId host_;
};

struct Host {
  std::string name;
  bool up = true;
  bool crashable = false;
  // Bumped by each crash: an event owned by the host (a timer, a connect step, the restart
  // hook, a delivery to one of its connections) is dropped if the host crashed after it was
  // scheduled, even if the host is up again.
  uint64_t incarnation = 0;
  std::function<void()> restart_hook;
  uint16_t next_port = 49152;
  std::map<uint16_t, std::shared_ptr<SimListener>> listeners;  // open listeners by port
  std::unique_ptr<HostEnv> env;
  std::unique_ptr<SimClientFactory> client;
  std::unique_ptr<SimServerFactory> server;
};

// ---------------------------------------------------------------------------------------------
// World::Impl

struct World::Impl {
  struct Event {
    HostId host;         // the owner, or kNoHost for the world
    bool timer = false;  // an Env timer: traced when it fires, cancelled when its host crashes
    uint64_t incarnation = 0;  // the owner's incarnation when scheduled
    absl::AnyInvocable<void() &&> fn;
  };

  explicit Impl(WorldOptions o)
      : options(std::move(o)),
        generator(options.seed),
        trace(options.trace_capacity),
        ref(std::make_shared<World::Impl*>(this)) {}
  ~Impl();

  // ---- Event loop ----
  uint64_t Schedule(absl::Time when, HostId host, bool timer, absl::AnyInvocable<void() &&> fn);
  bool Cancel(uint64_t id);
  void RunOne();
  bool RunUntil(const std::function<bool()>& pred, absl::Time deadline);
  void Halt(absl::Status why);
  // The promise checker found a broken promise on a connection of `h`: traced, and the world
  // stops with `why`.
  void PromiseBroken(HostId h, absl::Status why);

  // ---- Helpers ----
  bool ValidHost(HostId h) const { return h.value < hosts.size(); }
  Host& host(HostId h) {
    NETLAYER_ASSERT(ValidHost(h), "HostId does not belong to this world");
    return hosts[h.value];
  }
  const std::string& Label(HostId h) const {
    static const std::string* const kWorldLabel = new std::string("-");
    return ValidHost(h) ? hosts[h.value].name : *kWorldLabel;
  }
  void Record(HostId h, TraceKind kind, std::string detail) {
    trace.Add(now - start, Label(h), kind, std::move(detail));
  }
  // A stream event: also fills the structured fields (stream id, the other host, size).
  void RecordStream(HostId h, TraceKind kind, std::string detail, const Link& link,
                    uint64_t bytes = 0);
  absl::Duration Exp(absl::Duration mean) {
    if (mean <= absl::ZeroDuration()) return absl::ZeroDuration();
    const double ns = Exponential(generator, static_cast<double>(absl::ToInt64Nanoseconds(mean)));
    return absl::Nanoseconds(static_cast<int64_t>(std::min(ns, 1e17)));
  }
  absl::Duration Latency() {
    const FaultProfile& p = options.profile;
    absl::Duration d = p.latency_min + Exp(p.latency_mean);
    if (p.tail_probability > 0 && Bernoulli(generator, p.tail_probability)) d += Exp(p.tail_mean);
    return d;
  }
  static std::pair<uint32_t, uint32_t> Dir(HostId from, HostId to) {
    return {from.value, to.value};
  }
  bool Blocked(HostId from, HostId to) const {
    auto it = blocked.find(Dir(from, to));
    return it != blocked.end() && it->second > 0;
  }
  absl::Time ClogEnd(HostId from, HostId to) const {
    auto it = clogs.find(Dir(from, to));
    return it == clogs.end() ? absl::InfinitePast() : it->second;
  }
  std::string Stream(const Link& l, int from_side) const {
    return absl::StrCat("conn#", l.id, " ", Label(l.host[from_side]), "->",
                        Label(l.host[1 - from_side]));
  }

  // ---- Network ----
  void SchedulePump(Link& link, int side);
  void Pump(const std::shared_ptr<Link>& link, int side);
  void ScheduleDelivery(Link& link, int side, absl::Time at);
  void Deliver(const std::shared_ptr<Link>& link, int side);
  void SendFin(Link& link, int side);
  void MaybeTeardown(Link& link);
  void Teardown(Link& link);
  void ResetLink(Link& link, const std::string& detail);
  void DeliverPending(const std::shared_ptr<SimConnection>& conn);
  void ScheduleDeliverPending(const std::shared_ptr<SimConnection>& conn);
  void ResumeRead(SimConnection& conn);
  void Kick();
  void ScheduleKick(absl::Time at);
  void OnLocalClose(SimConnection& conn, ConnectionState::Actions actions);
  // A write that holds the writer claim: sends what the pipe takes now, like a non-blocking send.
  void DirectSend(SimConnection& conn, absl::Span<const std::string_view> pieces);
  // Puts up to `most` bytes of `views` on the wire as one segment (a partial write is drawn from
  // the seed, as in a real send); returns how many bytes went.
  size_t Transmit(Link& link, int side, absl::Span<const std::string_view> views, size_t most);
  // Carries out what a connection's state returned (the sim's mapping of ConnectionState
  // actions: a send event, a FIN, a reset, a deadline check, a release).
  void Carry(SimConnection& conn, ConnectionState::Actions actions);

  // ---- Connect ----
  absl::StatusOr<std::shared_ptr<PendingConnect>> StartConnect(
      HostId from, std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler, bool blocking);
  absl::Status CheckTarget(const Address& a, HostId* target) const;
  void Act(const std::shared_ptr<PendingConnect>& pc, ConnectSchedule::Action action);
  void Try(const std::shared_ptr<PendingConnect>& pc, size_t index, absl::Time deadline);
  void SendSyn(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void SynArrive(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void SynLost(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no, const char* why);
  void Established(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void AttemptFailed(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                     absl::Status status);
  void Finish(const std::shared_ptr<PendingConnect>& pc);
  void CancelConnect(PendingConnect& pc);
  static bool Current(const PendingConnect& pc, uint64_t try_no) {
    return !pc.finished && pc.trying && pc.try_no == try_no;
  }

  // ---- Listeners ----
  void CloseListener(SimListener& l, const char* why);

  // ---- Faults ----
  void AddBlocks(const std::vector<HostId>& from, const std::vector<HostId>& to, bool one_way,
                 int delta);
  absl::Status CheckGroups(const std::vector<HostId>& a, const std::vector<HostId>& b) const;
  std::string Group(const std::vector<HostId>& g) const;
  void ClogInternal(HostId from, HostId to, absl::Duration d, const char* how);
  void CrashInternal(HostId h, const char* how);
  void RestartInternal(HostId h, const char* how);
  void HealAllInternal(const char* how);
  void ScheduleNextFault();
  void RandomFault();

  WorldOptions options;
  Xoshiro256 generator;
  Trace trace;
  WorldRef ref;
  absl::Time start = absl::UnixEpoch();
  absl::Time now = absl::UnixEpoch();
  BasicTimerQueue<Event> events;  // (time, sequence number) order; an event's id is its number
  uint64_t events_run = 0;
  bool destroying = false;  // in ~Impl: nothing may be scheduled any more
  int depth = 0;            // callbacks being run by the world (nested: SetHandler deliveries)
  absl::Status halted;

  std::vector<Host> hosts;
  std::map<uint64_t, std::shared_ptr<Link>> links;  // live streams by id
  std::vector<std::weak_ptr<SimConnection>> all_connections;
  uint64_t next_link_id = 1;
  std::map<uint64_t, std::shared_ptr<PendingConnect>> connects;  // in progress, by id
  uint64_t next_connect_id = 1;

  std::map<std::pair<uint32_t, uint32_t>, int> blocked;  // direction -> partition count
  std::map<std::pair<uint32_t, uint32_t>, absl::Time> clogs;
  uint64_t heal_generation = 0;  // HealAll invalidates pending random heals
  bool faults_stopped = false;
};

namespace {
// Counts a callback being run by the world, so blocking calls inside it are caught.
class CallbackScope {
 public:
  explicit CallbackScope(World::Impl& w) : w_(w) { ++w_.depth; }
  ~CallbackScope() { --w_.depth; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  World::Impl& w_;
};
}  // namespace

void World::Impl::RecordStream(HostId h, TraceKind kind, std::string detail, const Link& link,
                               uint64_t bytes) {
  TraceEvent e;
  e.time = now - start;
  e.host = Label(h);
  e.kind = kind;
  e.detail = std::move(detail);
  e.conn = link.id;
  e.peer = Label(link.host[0] == h ? link.host[1] : link.host[0]);
  e.bytes = bytes;
  trace.Add(std::move(e));
}

World::Impl::~Impl() {
  *ref = nullptr;
  // From here on, code run by the destructors below (an application object owned by a
  // closure or a handler, answering or cleaning up as it dies) cannot schedule, cancel, connect
  // or listen: the containers it would change are being torn down.
  destroying = true;
  // Break handler <-> connection cycles and free what the network holds.
  for (auto& weak : all_connections) {
    if (std::shared_ptr<SimConnection> c = weak.lock()) {
      c->set_link(nullptr);
      c->state().OnRemoteClosed(CloseReason(CloseReason::Kind::kError, "simulation ended"));
      c->state().SetHandler(nullptr);
    }
  }
  for (Host& h : hosts) {
    for (auto& [port, l] : h.listeners) {
      l->MarkClosed();
      l->queue().clear();
    }
    h.listeners.clear();
  }
  // Move each container out before its elements die, so a destructor that reaches back in
  // finds it empty instead of half-destroyed.
  events.Clear();
  {
    std::map<uint64_t, std::shared_ptr<Link>> doomed_links = std::move(links);
    links.clear();
    for (auto& [id, link] : doomed_links) link->end = {};
  }
  {
    std::map<uint64_t, std::shared_ptr<PendingConnect>> doomed_connects = std::move(connects);
    connects.clear();
  }
}

// ---- Event loop ----

uint64_t World::Impl::Schedule(absl::Time when, HostId host, bool timer,
                               absl::AnyInvocable<void() &&> fn) {
  if (destroying) return 0;  // the world is going away: `fn` never runs (0 is no event's id)
  if (when < now) when = now;
  const uint64_t incarnation = ValidHost(host) ? hosts[host.value].incarnation : 0;
  absl::StatusOr<TimerId> id = events.Add(when, Event{host, timer, incarnation, std::move(fn)});
  if (!id.ok()) {
    Halt(absl::ResourceExhaustedError(absl::StrCat("sim: ", id.status().message())));
    return 0;  // the world has halted: `fn` never runs
  }
  return *id;
}

bool World::Impl::Cancel(uint64_t id) {
  if (destroying) return false;
  return events.Cancel(id);
}

void World::Impl::Halt(absl::Status why) {
  if (!halted.ok()) return;
  halted = std::move(why);
  Record(kNoHost, TraceKind::kWorld, absl::StrCat("halted: ", halted.message()));
  Log(LogLayer::kSim)
      .error("simulation halted (seed {}): {}", options.seed, std::string(halted.message()));
}

void World::Impl::PromiseBroken(HostId h, absl::Status why) {
  Record(h, TraceKind::kWorld, std::string(why.message()));
  Halt(std::move(why));
}

void World::Impl::RunOne() {
  std::optional<BasicTimerQueue<Event>::Entry> due = events.PopDue(absl::InfiniteFuture());
  NETLAYER_ASSERT(due.has_value(), "RunOne: no event pending");
  Event& event = due->value;
  if (due->when > now) now = due->when;
  ++events_run;
  // The owner crashed since this was scheduled: the process that wanted it is gone.
  if (ValidHost(event.host) && event.incarnation != hosts[event.host.value].incarnation) return;
  if (event.timer) {
    if (options.trace_timers) {
      Record(event.host, TraceKind::kTimer, absl::StrCat("timer#", due->id, " fired"));
    }
  }
  CallbackScope scope(*this);
  std::move(event.fn)();
}

bool World::Impl::RunUntil(const std::function<bool()>& pred, absl::Time deadline) {
  NETLAYER_ASSERT(depth == 0,
                  "a blocking simulator call (ConnectBlocking, Accept, WaitUntil, RunUntil, "
                  "RunFor) was made from inside a callback run by the world: it could never "
                  "return");
  while (!pred()) {
    if (!halted.ok()) return false;
    // An event at the infinite future (a timer set for "never") never runs.
    const std::optional<absl::Time> next = events.NextDeadline();
    if (!next.has_value() || *next > deadline || *next == absl::InfiniteFuture()) {
      if (deadline != absl::InfiniteFuture() && deadline > now) now = deadline;
      return pred();
    }
    if (events_run >= options.max_events) {
      Halt(absl::ResourceExhaustedError(absl::StrCat(
          "the simulation ran ", events_run, " events (WorldOptions::max_events) at t=",
          absl::FormatDuration(now - start), ": a livelock, or raise max_events")));
      return false;
    }
    RunOne();
  }
  return true;
}

// ---- Network ----

void World::Impl::OnLocalClose(SimConnection& conn, ConnectionState::Actions actions) {
  Link* link = conn.link();
  if (link != nullptr) {
    RecordStream(link->host[conn.side()], TraceKind::kClose,
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
      ScheduleDelivery(*link, 1 - conn.side(), now);
    }
  }
}

void World::Impl::Carry(SimConnection& conn, ConnectionState::Actions a) {
  ConnectionState& state = conn.state();
  Link* link = conn.link();
  if (link != nullptr && !link->dead) {
    if (a.wake_transport && state.HasOutput()) SchedulePump(*link, conn.side());
    if (a.shutdown_write) SendFin(*link, conn.side());
    if (a.reset) {
      RecordStream(link->host[conn.side()], TraceKind::kClose,
                   absl::StrCat("conn#", link->id, " aborted by ", Label(link->host[conn.side()])),
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
    Schedule(std::max(now, plan.deadline), conn.host(), false, [this, keep]() {
      keep->deadline_check = absl::InfiniteFuture();
      Carry(*keep, keep->state().OnDeadline(now));
    });
  }
}

size_t World::Impl::Transmit(Link& link, int side, absl::Span<const std::string_view> views,
                             size_t most) {
  Pipe& p = link.pipe[side];
  const FaultProfile& prof = options.profile;
  NETLAYER_ASSERT(p.bytes <= prof.send_buffer_bytes, "a pipe holds at most its send buffer");
  NETLAYER_ASSERT(!p.fin, "no data after a FIN");
  size_t available = 0;
  for (std::string_view v : views) available += v.size();
  most = std::min({most, available, prof.send_buffer_bytes - p.bytes, prof.max_write_chunk});
  if (most == 0) return 0;
  const size_t n = Bernoulli(generator, prof.full_write_probability)
                       ? most
                       : static_cast<size_t>(UniformInt(generator, 1, most));
  std::string data;
  data.reserve(n);
  for (size_t i = 0; i < views.size() && data.size() < n; ++i) {
    data.append(views[i].substr(0, n - data.size()));
  }
  NETLAYER_ASSERT(data.size() == n, "a segment carries what was taken");
  const absl::Time arrive = std::max(now + Latency(), p.last_arrival);
  p.last_arrival = arrive;
  p.bytes += n;
  p.segments.push_back(Pipe::Segment{std::move(data), 0, arrive});
  RecordStream(link.host[side], TraceKind::kSend,
               absl::StrCat(Stream(link, side), " ", n, " bytes"), link, n);
  ScheduleDelivery(link, side, arrive);
  return n;
}

void World::Impl::DirectSend(SimConnection& conn, absl::Span<const std::string_view> pieces) {
  ConnectionState& state = conn.state();
  Link* link = conn.link();
  NETLAYER_ASSERT(link != nullptr && !link->dead, "an open connection has a live stream");
  Pipe& p = link->pipe[conn.side()];
  const size_t sent = Transmit(*link, conn.side(), pieces, SIZE_MAX);
  state.OnDirectSent(pieces, sent);
  if (p.bytes >= options.profile.send_buffer_bytes) p.sender_waiting = true;
  Carry(conn, state.EndWriterClaim(now));
}

void World::Impl::SchedulePump(Link& link, int side) {
  Pipe& p = link.pipe[side];
  if (p.pump_scheduled || link.dead) return;
  p.pump_scheduled = true;
  std::shared_ptr<Link> keep = links.at(link.id);
  Schedule(now, kNoHost, false, [this, keep, side]() { Pump(keep, side); });
}

void World::Impl::Pump(const std::shared_ptr<Link>& link, int side) {
  Pipe& p = link->pipe[side];
  p.pump_scheduled = false;
  if (link->dead || p.fin) return;
  SimConnection& tx = *link->end[side];
  ConnectionState& state = tx.state();
  if (p.bytes >= options.profile.send_buffer_bytes) {
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
  Carry(tx, state.OnSent(n, now));
}

void World::Impl::SendFin(Link& link, int side) {
  Pipe& p = link.pipe[side];
  if (p.fin || link.dead) return;
  p.fin = true;
  p.fin_at = std::max(now + Latency(), p.last_arrival);
  p.last_arrival = p.fin_at;
  RecordStream(link.host[side], TraceKind::kClose, absl::StrCat(Stream(link, side), " FIN"), link);
  ScheduleDelivery(link, side, p.fin_at);
  MaybeTeardown(link);
}

void World::Impl::ScheduleDelivery(Link& link, int side, absl::Time at) {
  Pipe& p = link.pipe[side];
  if (p.wait != Pipe::Wait::kNone || link.dead) return;
  p.wait = Pipe::Wait::kScheduled;
  std::shared_ptr<Link> keep = links.at(link.id);
  Schedule(at, kNoHost, false, [this, keep, side]() { Deliver(keep, side); });
}

void World::Impl::ScheduleKick(absl::Time at) {
  Schedule(at, kNoHost, false, [this]() { Kick(); });
}

void World::Impl::Kick() {
  for (auto& [id, link] : links) {
    for (int side = 0; side < 2; ++side) {
      if (link->pipe[side].wait == Pipe::Wait::kStalled) {
        link->pipe[side].wait = Pipe::Wait::kNone;
        ScheduleDelivery(*link, side, now);
      }
    }
  }
}

void World::Impl::Deliver(const std::shared_ptr<Link>& link, int side) {
  Pipe& p = link->pipe[side];
  p.wait = Pipe::Wait::kNone;
  if (link->dead) return;
  const HostId from = link->host[side];
  const HostId to = link->host[1 - side];
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
  if (p.segments.empty()) {
    if (!p.fin) return;
    if (p.fin_at > now) {
      ScheduleDelivery(*link, side, p.fin_at);
      return;
    }
    RecordStream(to, TraceKind::kClose, absl::StrCat(Stream(*link, side), " end of stream"), *link);
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
  const FaultProfile& prof = options.profile;
  if (state.released()) {
    // The socket is closed for good: data for it resets the stream, as TCP does.
    ResetLink(*link, "connection reset by peer (data after close)");
    return;
  }
  if (state.phase() != ConnectionState::Phase::kOpen) {
    // Closed locally: what arrives is discarded (the application will never read it).
    RecordStream(to, TraceKind::kDeliver,
                 absl::StrCat(Stream(*link, side), " ", p.bytes, " bytes discarded (closed)"),
                 *link);
    p.segments.clear();
    p.bytes = 0;
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
    const size_t n = Bernoulli(generator, prof.full_read_probability)
                         ? most
                         : static_cast<size_t>(UniformInt(generator, 1, most));
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
    RecordStream(to, TraceKind::kDeliver, absl::StrCat(Stream(*link, side), " ", n, " bytes"),
                 *link, n);
    if (PromiseChecker* checker = rx->checker()) checker->OnReceived(rx->side(), n);
    NoLock lock;
    ReceiveInput(lock, state, *rx, data);
  }
  if (p.sender_waiting && !link->dead) {
    p.sender_waiting = false;
    SchedulePump(*link, side);
  }
  if (link->dead) return;
  if (!p.segments.empty()) {
    ScheduleDelivery(*link, side, std::max(now, p.segments.front().arrive));
  } else if (p.fin) {
    ScheduleDelivery(*link, side, std::max(now, p.fin_at));
  }
}

void World::Impl::MaybeTeardown(Link& link) {
  if (link.dead) return;
  for (const auto& end : link.end) {
    if (end->state().phase() != ConnectionState::Phase::kClosed) return;
  }
  Teardown(link);
}

void World::Impl::Teardown(Link& link) {
  if (link.dead) return;
  link.dead = true;
  for (Pipe& p : link.pipe) {
    p.segments.clear();
    p.bytes = 0;
  }
  for (const auto& end : link.end) end->set_link(nullptr);
  links.erase(link.id);  // events may still hold the Link; they check `dead`
}

void World::Impl::ResetLink(Link& link, const std::string& detail) {
  if (link.dead) return;
  RecordStream(link.host[1], TraceKind::kReset, absl::StrCat("conn#", link.id, " reset: ", detail),
               link);
  std::array<std::shared_ptr<SimConnection>, 2> ends = link.end;
  Teardown(link);
  if (PromiseChecker* checker = ends[0]->checker()) checker->OnBroken();
  for (const auto& end : ends) {
    const ConnectionState::Actions a =
        end->state().OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, detail));
    if (a.wake_reader) ScheduleDeliverPending(end);
  }
}

void World::Impl::DeliverPending(const std::shared_ptr<SimConnection>& conn) {
  CallbackScope scope(*this);
  NoLock lock;
  DeliverEvents(lock, conn->state(), *conn);
  // The same decision posix's SetHandler carries out: deliveries made room, the reader resumes.
  if (conn->state().TakeRoomMade().wake_reader) ResumeRead(*conn);
}

void World::Impl::ScheduleDeliverPending(const std::shared_ptr<SimConnection>& conn) {
  // Owned by the connection's host: dropped if that host crashes before it runs.
  Schedule(now, conn->host(), false, [this, conn]() { DeliverPending(conn); });
}

void World::Impl::ResumeRead(SimConnection& conn) {
  Link* link = conn.link();
  if (link == nullptr) return;
  const int in = 1 - conn.side();
  Pipe& p = link->pipe[in];
  if (p.wait == Pipe::Wait::kReadBlocked && conn.state().WantRead()) {
    p.wait = Pipe::Wait::kNone;
    ScheduleDelivery(*link, in, now);
  }
}

// ---- SimConnection methods ----

std::shared_ptr<ConnectionHandler> SimConnection::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  if (checker_ == nullptr) {
    std::shared_ptr<ConnectionHandler> old = state_.SetHandler(std::move(handler));
    if (World::Impl* w = *world_) w->DeliverPending(shared_from_this());
    return old;
  }
  // The application's handler goes in wrapped by the promise checker; it gets its own back.
  std::shared_ptr<ConnectionHandler> old =
      state_.SetHandler(checker_->Wrap(side_, std::move(handler)));
  if (World::Impl* w = *world_) {
    checker_->BeginSetHandler(side_);
    w->DeliverPending(shared_from_this());
    checker_->EndSetHandler(side_);
  }
  return PromiseChecker::Unwrap(std::move(old));
}

absl::Status SimConnection::WriteV(absl::Span<const std::string_view> pieces) {
  World::Impl* w = *world_;
  if (w == nullptr) return absl::FailedPreconditionError("write after the simulation ended");
  const bool was_open = state_.IsOpen();
  ConnectionState::WriteStart start = state_.BeginWrite(pieces);
  if (checker_ != nullptr) checker_->OnWrite(side_, pieces, start.status, was_open);
  if (start.send_direct) {
    w->DirectSend(*this, pieces);
  } else {
    w->Carry(*this, start.actions);
  }
  return start.status;
}

void SimConnection::Close() {
  // Always tell the state: after a remote close seen but not yet delivered (a reset, an end of
  // stream queued for a handler not yet set), Close() still drops the queued input and close
  // notification (connection.h: no ConnectionClosed after a local Close). Idempotent.
  World::Impl* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  const bool was_open = state_.phase() == ConnectionState::Phase::kOpen;
  ConnectionState::Actions a = state_.Close(w != nullptr ? w->now : absl::InfinitePast());
  if (w == nullptr) return;
  if (was_open) {
    w->OnLocalClose(*this, a);
  } else {
    w->Carry(*this, a);
  }
}

void SimConnection::Abort() {
  World::Impl* w = *world_;
  if (checker_ != nullptr) checker_->OnLocalClose(side_);
  ConnectionState::Actions a = state_.Abort();
  if (w != nullptr) w->Carry(*this, a);
}

// ---- Listener ----

std::shared_ptr<Connection> SimListener::Accept(absl::Time deadline) {
  World::Impl* w = *world_;
  if (w == nullptr || callback_) return nullptr;
  w->RunUntil([this]() { return !queue_.empty() || !open_; }, deadline);
  if (queue_.empty()) return nullptr;
  std::shared_ptr<SimConnection> c = std::move(queue_.front());
  queue_.pop_front();
  return c;
}

void SimListener::Close() {
  if (!open_) return;
  World::Impl* w = *world_;
  if (w == nullptr) {
    open_ = false;
    return;
  }
  w->CloseListener(*this, "closed");
}

void World::Impl::CloseListener(SimListener& l, const char* why) {
  if (!l.IsOpen()) return;
  l.MarkClosed();
  Record(l.host(), TraceKind::kListen, absl::StrCat("listener ", l.address().ToString(), " ", why));
  // Connections not yet accepted are reset, as closing a listening socket does.
  std::deque<std::shared_ptr<SimConnection>> pending = std::move(l.queue());
  l.queue().clear();
  for (const auto& c : pending) {
    if (c->link() != nullptr) ResetLink(*c->link(), "listener closed before accept");
  }
  // Erasing may destroy the listener: keep it alive to the end of this call.
  Host& h = host(l.host());
  auto it = h.listeners.find(l.address().port());
  if (it != h.listeners.end() && it->second.get() == &l) {
    std::shared_ptr<SimListener> keep = std::move(it->second);
    h.listeners.erase(it);
  }
}

absl::StatusOr<std::shared_ptr<Listener>> SimServerFactory::Listen(const Address& address) {
  return Listen(address, nullptr);
}

absl::StatusOr<std::shared_ptr<Listener>> SimServerFactory::Listen(const Address& address,
                                                                   AcceptCallback on_accept) {
  World::Impl& w = *world_;
  if (w.destroying) return absl::FailedPreconditionError("sim: listen while the world is ending");
  Host& h = w.host(host_);
  if (address.kind() != Address::Kind::kHostName) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: listen on '", address.ToString(),
                     "': the simulator takes host-name addresses such as 'server:8100'"));
  }
  if (address.host() != h.name) {
    return absl::InvalidArgumentError(absl::StrCat("sim: host '", h.name, "' cannot listen on '",
                                                   address.ToString(), "' (another host's name)"));
  }
  if (!h.up) return absl::UnavailableError(absl::StrCat("sim: host '", h.name, "' is down"));
  uint16_t port = address.port();
  if (port == 0) {
    for (uint32_t tries = 0; tries < 16384; ++tries) {
      const uint16_t candidate = h.next_port;
      h.next_port = h.next_port == 65535 ? 49152 : static_cast<uint16_t>(h.next_port + 1);
      if (!h.listeners.contains(candidate)) {
        port = candidate;
        break;
      }
    }
    if (port == 0) return absl::ResourceExhaustedError("sim: no free ephemeral port");
  }
  if (h.listeners.contains(port)) {
    return absl::AlreadyExistsError(
        absl::StrCat("sim: address ", h.name, ":", port, " is already in use by a listener"));
  }
  auto listener = std::make_shared<SimListener>(w.ref, host_, Address::HostName(h.name, port),
                                                std::move(on_accept));
  h.listeners.emplace(port, listener);
  w.Record(host_, TraceKind::kListen,
           absl::StrCat("listen ", listener->address().ToString(),
                        listener->callback() ? " (callback)" : "", " backlog ",
                        w.options.profile.accept_backlog));
  return listener;
}

// ---- Connect ----

absl::Status World::Impl::CheckTarget(const Address& a, HostId* target) const {
  if (a.kind() != Address::Kind::kHostName) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: cannot connect to '", a.ToString(),
                     "': the simulator takes host-name addresses such as 'server:8100'"));
  }
  for (uint32_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].name == a.host()) {
      if (target != nullptr) *target = HostId{i};
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sim: cannot connect to '", a.ToString(), "': unknown host '", a.host(), "'"));
}

absl::StatusOr<std::shared_ptr<PendingConnect>> World::Impl::StartConnect(
    HostId from, std::vector<Address> addresses, ConnectOptions options,
    std::shared_ptr<ConnectHandler> handler, bool blocking) {
  if (destroying) return absl::FailedPreconditionError("sim: connect while the world is ending");
  if (handler == nullptr) return absl::InvalidArgumentError("sim: connect needs a handler");
  for (const Address& a : addresses) {
    if (absl::Status s = CheckTarget(a, nullptr); !s.ok()) return s;
  }
  absl::StatusOr<ConnectSchedule> schedule =
      ConnectSchedule::Create(addresses, options, &generator);
  if (!schedule.ok()) return schedule.status();
  Host& h = host(from);
  if (!h.up) {
    return absl::FailedPreconditionError(absl::StrCat("sim: host '", h.name, "' is down"));
  }
  const uint64_t id = next_connect_id++;
  auto pc = std::make_shared<PendingConnect>(ref, id, from, *std::move(schedule),
                                             std::move(handler), blocking);
  connects.emplace(id, pc);
  std::vector<std::string> names;
  for (const Address& a : addresses) names.push_back(a.ToString());
  Record(from, TraceKind::kConnect,
         absl::StrCat("connect#", id, " start [", absl::StrJoin(names, ", "), "]"));
  Schedule(now, from, false, [this, pc]() {
    if (!pc->finished) Act(pc, pc->schedule.Start(now));
  });
  return pc;
}

void World::Impl::Act(const std::shared_ptr<PendingConnect>& pc, ConnectSchedule::Action action) {
  using Kind = ConnectSchedule::Action::Kind;
  switch (action.kind) {
    case Kind::kTryAddress:
      Try(pc, action.address_index, action.attempt_deadline);
      return;
    case Kind::kWaitUntil: {
      Record(pc->host, TraceKind::kConnect,
             absl::StrCat("connect#", pc->id, " round ", pc->schedule.round(), " failed, wait ",
                          absl::FormatDuration(action.wake_at - now)));
      Schedule(action.wake_at, pc->host, false, [this, pc]() {
        if (!pc->finished) Act(pc, pc->schedule.OnWakeUp(now));
      });
      return;
    }
    case Kind::kConnected: {
      std::shared_ptr<Link> link = std::move(pc->link);
      RecordStream(pc->host, TraceKind::kConnect,
                   absl::StrCat("connect#", pc->id, " connected conn#", link->id), *link);
      Finish(pc);
      pc->handler->Connected(link->end[0]);
      return;
    }
    case Kind::kFailed: {
      Record(pc->host, TraceKind::kConnect,
             absl::StrCat("connect#", pc->id, " failed: ", action.status.ToString()));
      Finish(pc);
      pc->handler->FailedConnection(action.status);
      return;
    }
  }
}

void World::Impl::Finish(const std::shared_ptr<PendingConnect>& pc) {
  pc->finished = true;
  pc->trying = false;
  if (pc->deadline_event != 0) Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  connects.erase(pc->id);
}

void World::Impl::Try(const std::shared_ptr<PendingConnect>& pc, size_t index,
                      absl::Time deadline) {
  const uint64_t try_no = ++pc->try_no;
  pc->trying = true;
  pc->target_address = pc->schedule.addresses()[index];
  NETLAYER_ASSERT(CheckTarget(pc->target_address, &pc->target).ok(), "targets checked at start");
  pc->rto = absl::Seconds(1);
  Record(pc->host, TraceKind::kConnect,
         absl::StrCat("connect#", pc->id, " round ", pc->schedule.round(), " try ",
                      pc->target_address.ToString()));
  // The schedule's deadline is the attempt timeout or, if sooner, the give-up deadline of the
  // whole connect: say which one cut the attempt short.
  const ConnectOptions& copts = pc->schedule.options();
  const absl::Time started = now;
  const bool gives_up = deadline < now + copts.attempt_timeout;
  pc->deadline_event = Schedule(deadline, pc->host, false, [this, pc, try_no, started, gives_up]() {
    if (!Current(*pc, try_no)) return;
    pc->deadline_event = 0;
    const ConnectOptions& o = pc->schedule.options();
    std::string why =
        gives_up ? absl::StrCat("connect to ", pc->target_address.ToString(), " stopped after ",
                                absl::FormatDuration(now - started), ": give_up_after (",
                                absl::FormatDuration(o.give_up_after), ") reached")
                 : absl::StrCat("connect to ", pc->target_address.ToString(), " timed out after ",
                                absl::FormatDuration(o.attempt_timeout));
    AttemptFailed(pc, try_no, absl::DeadlineExceededError(std::move(why)));
  });
  const FaultProfile& prof = options.profile;
  if (!faults_stopped && prof.connect_fail_probability > 0 &&
      Bernoulli(generator, prof.connect_fail_probability)) {
    Record(pc->host, TraceKind::kFault,
           absl::StrCat("connect#", pc->id, " will fail fast (injected)"));
    Schedule(now + Latency(), pc->host, false, [this, pc, try_no]() {
      AttemptFailed(pc, try_no,
                    absl::UnavailableError(absl::StrCat(
                        "connect to ", pc->target_address.ToString(), " failed (injected fault)")));
    });
    return;
  }
  SendSyn(pc, try_no);
}

void World::Impl::SendSyn(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  Schedule(now + Latency(), kNoHost, false, [this, pc, try_no]() { SynArrive(pc, try_no); });
}

void World::Impl::SynLost(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                          const char* why) {
  Record(pc->host, TraceKind::kConnect,
         absl::StrCat("connect#", pc->id, " SYN to ", pc->target_address.ToString(), " lost (", why,
                      "), retransmit in ", absl::FormatDuration(pc->rto)));
  const absl::Time at = now + pc->rto;
  pc->rto *= 2;
  Schedule(at, pc->host, false, [this, pc, try_no]() { SendSyn(pc, try_no); });
}

void World::Impl::SynArrive(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  const HostId from = pc->host;
  const HostId to = pc->target;
  if (!host(to).up) return SynLost(pc, try_no, "host down");
  if (Blocked(from, to)) return SynLost(pc, try_no, "partition");
  if (const absl::Time until = ClogEnd(from, to); until > now) {
    Schedule(until, kNoHost, false, [this, pc, try_no]() { SynArrive(pc, try_no); });
    return;
  }
  Host& server = host(to);
  auto it = server.listeners.find(pc->target_address.port());
  if (it == server.listeners.end()) {
    if (Blocked(to, from)) return SynLost(pc, try_no, "partition on the way back");
    Schedule(now + Latency(), kNoHost, false, [this, pc, try_no]() {
      AttemptFailed(pc, try_no,
                    absl::UnavailableError(absl::StrCat(
                        "connect to ", pc->target_address.ToString(), ": connection refused")));
    });
    return;
  }
  std::shared_ptr<SimListener> listener = it->second;
  if (!listener->callback() && listener->queue().size() >= options.profile.accept_backlog) {
    return SynLost(pc, try_no, "accept queue full");
  }
  if (Blocked(to, from)) return SynLost(pc, try_no, "partition on the way back");
  // The handshake completes at the listener now; the client learns it one latency later.
  Host& client = host(from);
  const uint16_t client_port = client.next_port;
  client.next_port = client.next_port == 65535 ? 49152 : static_cast<uint16_t>(client_port + 1);
  auto link = std::make_shared<Link>();
  link->id = next_link_id++;
  link->host = {from, to};
  const Address client_address = Address::HostName(client.name, client_port);
  link->end[0] = std::make_shared<SimConnection>(ref, link.get(), 0, from, client_address,
                                                 listener->address(), options.connection_limits);
  link->end[1] = std::make_shared<SimConnection>(ref, link.get(), 1, to, listener->address(),
                                                 client_address, options.connection_limits);
  std::shared_ptr<PromiseChecker> checker;
  if (options.check_promises) {
    checker = std::make_shared<PromiseChecker>(
        link->id, std::array<std::string, 2>{client.name, Label(to)},
        [r = ref, end_hosts = link->host](int side, absl::Status why) {
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
  pc->link = link;
  RecordStream(to, TraceKind::kAccept,
               absl::StrCat("conn#", link->id, " from ", client_address.ToString(), " at ",
                            listener->address().ToString(), " (connect#", pc->id, ")"),
               *link);
  const absl::Time back = std::max(now + Latency(), ClogEnd(to, from));
  Schedule(back, kNoHost, false, [this, pc, try_no]() { Established(pc, try_no); });
  if (listener->callback()) {
    listener->callback()(link->end[1]);
  } else {
    listener->queue().push_back(link->end[1]);
  }
}

void World::Impl::Established(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no) {
  if (!Current(*pc, try_no)) return;
  if (pc->link == nullptr || pc->link->dead) {
    pc->link = nullptr;
    AttemptFailed(pc, try_no,
                  absl::UnavailableError(absl::StrCat("connect to ", pc->target_address.ToString(),
                                                      ": connection reset during the handshake")));
    return;
  }
  if (pc->deadline_event != 0) Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  pc->trying = false;
  Act(pc, pc->schedule.OnAttemptSucceeded(now));
}

void World::Impl::AttemptFailed(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                                absl::Status status) {
  if (!Current(*pc, try_no)) return;
  if (pc->deadline_event != 0) Cancel(pc->deadline_event);
  pc->deadline_event = 0;
  pc->trying = false;
  if (pc->link != nullptr) {
    std::shared_ptr<Link> link = std::move(pc->link);
    ResetLink(*link, "connect attempt abandoned by the client");
  }
  Record(pc->host, TraceKind::kConnect,
         absl::StrCat("connect#", pc->id, " attempt failed: ", status.message()));
  Act(pc, pc->schedule.OnAttemptFailed(now, status));
}

void World::Impl::CancelConnect(PendingConnect& pc) {
  if (pc.finished) return;
  std::shared_ptr<PendingConnect> keep = connects.at(pc.id);
  pc.schedule.Cancel();
  if (pc.link != nullptr) {
    std::shared_ptr<Link> link = std::move(pc.link);
    ResetLink(*link, "connect cancelled");
  }
  Record(pc.host, TraceKind::kConnect, absl::StrCat("connect#", pc.id, " cancelled"));
  Finish(keep);
}

void PendingConnect::Cancel() {
  if (World::Impl* w = *world) w->CancelConnect(*this);
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
  absl::StatusOr<std::shared_ptr<PendingConnect>> pc =
      world_->StartConnect(host_, std::move(addresses), options, std::move(handler), false);
  if (!pc.ok()) return pc.status();
  return std::shared_ptr<ConnectAttempt>(*std::move(pc));
}

absl::StatusOr<std::shared_ptr<Connection>> SimClientFactory::ConnectBlocking(
    std::vector<Address> addresses, ConnectOptions options) {
  NETLAYER_ASSERT(world_->depth == 0,
                  "ConnectBlocking was called from inside a callback run by the simulator");
  auto handler = std::make_shared<BlockingConnectHandler>();
  absl::StatusOr<std::shared_ptr<PendingConnect>> pc =
      world_->StartConnect(host_, std::move(addresses), options, handler, true);
  if (!pc.ok()) return pc.status();
  world_->RunUntil([&handler]() { return handler->done; }, absl::InfiniteFuture());
  if (!handler->done) {
    (*pc)->Cancel();
    if (!world_->halted.ok()) return world_->halted;
    return absl::UnavailableError("sim: connect cannot finish: the world has no events left");
  }
  return handler->result;
}

// ---- Env ----

bool SimNotification::WaitUntil(absl::Time deadline) {
  if (notified_) return true;
  World::Impl* w = *world_;
  if (w == nullptr) return false;
  return w->RunUntil([this]() { return notified_; }, deadline);
}

absl::Time HostEnv::Now() const { return world_->now; }

TimerId HostEnv::RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  return world_->Schedule(when, host_, true, std::move(fn));
}

bool HostEnv::CancelTimer(TimerId id) {
  // An Env cancels only timers: an id naming one of the world's own events is not its to cancel.
  const auto* event = world_->events.Find(id);
  return event != nullptr && event->timer && world_->Cancel(id);
}

std::unique_ptr<Notification> HostEnv::NewNotification() {
  return std::make_unique<SimNotification>(world_->ref);
}

// ---- Faults ----

std::string World::Impl::Group(const std::vector<HostId>& g) const {
  std::vector<std::string> names;
  for (HostId h : g) names.push_back(Label(h));
  return absl::StrCat("[", absl::StrJoin(names, ","), "]");
}

absl::Status World::Impl::CheckGroups(const std::vector<HostId>& a,
                                      const std::vector<HostId>& b) const {
  if (a.empty() || b.empty()) return absl::InvalidArgumentError("sim: a host group is empty");
  for (const auto* g : {&a, &b}) {
    for (HostId h : *g) {
      if (!ValidHost(h)) {
        return absl::InvalidArgumentError(absl::StrCat("sim: unknown host id ", h.value));
      }
    }
  }
  for (HostId x : a) {
    if (std::find(b.begin(), b.end(), x) != b.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sim: host '", Label(x), "' is on both sides of a partition"));
    }
  }
  return absl::OkStatus();
}

void World::Impl::AddBlocks(const std::vector<HostId>& from, const std::vector<HostId>& to,
                            bool one_way, int delta) {
  for (HostId a : from) {
    for (HostId b : to) {
      blocked[Dir(a, b)] += delta;
      if (!one_way) blocked[Dir(b, a)] += delta;
    }
  }
  std::erase_if(blocked, [](const auto& kv) { return kv.second <= 0; });
}

void World::Impl::ClogInternal(HostId from, HostId to, absl::Duration d, const char* how) {
  absl::Time& until = clogs[Dir(from, to)];
  until = std::max(until, now + d);
  Record(
      kNoHost, TraceKind::kFault,
      absl::StrCat(how, " clog ", Label(from), "->", Label(to), " for ", absl::FormatDuration(d)));
  ScheduleKick(until);
}

void World::Impl::CrashInternal(HostId h, const char* how) {
  Host& hh = host(h);
  hh.up = false;
  ++hh.incarnation;
  Record(h, TraceKind::kHost, absl::StrCat(how, " crash"));
  // Timers of the dead process.
  events.CancelIf([h](const Event& event) { return event.timer && event.host == h; });
  // Listeners vanish.
  std::vector<std::shared_ptr<SimListener>> listeners;
  for (const auto& [port, l] : hh.listeners) listeners.push_back(l);
  for (const auto& l : listeners) CloseListener(*l, "gone: host crashed");
  // Pending connects of the dead process.
  std::vector<std::shared_ptr<PendingConnect>> pcs;
  for (const auto& [id, pc] : connects) {
    if (pc->host == h) pcs.push_back(pc);
  }
  for (const auto& pc : pcs) {
    if (pc->link != nullptr) {
      std::shared_ptr<Link> link = std::move(pc->link);
      ResetLink(*link, "host crashed during the handshake");
    }
    Record(h, TraceKind::kConnect, absl::StrCat("connect#", pc->id, " ended: host crashed"));
    Finish(pc);
    if (pc->blocking) {
      pc->handler->FailedConnection(
          absl::UnavailableError(absl::StrCat("sim: host '", hh.name, "' crashed")));
    }
  }
  // Connections break.
  std::vector<std::shared_ptr<Link>> broken;
  for (const auto& [id, link] : links) {
    if (link->host[0] == h || link->host[1] == h) broken.push_back(link);
  }
  for (const auto& link : broken) {
    RecordStream(h, TraceKind::kReset, absl::StrCat("conn#", link->id, " broken: host crashed"),
                 *link);
    std::array<std::shared_ptr<SimConnection>, 2> ends = link->end;
    Teardown(*link);
    if (PromiseChecker* checker = ends[0]->checker()) checker->OnBroken();
    for (int side = 0; side < 2; ++side) {
      ConnectionState& state = ends[side]->state();
      if (link->host[side] == h) {
        // The process is dead: its handlers are never called again.
        state.SetHandler(nullptr);
        state.OnRemoteClosed(CloseReason(CloseReason::Kind::kHostDown, "host crashed"));
      } else if (state
                     .OnRemoteClosed(CloseReason(CloseReason::Kind::kReset,
                                                 absl::StrCat("peer host ", hh.name, " crashed")))
                     .wake_reader) {
        ScheduleDeliverPending(ends[side]);
      }
    }
  }
  // Every end the dead process still holds, including streams that ended just before (a reset
  // at the same instant, its notification still queued): its handlers are never called again.
  std::vector<std::shared_ptr<SimConnection>> own;
  for (const auto& weak : all_connections) {
    std::shared_ptr<SimConnection> c = weak.lock();
    if (c != nullptr && c->host() == h) own.push_back(std::move(c));
  }
  for (const auto& c : own) c->state().SetHandler(nullptr);  // may run handler destructors
}

void World::Impl::RestartInternal(HostId h, const char* how) {
  Host& hh = host(h);
  hh.up = true;
  Record(h, TraceKind::kHost, absl::StrCat(how, " restart"));
  Schedule(now, h, false, [this, h]() {
    if (!host(h).up) return;
    if (std::function<void()> hook = host(h).restart_hook) hook();
  });
}

void World::Impl::HealAllInternal(const char* how) {
  blocked.clear();
  clogs.clear();
  ++heal_generation;
  Record(kNoHost, TraceKind::kFault, absl::StrCat(how, " heal all partitions and clogs"));
  Kick();
}

void World::Impl::ScheduleNextFault() {
  const FaultProfile& p = options.profile;
  const double total = p.clog_rate + p.partition_rate + p.reset_rate + p.crash_rate;
  if (faults_stopped || total <= 0) return;
  const absl::Time at = now + Exp(absl::Seconds(1.0 / total));
  Schedule(at, kNoHost, false, [this]() {
    if (faults_stopped) return;
    RandomFault();
    ScheduleNextFault();
  });
}

void World::Impl::RandomFault() {
  const FaultProfile& p = options.profile;
  const double total = p.clog_rate + p.partition_rate + p.reset_rate + p.crash_rate;
  double x = UniformDouble(generator) * total;
  const uint64_t n = hosts.size();
  if ((x -= p.clog_rate) < 0) {
    if (n < 2) return;
    const uint64_t a = UniformInt(generator, 0, n - 1);
    uint64_t b = UniformInt(generator, 0, n - 2);
    if (b >= a) ++b;
    ClogInternal(HostId{static_cast<uint32_t>(a)}, HostId{static_cast<uint32_t>(b)},
                 Exp(p.clog_mean), "random");
  } else if ((x -= p.partition_rate) < 0) {
    if (n < 2) return;
    std::vector<HostId> side_a, side_b;
    for (uint32_t i = 0; i < n; ++i) {
      (Bernoulli(generator, 0.5) ? side_a : side_b).push_back(HostId{i});
    }
    if (side_a.empty() || side_b.empty()) {
      const uint32_t lone = static_cast<uint32_t>(UniformInt(generator, 0, n - 1));
      side_a = {HostId{lone}};
      side_b.clear();
      for (uint32_t i = 0; i < n; ++i) {
        if (i != lone) side_b.push_back(HostId{i});
      }
    }
    const bool one_way = Bernoulli(generator, p.one_way_probability);
    const absl::Duration d = Exp(p.partition_mean);
    AddBlocks(side_a, side_b, one_way, +1);
    Record(kNoHost, TraceKind::kFault,
           absl::StrCat("random partition ", Group(side_a), one_way ? " -> " : " <-> ",
                        Group(side_b), " for ", absl::FormatDuration(d)));
    const uint64_t generation = heal_generation;
    Schedule(now + d, kNoHost, false, [this, side_a, side_b, one_way, generation]() {
      if (generation != heal_generation) return;
      AddBlocks(side_a, side_b, one_way, -1);
      Record(kNoHost, TraceKind::kFault,
             absl::StrCat("random partition ", Group(side_a), one_way ? " -> " : " <-> ",
                          Group(side_b), " healed"));
      Kick();
    });
  } else if ((x -= p.reset_rate) < 0) {
    if (links.empty()) return;
    auto it = links.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(UniformInt(generator, 0, links.size() - 1)));
    std::shared_ptr<Link> link = it->second;
    Record(kNoHost, TraceKind::kFault, absl::StrCat("random reset of conn#", link->id));
    ResetLink(*link, "connection reset by peer (injected)");
  } else {
    std::vector<HostId> candidates;
    for (uint32_t i = 0; i < n; ++i) {
      if (hosts[i].up && hosts[i].crashable) candidates.push_back(HostId{i});
    }
    if (candidates.empty()) return;
    const HostId h = candidates[UniformInt(generator, 0, candidates.size() - 1)];
    CrashInternal(h, "random");
    // Only this crash's restart: a later scripted restart and crash must not be cut short.
    const uint64_t incarnation = host(h).incarnation;
    Schedule(now + Exp(p.down_mean), kNoHost, false, [this, h, incarnation]() {
      if (!faults_stopped && !host(h).up && host(h).incarnation == incarnation) {
        RestartInternal(h, "random");
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// World: the public face.

absl::StatusOr<std::unique_ptr<World>> World::Create(WorldOptions options) {
  if (absl::Status s = options.profile.Validate(); !s.ok()) return s;
  if (options.trace_capacity == 0) {
    return absl::InvalidArgumentError("sim: trace_capacity must be at least 1");
  }
  if (options.max_events == 0) return absl::InvalidArgumentError("sim: max_events is 0");
  return std::make_unique<World>(std::move(options));
}

World::World(WorldOptions options) {
  absl::Status valid = options.profile.Validate();
  NETLAYER_ASSERT(valid.ok(), "World: invalid fault profile (use World::Create for the error)");
  NETLAYER_ASSERT(options.trace_capacity > 0 && options.max_events > 0, "World: bad options");
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->Record(kNoHost, TraceKind::kWorld,
                absl::StrCat("start seed ", impl_->options.seed, " profile ",
                             impl_->options.profile.ToString()));
  impl_->ScheduleNextFault();
}

World::~World() = default;

uint64_t World::seed() const { return impl_->options.seed; }
const FaultProfile& World::profile() const { return impl_->options.profile; }
Generator& World::generator() { return impl_->generator; }
absl::Time World::Now() const { return impl_->now; }
absl::Time World::start() const { return impl_->start; }

absl::StatusOr<HostId> World::AddHost(std::string name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("sim: a host name must have 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("sim: host name '", name, "' may only use [A-Za-z0-9._-]"));
    }
  }
  if (FindHost(name).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("sim: host '", name, "' already exists"));
  }
  const HostId id{static_cast<uint32_t>(impl_->hosts.size())};
  Host& h = impl_->hosts.emplace_back();
  h.name = std::move(name);
  h.env = std::make_unique<HostEnv>(impl_.get(), id);
  h.client = std::make_unique<SimClientFactory>(impl_.get(), id);
  h.server = std::make_unique<SimServerFactory>(impl_.get(), id);
  impl_->Record(id, TraceKind::kHost, "add");
  return id;
}

absl::StatusOr<HostId> World::FindHost(std::string_view name) const {
  for (uint32_t i = 0; i < impl_->hosts.size(); ++i) {
    if (impl_->hosts[i].name == name) return HostId{i};
  }
  return absl::NotFoundError(absl::StrCat("sim: unknown host '", std::string(name), "'"));
}

const std::string& World::HostName(HostId host) const {
  NETLAYER_ASSERT(impl_->ValidHost(host), "HostId does not belong to this world");
  return impl_->hosts[host.value].name;
}
bool World::IsUp(HostId host) const {
  NETLAYER_ASSERT(impl_->ValidHost(host), "HostId does not belong to this world");
  return impl_->hosts[host.value].up;
}
std::vector<HostId> World::Hosts() const {
  std::vector<HostId> out;
  for (uint32_t i = 0; i < impl_->hosts.size(); ++i) out.push_back(HostId{i});
  return out;
}
Env& World::env(HostId host) { return *impl_->host(host).env; }
ClientConnectionFactory& World::client_factory(HostId host) { return *impl_->host(host).client; }
ServerConnectionFactory& World::server_factory(HostId host) { return *impl_->host(host).server; }

bool World::RunUntil(const std::function<bool()>& pred, absl::Time deadline) {
  return impl_->RunUntil(pred, deadline);
}

absl::Status World::RunFor(absl::Duration d) {
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: RunFor needs a duration >= 0, got ", absl::FormatDuration(d)));
  }
  impl_->RunUntil([] { return false; }, impl_->now + d);
  return impl_->halted;
}

absl::Status World::RunUntilIdle(absl::Duration limit) {
  if (limit < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sim: RunUntilIdle needs a limit >= 0");
  }
  const absl::Time deadline = impl_->now + limit;
  const bool idle = impl_->RunUntil([this] { return impl_->events.empty(); }, deadline);
  if (!impl_->halted.ok()) return impl_->halted;
  if (!idle) {
    return absl::DeadlineExceededError(
        absl::StrCat("sim: still ", impl_->events.size(), " events pending after running ",
                     absl::FormatDuration(limit), " of virtual time"));
  }
  return absl::OkStatus();
}

absl::Status World::At(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  if (when < impl_->now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sim: At(", absl::FormatDuration(when - impl_->start), ") is in the past (now ",
        absl::FormatDuration(impl_->now - impl_->start), ")"));
  }
  if (!fn) return absl::InvalidArgumentError("sim: At needs a function");
  impl_->Schedule(when, kNoHost, false, std::move(fn));
  return absl::OkStatus();
}

void World::Stop(absl::Status why) {
  if (why.ok()) why = absl::InternalError("World::Stop called with an OK status");
  if (!impl_->halted.ok()) return;
  impl_->halted = std::move(why);
  impl_->Record(kNoHost, TraceKind::kWorld, absl::StrCat("stopped: ", impl_->halted.ToString()));
}

bool World::InCallback() const { return impl_->depth > 0; }
absl::Status World::status() const { return impl_->halted; }
uint64_t World::events_run() const { return impl_->events_run; }
size_t World::pending_events() const { return impl_->events.size(); }

absl::Status World::Partition(const std::vector<HostId>& from, const std::vector<HostId>& to,
                              bool one_way) {
  if (absl::Status s = impl_->CheckGroups(from, to); !s.ok()) return s;
  impl_->AddBlocks(from, to, one_way, +1);
  impl_->Record(kNoHost, TraceKind::kFault,
                absl::StrCat("scripted partition ", impl_->Group(from), one_way ? " -> " : " <-> ",
                             impl_->Group(to)));
  return absl::OkStatus();
}

absl::Status World::Heal(const std::vector<HostId>& a, const std::vector<HostId>& b) {
  if (absl::Status s = impl_->CheckGroups(a, b); !s.ok()) return s;
  for (HostId x : a) {
    for (HostId y : b) {
      impl_->blocked.erase(Impl::Dir(x, y));
      impl_->blocked.erase(Impl::Dir(y, x));
    }
  }
  impl_->Record(kNoHost, TraceKind::kFault,
                absl::StrCat("scripted heal ", impl_->Group(a), " <-> ", impl_->Group(b)));
  impl_->Kick();
  return absl::OkStatus();
}

void World::HealAll() { impl_->HealAllInternal("scripted"); }

absl::Status World::Clog(HostId from, HostId to, absl::Duration d) {
  if (!impl_->ValidHost(from) || !impl_->ValidHost(to)) {
    return absl::InvalidArgumentError("sim: Clog: unknown host id");
  }
  if (from == to) return absl::InvalidArgumentError("sim: Clog needs two different hosts");
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: Clog needs a finite duration >= 0, got ", absl::FormatDuration(d)));
  }
  impl_->ClogInternal(from, to, d, "scripted");
  return absl::OkStatus();
}

absl::Status World::Reset(Connection& c) {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: Reset: not a simulated connection");
  if (*sc->world_ref() != impl_.get()) {
    return absl::InvalidArgumentError("sim: Reset: a connection of another world");
  }
  Link* link = sc->link();
  if (link == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: Reset: conn#", sc->stream_id(), " has already ended"));
  }
  impl_->Record(link->host[sc->side()], TraceKind::kFault,
                absl::StrCat("scripted reset of conn#", link->id));
  impl_->ResetLink(*link, "connection reset (scripted)");
  return absl::OkStatus();
}

absl::Status World::Crash(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Crash: unknown host id");
  if (!impl_->hosts[host.value].up) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", impl_->hosts[host.value].name, "' is already down"));
  }
  impl_->CrashInternal(host, "scripted");
  return absl::OkStatus();
}

absl::Status World::Restart(HostId host) {
  if (!impl_->ValidHost(host)) return absl::InvalidArgumentError("sim: Restart: unknown host id");
  if (impl_->hosts[host.value].up) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: host '", impl_->hosts[host.value].name, "' is up"));
  }
  impl_->RestartInternal(host, "scripted");
  return absl::OkStatus();
}

void World::SetRestartHook(HostId host, std::function<void()> hook) {
  impl_->host(host).restart_hook = std::move(hook);
}

void World::SetCrashable(HostId host, bool crashable) { impl_->host(host).crashable = crashable; }

void World::StopFaults() {
  impl_->faults_stopped = true;
  impl_->Record(kNoHost, TraceKind::kWorld, "liveness phase: random faults stopped");
  impl_->HealAllInternal("liveness");
  for (uint32_t i = 0; i < impl_->hosts.size(); ++i) {
    if (!impl_->hosts[i].up) impl_->RestartInternal(HostId{i}, "liveness");
  }
}

bool World::faults_stopped() const { return impl_->faults_stopped; }

absl::StatusOr<uint64_t> World::ConnectionId(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  return sc->stream_id();
}

absl::StatusOr<std::shared_ptr<ConnectionHandler>> World::InstalledHandler(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  // Read the slot by swapping it out and back: nothing is delivered by ConnectionState here.
  std::shared_ptr<ConnectionHandler> installed = sc->state().SetHandler(nullptr);
  sc->state().SetHandler(installed);
  return installed;
}

absl::StatusOr<size_t> World::InFlightBytes(Connection& c) const {
  auto* sc = dynamic_cast<SimConnection*>(&c);
  if (sc == nullptr) return absl::InvalidArgumentError("sim: not a simulated connection");
  if (sc->link() == nullptr) return size_t{0};
  return sc->link()->pipe[sc->side()].bytes;
}

size_t World::LiveConnections() const { return impl_->links.size(); }

void World::Note(HostId host, std::string_view text) {
  impl_->Record(host, TraceKind::kApp, std::string(text));
}

const Trace& World::trace() const { return impl_->trace; }
Trace& World::trace() { return impl_->trace; }

}  // namespace netlayer::sim
