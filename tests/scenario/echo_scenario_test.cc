// examples/echo as a scenario: the echo server and client code of the posix example, unchanged,
// on simulated hosts (sim::SimHost) under the seed's faults. After the faults stop, an echo
// answers with its text.
#include <optional>

#include "absl/strings/str_cat.h"
#include "echo.h"
#include "netlayer/sim/host.h"
#include "netlayer/sim/scenario_gtest.h"

namespace netlayer::sim {
namespace {

class EchoScenario final : public Scenario {
 public:
  absl::Duration FaultPhase() const override { return absl::Seconds(5); }
  void Setup(ScenarioContext& ctx) override {
    server_host_.emplace(ctx.world(), *ctx.world().AddHost("server"));
    client_host_.emplace(ctx.world(), *ctx.world().AddHost("client"));
    auto server = echo::StartEchoServer(*server_host_, Address::HostName("server", 7));
    ctx.Check(server.ok(), "the echo server starts", [&] { return server.status().ToString(); });
    if (server.ok()) server_ = *server;
  }
  void Finish(ScenarioContext& ctx) override {
    // Blocking, as in the posix client's main: runs the world until the answer.
    const std::string text = absl::StrCat("hello #", ctx.seed());
    auto reply = echo::Echo(*client_host_, Address::HostName("server", 7), text, absl::Seconds(10));
    ctx.Check(reply.ok() && *reply == text, "echo answers with its text",
              [&] { return reply.ok() ? *reply : reply.status().ToString(); });
  }
  void TearDown(ScenarioContext&) override {
    if (server_.rpc) server_.rpc->Close();
  }

 private:
  std::optional<SimHost> server_host_;
  std::optional<SimHost> client_host_;
  echo::EchoServer server_;
};

NETLAYER_SCENARIO_TEST(
    EchoScenarioTest, EchoExample, "echo", [] { return std::make_unique<EchoScenario>(); },
    (SeedRange{1, 20}))

}  // namespace
}  // namespace netlayer::sim
