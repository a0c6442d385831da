#include "busy_scenario.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"

namespace netlayer::sim {
namespace {

constexpr uint16_t kPort = 8100;

class Echo final : public ConnectionHandler {
 public:
  void InputData(Connection& c, std::string_view data) override {
    if (!c.Write(data).ok()) c.Close();  // over its bound: give up on this connection
  }
  void ConnectionClosed(Connection&, const CloseReason&) override {}
};

struct Shared {
  World* world = nullptr;
  std::string error;
  uint64_t bytes_echoed = 0;
  int connections = 0;
  void Fail(std::string why) {
    if (error.empty()) error = absl::StrCat("t=", absl::FormatDuration(world->Elapsed()), " ", why);
  }
};

class Client final : public ConnectionHandler,
                     public ConnectHandler,
                     public std::enable_shared_from_this<Client> {
 public:
  Client(Shared* shared, HostId host) : shared_(shared), host_(host) {}

  void Start() {
    ConnectOptions options;
    options.min_delay = absl::Milliseconds(100);
    options.max_delay = absl::Seconds(1);
    options.delay_backoff = 2;
    options.attempt_timeout = absl::Seconds(1);
    options.jitter = 0.2;
    auto attempt = shared_->world->client_factory(host_).Connect(
        {Address::HostName("server", kPort)}, options, shared_from_this());
    if (!attempt.ok()) shared_->Fail(attempt.status().ToString());
    connecting_ = true;
  }

  void Connected(std::shared_ptr<Connection> c) override {
    connecting_ = false;
    ++shared_->connections;
    ++generation_;
    conn_ = std::move(c);
    sent_.clear();
    verified_ = 0;
    shared_->world->Note(host_, "connected");
    conn_->SetHandler(shared_from_this());
    ScheduleTick();
  }
  void FailedConnection(const absl::Status& s) override {
    connecting_ = false;
    shared_->Fail(absl::StrCat("connect without max_attempts failed: ", s.ToString()));
  }

  void InputData(Connection&, std::string_view data) override {
    if (sent_.compare(verified_, data.size(), data) != 0 ||
        verified_ + data.size() > sent_.size()) {
      shared_->Fail(absl::StrCat(shared_->world->HostName(host_), ": echo differs at byte ",
                                 verified_, " (", data.size(), " bytes delivered)"));
    }
    verified_ += data.size();
    shared_->bytes_echoed += data.size();
    since_heal_ += data.size();
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    shared_->world->Note(host_, absl::StrCat("closed: ", reason.ToString()));
    conn_.reset();
    Start();
  }

  void ScheduleTick() {
    Env& env = shared_->world->env(host_);
    const auto wait =
        absl::Milliseconds(static_cast<int64_t>(UniformInt(shared_->world->generator(), 5, 50)));
    std::weak_ptr<Client> weak = weak_from_this();
    env.RunAt(env.Now() + wait, [weak, generation = generation_]() {
      if (auto self = weak.lock()) self->Tick(generation);
    });
  }
  void Tick(int generation) {
    // A new connection starts its own ticks; this chain ends with its connection.
    if (generation != generation_ || conn_ == nullptr || !conn_->IsOpen()) return;
    Generator& gen = shared_->world->generator();
    std::string message(static_cast<size_t>(UniformInt(gen, 1, 4000)), '\0');
    for (char& ch : message) ch = static_cast<char>('a' + UniformInt(gen, 0, 25));
    // Keep the amount in flight bounded, so the echo never exceeds its limits.
    if (sent_.size() - verified_ < (size_t{256} << 10)) {
      if (conn_->Write(message).ok()) sent_ += message;
    }
    ScheduleTick();
  }

  bool connected() const { return conn_ != nullptr && conn_->IsOpen(); }
  void ResetProgress() { since_heal_ = 0; }
  uint64_t since_heal() const { return since_heal_; }
  void Shutdown() {
    if (conn_) conn_->Close();
    conn_.reset();
  }

 private:
  Shared* shared_;
  HostId host_;
  std::shared_ptr<Connection> conn_;
  std::string sent_;
  size_t verified_ = 0;
  uint64_t since_heal_ = 0;
  bool connecting_ = false;
  int generation_ = 0;
};

}  // namespace

BusyResult RunBusyScenario(const BusyOptions& options) {
  WorldOptions wo;
  wo.seed = options.seed;
  wo.profile = options.faults ? DrawFaultProfile(options.seed) : DrawNetworkProfile(options.seed);
  wo.trace_capacity = 64;
  BusyResult result;
  result.profile = wo.profile.ToString();
  World world(wo);
  world.trace().SetSink([&result](const TraceEvent& e) {
    static constexpr std::pair<const char*, const char*> kKinds[] = {
        {"random partition", "partition"}, {"random clog", "clog"},
        {"random reset", "reset"},         {"random crash", "crash"},
        {"fail fast", "connect-fail"},     {"random freeze", "freeze"},
        {"random stop reading", "stall"},  {"flapping server", "flap"},
        {"random clock", "clock"}};
    if (e.kind != TraceKind::kFault && e.kind != TraceKind::kHost) return;
    for (const auto& [needle, name] : kKinds) {
      if (e.detail.find(needle) != std::string::npos &&
          e.detail.find("healed") == std::string::npos) {
        ++result.faults[name];
      }
    }
  });
  Shared shared;
  shared.world = &world;
  const HostId server = *world.AddHost("server");
  world.SetCrashable(server, true);
  // The busy scenario judges progress and exact bytes only, never one host's deadline against
  // world time: every host may freeze and run on a skewed clock.
  world.SetFreezable(server, true);
  world.SetClockSkewable(server, true);
  auto echo = std::make_shared<Echo>();
  std::shared_ptr<Listener> listener;
  auto listen = [&]() {
    auto l = world.server_factory(server).Listen(
        Address::HostName("server", kPort),
        [echo](std::shared_ptr<Connection> c) { c->SetHandler(echo); });
    if (!l.ok()) shared.Fail(absl::StrCat("listen: ", l.status().ToString()));
    listener = l.ok() ? *l : nullptr;
  };
  listen();
  world.SetRestartHook(server, listen);
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < options.clients; ++i) {
    const HostId h = *world.AddHost(absl::StrCat("client", i));
    world.SetFreezable(h, true);
    world.SetClockSkewable(h, true);
    clients.push_back(std::make_shared<Client>(&shared, h));
  }
  for (auto& c : clients) c->Start();

  absl::Status s = world.RunFor(options.fault_phase);
  world.StopFaults();
  for (auto& c : clients) c->ResetProgress();
  if (s.ok()) s = world.RunFor(options.heal_phase);
  if (!s.ok()) shared.Fail(s.ToString());
  for (size_t i = 0; i < clients.size(); ++i) {
    if (!clients[i]->connected()) {
      shared.Fail(absl::StrCat("client", i, " not connected ",
                               absl::FormatDuration(options.heal_phase), " after faults stopped"));
    } else if (clients[i]->since_heal() == 0) {
      shared.Fail(absl::StrCat("client", i, " made no progress after faults stopped"));
    }
  }
  for (auto& c : clients) c->Shutdown();
  result.ok = shared.error.empty();
  result.error = shared.error;
  result.hash = world.trace().HashHex();
  result.trace_events = world.trace().count();
  result.world_events = world.events_run();
  result.virtual_time = world.Elapsed();
  result.bytes_echoed = shared.bytes_echoed;
  result.connections = shared.connections;
  return result;
}

}  // namespace netlayer::sim
