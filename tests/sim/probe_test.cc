// Probes and BUGGIFY (core/probe.h) as the simulator counts them: registration before main,
// counting per world, UNREACHABLE stopping the run, no effect on the trace hash, BUGGIFY's
// own deterministic draws.
#include "netlayer/core/probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "netlayer/sim/world.h"

namespace netlayer::sim {
namespace {

WorldOptions Options(uint64_t seed, bool buggify = false) {
  WorldOptions o;
  o.seed = seed;
  o.buggify = buggify;
  return o;
}

using ::testing::HasSubstr;

// Never called: its probes are registered all the same.
[[maybe_unused]] void NeverCalled() {
  NETLAYER_REACHABLE("test.probe.never-called");
  NETLAYER_SOMETIMES(true, "test.probe.never-called-sometimes");
}

void TwoPlaces(int where) {
  if (where == 0) {
    NETLAYER_REACHABLE("test.probe.two-places");
  } else {
    NETLAYER_REACHABLE("test.probe.two-places");
  }
}

bool Registered(std::string_view name, ProbeKind kind) {
  for (const ProbeInfo& p : ProbeRegistry::All()) {
    if (p.name == name) return p.kind == kind;
  }
  return false;
}

const ProbeHit* FindHit(const std::vector<ProbeHit>& hits, std::string_view name) {
  for (const ProbeHit& h : hits) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

TEST(Probes, RegisteredBeforeMainEvenIfNeverRun) {
  EXPECT_TRUE(Registered("test.probe.never-called", ProbeKind::kReachable));
  EXPECT_TRUE(Registered("test.probe.never-called-sometimes", ProbeKind::kSometimes));
  // The same name in two places is one probe.
  std::vector<ProbeInfo> all = ProbeRegistry::All();
  EXPECT_EQ(std::count_if(all.begin(), all.end(),
                          [](const ProbeInfo& p) { return p.name == "test.probe.two-places"; }),
            1);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const ProbeInfo& a, const ProbeInfo& b) {
    return a.name < b.name;
  }));
}

TEST(Probes, OutsideTheSimulatorNothingIsCountedAndBuggifyIsFalse) {
  ASSERT_EQ(CurrentProbeSink(), nullptr);
  bool evaluated = false;
  NETLAYER_SOMETIMES((evaluated = true), "test.probe.outside");
  EXPECT_FALSE(evaluated) << "the condition is not evaluated outside a simulated run";
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(NETLAYER_BUGGIFY("test.buggify.outside"));
}

TEST(Probes, TheWorldCountsWhileItRunsEvents) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  for (int i = 0; i < 3; ++i) {
    w.env(a).RunAt(w.Now() + absl::Seconds(i), [i] {
      NETLAYER_SOMETIMES(i == 1, "test.probe.sometimes");
      TwoPlaces(i % 2);
    });
  }
  ASSERT_TRUE(w.RunUntilIdle().ok());
  EXPECT_EQ(CurrentProbeSink(), nullptr) << "installed only while the world runs";
  const std::vector<ProbeHit> hits = w.probes().Hits();
  const ProbeHit* s = FindHit(hits, "test.probe.sometimes");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->evaluated, 3u);
  EXPECT_EQ(s->held, 1u);
  const ProbeHit* two = FindHit(hits, "test.probe.two-places");
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->evaluated, 3u);
  EXPECT_EQ(FindHit(hits, "test.probe.never-called"), nullptr);
}

TEST(Probes, UnreachableStopsTheWorldNamingTheProbe) {
  World w(WorldOptions{});
  const HostId a = *w.AddHost("a");
  bool after = false;
  w.env(a).RunAt(w.Now() + absl::Seconds(1),
                 [] { NETLAYER_UNREACHABLE("test.probe.unreachable"); });
  w.env(a).RunAt(w.Now() + absl::Seconds(2), [&] { after = true; });
  (void)w.RunFor(absl::Seconds(5));
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(w.status().message(), HasSubstr("unreachable probe 'test.probe.unreachable'"));
  EXPECT_FALSE(after) << "the run stopped";
}

TEST(Probes, DoNotChangeTheTraceHash) {
  // Two worlds, the same events; one also hits probes.
  World a(Options(7));
  World b(Options(7));
  const HostId ha = *a.AddHost("a");
  const HostId hb = *b.AddHost("a");
  for (int i = 0; i < 10; ++i) {
    a.env(ha).RunAt(a.Now() + absl::Milliseconds(i), [&a, ha] {
      NETLAYER_REACHABLE("test.probe.hash");
      NETLAYER_SOMETIMES(true, "test.probe.hash-sometimes");
      a.Note(ha, "tick");
    });
    b.env(hb).RunAt(b.Now() + absl::Milliseconds(i), [&b, hb] { b.Note(hb, "tick"); });
  }
  ASSERT_TRUE(a.RunUntilIdle().ok());
  ASSERT_TRUE(b.RunUntilIdle().ok());
  EXPECT_EQ(a.trace().hash(), b.trace().hash());
  EXPECT_NE(FindHit(a.probes().Hits(), "test.probe.hash"), nullptr);
}

// Which of 40 evaluations of 8 sites fired, for one seed.
std::vector<int> BuggifyPattern(uint64_t seed, bool on) {
  World w(Options(seed, on));
  const HostId a = *w.AddHost("a");
  std::vector<int> fired;
  w.env(a).RunAt(w.Now(), [&] {
    for (int i = 0; i < 40; ++i) {
      bool f = false;
      switch (i % 8) {
        case 0:
          f = NETLAYER_BUGGIFY("test.buggify.0");
          break;
        case 1:
          f = NETLAYER_BUGGIFY("test.buggify.1");
          break;
        case 2:
          f = NETLAYER_BUGGIFY("test.buggify.2");
          break;
        case 3:
          f = NETLAYER_BUGGIFY("test.buggify.3");
          break;
        case 4:
          f = NETLAYER_BUGGIFY("test.buggify.4");
          break;
        case 5:
          f = NETLAYER_BUGGIFY("test.buggify.5");
          break;
        case 6:
          f = NETLAYER_BUGGIFY("test.buggify.6");
          break;
        default:
          f = NETLAYER_BUGGIFY("test.buggify.7");
          break;
      }
      if (f) fired.push_back(i);
    }
  });
  EXPECT_TRUE(w.RunUntilIdle().ok());
  return fired;
}

TEST(Buggify, DeterministicPerSeedAndOffWhenDisabled) {
  EXPECT_EQ(BuggifyPattern(3, true), BuggifyPattern(3, true));
  EXPECT_TRUE(BuggifyPattern(3, false).empty());
  // Over many seeds some site fires, and none fires everywhere (1/4 enabled, 1/4 each time).
  int seeds_with_fire = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    if (!BuggifyPattern(seed, true).empty()) ++seeds_with_fire;
  }
  EXPECT_GT(seeds_with_fire, 10);
  EXPECT_LT(seeds_with_fire, 50);
}

TEST(Buggify, NeverDrawsFromTheWorldsGenerator) {
  World a(Options(11, true));
  World b(Options(11, false));
  for (World* w : {&a, &b}) {
    const HostId h = *w->AddHost("a");
    w->env(h).RunAt(w->Now(), [] {
      for (int i = 0; i < 50; ++i) (void)NETLAYER_BUGGIFY("test.buggify.draws");
    });
    ASSERT_TRUE(w->RunUntilIdle().ok());
  }
  EXPECT_EQ(a.generator().Next(), b.generator().Next());
}

}  // namespace
}  // namespace netlayer::sim
