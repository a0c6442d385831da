// The tls-rpc scenario over a range of seeds (NETLAYER_SEED / NETLAYER_SEEDS override it), and
// its planted bug (a server that does not require client certificates) caught and replayed.
#include "scenarios/builtin.h"
#include "netlayer/core/log.h"
#include "netlayer/sim/scenario_gtest.h"

namespace netlayer::sim {
namespace {

NETLAYER_SCENARIO_TEST(TlsScenarioTest, TlsRpc, "tls-rpc", scenarios::MakeTlsRpc,
                       (SeedRange{1, 10}))

TEST(TlsScenarioTest, ASkippedClientCertificateCheckIsCaughtAndReplays) {
  SetLogLevel(spdlog::level::off);  // rejections are the point; keep them out of the output
  ScenarioOptions options;
  options.seed = 1;
  options.planted_bug = scenarios::kTlsServerSkipsClientAuth;
  ScenarioResult caught = RunScenario("tls-rpc", scenarios::MakeTlsRpc(), options);
  ASSERT_FALSE(caught.passed);
  EXPECT_EQ(caught.invariant, "the server sees only verified good clients") << caught.Report();
  ScenarioResult replay = RunScenario("tls-rpc", scenarios::MakeTlsRpc(), options);
  EXPECT_EQ(replay.trace_hash, caught.trace_hash);
  SetLogLevel(spdlog::level::warn);
}

}  // namespace
}  // namespace netlayer::sim
