// The simulator's speed: a busy simulated workload (smac echo clients against one server, every
// client keeping several messages in flight, reconnecting when its connection breaks), timed on
// the wall clock. Issue 6's `rpc-faults` scenario is used instead once it exists; until then
// this workload stands in for it (the notes in the output say so).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "netlayer/core/assert.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"
#include "netlayer/smac/message_connection.h"
#include "sim_figures.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kClients = 4;
constexpr int kInFlight = 4;
constexpr size_t kMessageSize = 512;
constexpr uint16_t kPort = 9000;

class Echo : public smac::MessageHandler {
 public:
  void MessageReceived(smac::MessageConnection& c, std::string_view message) override {
    // A full queue or a closed connection is part of the workload under faults, not an error.
    (void)c.Send(message);
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason&) override {}
};

// One simulated client: connects, keeps kInFlight messages in flight, reconnects when broken.
class SimClient : public smac::MessageHandler,
                  public ConnectHandler,
                  public std::enable_shared_from_this<SimClient> {
 public:
  SimClient(ClientConnectionFactory& factory, Address server)
      : factory_(factory), server_(std::move(server)), message_(kMessageSize, 'm') {}

  void Connect() {
    ConnectOptions options;
    options.min_delay = absl::Milliseconds(100);
    options.max_delay = absl::Seconds(1);
    options.delay_backoff = 2;
    options.attempt_timeout = absl::Seconds(2);
    auto attempt = factory_.Connect({server_}, options, shared_from_this());
    NETLAYER_ASSERT(attempt.ok(), "sim connect arguments are valid");
  }

  void Connected(std::shared_ptr<Connection> connection) override {
    connection_ = smac::MessageConnection::Create(std::move(connection));
    connection_->SetHandler(shared_from_this());
    for (int i = 0; i < kInFlight; ++i) (void)connection_->Send(message_);
  }
  void FailedConnection(const absl::Status&) override { Connect(); }

  void MessageReceived(smac::MessageConnection& c, std::string_view) override {
    ++replies_;
    (void)c.Send(message_);
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason&) override {
    connection_.reset();
    Connect();
  }

  uint64_t replies() const { return replies_; }
  void Shutdown() {
    if (connection_) connection_->Close();
    connection_.reset();
  }

 private:
  ClientConnectionFactory& factory_;
  Address server_;
  std::string message_;
  std::shared_ptr<smac::MessageConnection> connection_;
  uint64_t replies_ = 0;
};

// One world running the workload.
class Workload {
 public:
  absl::Status Start(uint64_t seed, bool faults) {
    sim::WorldOptions options;
    options.seed = seed;
    if (faults) options.profile = sim::DrawFaultProfile(seed);
    options.trace_timers = false;
    options.max_events = uint64_t{1} << 40;
    absl::StatusOr<std::unique_ptr<sim::World>> world = sim::World::Create(options);
    if (!world.ok()) return world.status();
    world_ = std::move(*world);
    absl::StatusOr<sim::HostId> server = world_->AddHost("server");
    if (!server.ok()) return server.status();
    Address address = Address::HostName("server", kPort);
    absl::StatusOr<std::shared_ptr<Listener>> listener =
        world_->server_factory(*server).Listen(address, [this](std::shared_ptr<Connection> c) {
          auto m = smac::MessageConnection::Create(std::move(c));
          m->SetHandler(echo_);
          accepted_.push_back(std::move(m));
        });
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    for (int i = 0; i < kClients; ++i) {
      absl::StatusOr<sim::HostId> host = world_->AddHost("client" + std::to_string(i));
      if (!host.ok()) return host.status();
      clients_.push_back(std::make_shared<SimClient>(world_->client_factory(*host), address));
    }
    for (auto& c : clients_) c->Connect();
    return absl::OkStatus();
  }

  absl::Status RunFor(absl::Duration d) { return world_->RunFor(d); }
  sim::World& world() { return *world_; }
  uint64_t replies() const {
    uint64_t n = 0;
    for (const auto& c : clients_) n += c->replies();
    return n;
  }

  ~Workload() {
    for (auto& c : clients_) c->Shutdown();
    for (auto& m : accepted_) m->Close();
    if (listener_) listener_->Close();
    accepted_.clear();
    listener_.reset();
    world_.reset();
    clients_.clear();
  }

 private:
  std::unique_ptr<sim::World> world_;
  std::shared_ptr<Echo> echo_ = std::make_shared<Echo>();
  std::shared_ptr<Listener> listener_;
  std::vector<std::shared_ptr<smac::MessageConnection>> accepted_;
  std::vector<std::shared_ptr<SimClient>> clients_;
};

// Events per second of wall time, or simulated seconds per wall second, for one long run.
class SimSpeed : public Runner {
 public:
  explicit SimSpeed(SimFigure figure) : figure_(figure) {}
  absl::Status Start() override { return workload_.Start(/*seed=*/1, /*faults=*/false); }
  absl::StatusOr<double> Measure(Seconds duration) override {
    sim::World& world = workload_.world();
    uint64_t events0 = world.events_run();
    absl::Time virtual0 = world.Now();
    uint64_t replies0 = workload_.replies();
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    do {
      if (absl::Status s = workload_.RunFor(absl::Milliseconds(20)); !s.ok()) return s;
    } while (Clock::now() < deadline);
    double wall = Seconds(Clock::now() - start).count();
    if (workload_.replies() == replies0) {
      return absl::InternalError("sim workload made no progress");
    }
    if (figure_ == SimFigure::kEventsPerSecond) return (world.events_run() - events0) / wall;
    return absl::ToDoubleSeconds(world.Now() - virtual0) / wall;
  }
  absl::Status Stop() override { return absl::OkStatus(); }

 private:
  SimFigure figure_;
  Workload workload_;
};

// Seeds per second: fresh worlds with each seed's fault mix, one simulated second each.
class SimSweep : public Runner {
 public:
  absl::Status Start() override { return absl::OkStatus(); }
  absl::StatusOr<double> Measure(Seconds duration) override {
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    uint64_t seeds = 0;
    do {
      Workload w;
      if (absl::Status s = w.Start(next_seed_++, /*faults=*/true); !s.ok()) return s;
      if (absl::Status s = w.RunFor(absl::Seconds(1)); !s.ok()) return s;
      ++seeds;
    } while (Clock::now() < deadline);
    return seeds / Seconds(Clock::now() - start).count();
  }
  absl::Status Stop() override { return absl::OkStatus(); }

 private:
  uint64_t next_seed_ = 1;
};

}  // namespace

std::unique_ptr<Runner> MakeSimRunner(SimFigure figure) {
  if (figure == SimFigure::kSeedsPerSecond) return std::make_unique<SimSweep>();
  return std::make_unique<SimSpeed>(figure);
}

}  // namespace netlayer::bench
