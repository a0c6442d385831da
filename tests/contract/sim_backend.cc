// The simulator's implementation of the contract suite's backend (backend.h): a world with two
// hosts, "client" and "server", a listener on server:8100, and per seed a different fault-free
// but chunking network (sim::DrawNetworkProfile), so split and merge boundaries, short writes,
// buffer sizes and latencies vary from one instantiation to the next.
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "netlayer/core/assert.h"
#include "netlayer/sim/profile.h"
#include "netlayer/sim/world.h"

namespace netlayer::contract {
namespace {

constexpr uint16_t kPort = 8100;
constexpr int kSeeds = 20;

class SimBackend final : public ContractBackend {
 public:
  explicit SimBackend(uint64_t seed) {
    sim::WorldOptions options;
    options.seed = seed;
    options.profile = sim::DrawNetworkProfile(seed);
    options.trace_timers = false;
    options.connection_limits = ContractLimits();
    absl::StatusOr<std::unique_ptr<sim::World>> world = sim::World::Create(options);
    NETLAYER_ASSERT(world.ok(), "the drawn network profile is valid");
    world_ = *std::move(world);
    client_ = *world_->AddHost("client");
    server_ = *world_->AddHost("server");
    absl::StatusOr<std::shared_ptr<Listener>> listener =
        world_->server_factory(server_).Listen(Address::HostName("server", kPort));
    NETLAYER_ASSERT(listener.ok(), "listening on a fresh world works");
    listener_ = *std::move(listener);
  }

  ~SimBackend() override {
    // A failing test may leave the world unhealthy; say why, with the replay details.
    if (!world_->status().ok() || testing::Test::HasFailure()) {
      ADD_FAILURE_AT(__FILE__, __LINE__)
          << "sim seed " << world_->seed() << " at t=" << world_->Elapsed() << " trace hash "
          << world_->trace().HashHex() << " status " << world_->status() << "; last trace events:\n"
          << LastEvents();
    }
  }

  Pair Connect() override {
    absl::StatusOr<std::shared_ptr<Connection>> client =
        world_->client_factory(client_).ConnectBlocking({Address::HostName("server", kPort)},
                                                        ConnectOptions{});
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return {};
    std::shared_ptr<Connection> server = listener_->Accept(world_->Now() + absl::Seconds(30));
    EXPECT_NE(server, nullptr) << "the accepted side did not arrive";
    return {*std::move(client), std::move(server)};
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) override {
    return world_->RunUntil(done, world_->Now() + timeout);
  }

  void Quiesce(absl::Duration quiet) override {
    world_->RunUntil([] { return false; }, world_->Now() + quiet);
  }

  bool threaded() const override { return false; }
  Env& env() override { return world_->env(client_); }

 private:
  std::string LastEvents() const {
    std::string out;
    for (const sim::TraceEvent& e : world_->trace().Last(20)) out += e.HumanLine() + "\n";
    return out;
  }

  std::unique_ptr<sim::World> world_;
  sim::HostId client_;
  sim::HostId server_;
  std::shared_ptr<Listener> listener_;
};

}  // namespace

std::vector<BackendMaker> SimBackendMakers() {
  std::vector<BackendMaker> makers;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    makers.push_back(BackendMaker{"sim_seed_" + std::to_string(seed),
                                  [seed] { return std::make_unique<SimBackend>(seed); }});
  }
  return makers;
}

}  // namespace netlayer::contract
