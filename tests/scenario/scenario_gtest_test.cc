// The GoogleTest glue (netlayer/sim/scenario_gtest.h) on a cheap scenario, under the guard.
// scenario_gtest_check.sh runs this binary with NETLAYER_JOBS, NETLAYER_PLANT and the printed
// replay line; run alone, it checks the in-process path.
#include "netlayer/sim/scenario_gtest.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "netlayer/sim/timeline.h"

namespace netlayer::sim {
namespace {

// Twenty scripted steps at seeded times; planted "lose-a-tick" forgets one on about one seed
// in seven (the same scenario as tests/tools/mini_sim.cc).
class Ticks : public Scenario {
 public:
  FaultProfile Profile(uint64_t) override { return FaultProfile(); }
  absl::Duration FaultPhase() const override { return absl::Seconds(1); }
  absl::Duration LivenessBound() const override { return absl::Seconds(1); }
  void Setup(ScenarioContext& ctx) override {
    World& world = ctx.world();
    const HostId host = *world.AddHost("ticker");
    const bool lose = ctx.planted("lose-a-tick") && world.generator().Next() % 7 == 0;
    for (int i = 0; i < 20; ++i) {
      const absl::Duration at = absl::Milliseconds(world.generator().Next() % 900);
      (void)world.At(world.start() + at, [this, &world, host, i, lose] {
        world.Note(host, absl::StrCat("tick ", i));
        if (!(lose && i == 3)) ++ticks_;
      });
    }
  }
  void Finish(ScenarioContext& ctx) override {
    ctx.Check(ticks_ == 20, "every tick ran", [&] { return absl::StrCat(ticks_, " ticks"); });
  }

 private:
  int ticks_ = 0;
};

std::unique_ptr<Scenario> MakeTicks() { return std::make_unique<Ticks>(); }

// The check script's subject: passes unless NETLAYER_PLANT=lose-a-tick.
NETLAYER_SCENARIO_TEST(GlueTest, Ticks, "ticks", MakeTicks, (SeedRange{1, 300}))

TEST(GlueTest, PlantedBugIsCaughtAndReplayable) {
  if (std::getenv("NETLAYER_SEED") || std::getenv("NETLAYER_SEEDS") ||
      std::getenv("NETLAYER_PLANT")) {
    GTEST_SKIP() << "checks the default seeds";
  }
  ScenarioTestOptions options;
  options.seeds = {1, 100};
  options.plant = "lose-a-tick";
  options.fail_test = false;
  options.max_failures = 2;
  const SeedsOutcome out = RunScenarioSeeds("ticks", MakeTicks, options);
  EXPECT_EQ(out.runs, 100u);
  ASSERT_GT(out.failed, 0u);
  ASSERT_EQ(out.failures.size(), 2u);
  EXPECT_EQ(out.failures[0].invariant, "every tick ran");
  EXPECT_LT(out.failures[0].seed, out.failures[1].seed);
  const std::string replay = out.ReplayCommand(out.failures[0].seed);
  EXPECT_EQ(
      replay.rfind(
          absl::StrCat("NETLAYER_PLANT=lose-a-tick NETLAYER_SEED=", out.failures[0].seed, " "), 0),
      0u)
      << replay;
  EXPECT_NE(replay.find("--gtest_filter=GlueTest.PlantedBugIsCaughtAndReplayable"),
            std::string::npos)
      << replay;
  // Without the plant every seed passes, and the combined hash differs.
  options.plant.clear();
  const SeedsOutcome clean = RunScenarioSeeds("ticks", MakeTicks, options);
  EXPECT_EQ(clean.failed, 0u);
  EXPECT_NE(clean.hash.value(), out.hash.value());
}

TEST(GlueTest, CombinedHashIgnoresOrder) {
  CombinedHash a, b, c;
  a.Add(1, 10);
  a.Add(2, 20);
  b.Add(2, 20);
  b.Add(1, 10);
  EXPECT_EQ(a.value(), b.value());
  c.Add(1, 20);
  c.Add(2, 10);
  EXPECT_NE(a.value(), c.value());  // the pairing of seed and hash matters
}

TEST(GlueTest, ShardsCoverTheRangeDisjointly) {
  for (uint64_t n : {1u, 3u, 4u, 7u, 2000u, 2500u}) {
    uint64_t next = 1, covered = 0;
    for (uint64_t k = 1; k <= n; ++k) {
      auto s = ShardOf({1, 2000}, k, n);
      if (!s) continue;
      EXPECT_EQ(s->first, next);
      next = s->last + 1;
      covered += s->size();
    }
    EXPECT_EQ(covered, 2000u) << n;
  }
}

TEST(TimelineTest, RendersAnyTrace) {
  World world(WorldOptions{});
  const HostId a = *world.AddHost("alpha");
  world.Note(a, "hello </script> timeline");
  ASSERT_TRUE(world.RunFor(absl::Seconds(1)).ok());
  const std::string html = RenderTimeline(world.trace(), "my own world");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("\"title\":\"my own world\""), std::string::npos);
  EXPECT_NE(html.find("alpha"), std::string::npos);
  // Event text cannot end the page's script early.
  EXPECT_EQ(html.find("hello </script>"), std::string::npos);
  EXPECT_NE(html.find("hello <\\/script>"), std::string::npos);
  EXPECT_NE(html.find(world.trace().HashHex()), std::string::npos);
}

}  // namespace
}  // namespace netlayer::sim
