#include "netlayer/core/timer_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace netlayer {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(double seconds) { return kT0 + absl::Seconds(seconds); }

// A tiny script over one queue: add labelled timers (whose callbacks may run more steps), cancel
// them, pop and run what is due. The log records every label that ran, in order.
struct Step {
  enum class Kind { kAdd, kCancel, kRunUntil };
  Kind kind;
  std::string label;
  double at = 0;             // kAdd: deadline; kRunUntil: the time "now"
  bool expect = false;       // kCancel: the expected result
  std::vector<Step> on_run;  // kAdd: steps the callback takes when it runs (no kRunUntil)
};

Step Add(std::string label, double at, std::vector<Step> on_run = {}) {
  return {Step::Kind::kAdd, std::move(label), at, false, std::move(on_run)};
}
Step Cancel(std::string label, bool expect) {
  return {Step::Kind::kCancel, std::move(label), 0, expect, {}};
}
Step RunUntil(double at) { return {Step::Kind::kRunUntil, "", at, false, {}}; }

class Script {
 public:
  explicit Script(size_t max_pending = TimerQueue::kDefaultMaxPending) : q_(max_pending) {}

  void Do(const Step& s) {
    switch (s.kind) {
      case Step::Kind::kAdd: {
        absl::StatusOr<TimerId> id = q_.Add(At(s.at), [this, label = s.label, more = s.on_run]() {
          log_.push_back(label);
          for (const Step& m : more) Do(m);
        });
        ASSERT_TRUE(id.ok()) << id.status();
        ids_[s.label] = *id;
        break;
      }
      case Step::Kind::kCancel: {
        // A label never added stands for an id the queue never returned.
        const TimerId id = ids_.count(s.label) != 0 ? ids_[s.label] : TimerId{987654};
        EXPECT_EQ(q_.Cancel(id), s.expect) << "cancel " << s.label;
        break;
      }
      case Step::Kind::kRunUntil:
        while (std::optional<TimerQueue::Entry> e = q_.PopDue(At(s.at))) {
          EXPECT_LE(e->when, At(s.at));
          std::move(e->value)();
        }
        break;
    }
  }

  TimerQueue& queue() { return q_; }
  const std::vector<std::string>& log() const { return log_; }

 private:
  TimerQueue q_;
  std::map<std::string, TimerId> ids_;
  std::vector<std::string> log_;
};

struct Case {
  const char* name;
  std::vector<Step> steps;
  std::vector<std::string> ran;
  size_t pending_after;
};

TEST(TimerQueueTest, Scripts) {
  const std::vector<Case> cases = {
      {"deadline order", {Add("c", 3), Add("a", 1), Add("b", 2), RunUntil(10)}, {"a", "b", "c"}, 0},
      {"ties run in insertion order",
       {Add("x", 5), Add("y", 5), Add("early", 1), Add("z", 5), RunUntil(5)},
       {"early", "x", "y", "z"},
       0},
      {"only what is due runs",
       {Add("a", 1), Add("b", 2), Add("c", 3), RunUntil(2)},
       {"a", "b"},
       1},
      {"due exactly now runs", {Add("a", 2), RunUntil(2)}, {"a"}, 0},
      {"past deadlines run at once", {Add("a", -5), RunUntil(0)}, {"a"}, 0},
      {"cancel before firing",
       {Add("a", 1), Add("b", 2), Cancel("a", true), RunUntil(10)},
       {"b"},
       0},
      {"cancel after firing", {Add("a", 1), RunUntil(1), Cancel("a", false)}, {"a"}, 0},
      {"cancel twice", {Add("a", 1), Cancel("a", true), Cancel("a", false), RunUntil(10)}, {}, 0},
      {"cancel unknown id", {Add("a", 1), Cancel("nobody", false), RunUntil(10)}, {"a"}, 0},
      {"cancel one of a tie",
       {Add("x", 5), Add("y", 5), Add("z", 5), Cancel("y", true), RunUntil(5)},
       {"x", "z"},
       0},
      {"callback adds a timer due now: runs after the ones already due then",
       {Add("a", 1, {Add("a2", 1)}), Add("b", 1), RunUntil(1)},
       {"a", "b", "a2"},
       0},
      {"callback adds a timer in the past: runs next",
       {Add("a", 1, {Add("late", 0)}), Add("b", 2), RunUntil(2)},
       {"a", "late", "b"},
       0},
      {"callback adds a timer not yet due: waits",
       {Add("a", 1, {Add("later", 9)}), RunUntil(2)},
       {"a"},
       1},
      {"callback cancels a pending timer",
       {Add("a", 1, {Cancel("b", true)}), Add("b", 2), Add("c", 3), RunUntil(10)},
       {"a", "c"},
       0},
      {"callback cancels itself (already taken out)",
       {Add("a", 1, {Cancel("a", false)}), RunUntil(10)},
       {"a"},
       0},
      {"callback re-arms: each run adds the next",
       {Add("t1", 1, {Add("t2", 2, {Add("t3", 3)})}), RunUntil(10)},
       {"t1", "t2", "t3"},
       0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Script s;
    for (const Step& step : c.steps) s.Do(step);
    EXPECT_EQ(s.log(), c.ran);
    EXPECT_EQ(s.queue().size(), c.pending_after);
  }
}

TEST(TimerQueueTest, InfiniteFutureNeverDueBeforeIt) {
  TimerQueue q;
  ASSERT_TRUE(q.Add(absl::InfiniteFuture(), [] {}).ok());
  EXPECT_EQ(q.NextDeadline(), absl::InfiniteFuture());
  EXPECT_FALSE(q.PopDue(At(1e9)).has_value());
  EXPECT_EQ(q.size(), 1u);
}

TEST(TimerQueueTest, NextDeadlineAndIds) {
  TimerQueue q;
  EXPECT_FALSE(q.NextDeadline().has_value());
  EXPECT_TRUE(q.empty());
  absl::StatusOr<TimerId> b = q.Add(At(2), [] {});
  absl::StatusOr<TimerId> a = q.Add(At(1), [] {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*b, 1u);  // ids count up from 1 in the order of Add
  EXPECT_EQ(*a, 2u);
  EXPECT_EQ(q.NextDeadline(), At(1));
  EXPECT_FALSE(q.PopDue(At(0.5)).has_value());
  std::optional<TimerQueue::Entry> e = q.PopDue(At(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, *a);
  EXPECT_EQ(e->when, At(1));
  EXPECT_EQ(q.NextDeadline(), At(2));
  EXPECT_TRUE(q.Cancel(*b));
  EXPECT_FALSE(q.NextDeadline().has_value());
  EXPECT_FALSE(q.Cancel(0));  // 0 is never an id
  absl::StatusOr<TimerId> c = q.Add(At(1), [] {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 3u);  // never reused
}

TEST(TimerQueueTest, BoundRefusesAndRecovers) {
  TimerQueue q(/*max_pending=*/2);
  EXPECT_EQ(q.max_pending(), 2u);
  ASSERT_TRUE(q.Add(At(1), [] {}).ok());
  ASSERT_TRUE(q.Add(At(2), [] {}).ok());

  auto held = std::make_shared<int>(0);
  absl::StatusOr<TimerId> refused = q.Add(At(0), [held] {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("timer queue full"), std::string::npos);
  EXPECT_EQ(held.use_count(), 1) << "a refused value is destroyed, not kept";
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.NextDeadline(), At(1)) << "a refused Add changes nothing";

  ASSERT_TRUE(q.PopDue(At(1)).has_value());
  absl::StatusOr<TimerId> again = q.Add(At(3), [] {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 3u) << "a refused Add uses no id";
}

TEST(TimerQueueTest, FindAndCancelIf) {
  BasicTimerQueue<std::string> q;
  const TimerId a = *q.Add(At(3), "keep-a");
  const TimerId b = *q.Add(At(1), "drop-b");
  const TimerId c = *q.Add(At(2), "drop-c");
  const TimerId d = *q.Add(At(1), "keep-d");
  ASSERT_NE(q.Find(b), nullptr);
  EXPECT_EQ(*q.Find(b), "drop-b");
  EXPECT_EQ(q.Find(999), nullptr);

  std::vector<std::string> seen;
  const size_t n = q.CancelIf([&](const std::string& v) {
    seen.push_back(v);
    return v.rfind("drop", 0) == 0;
  });
  EXPECT_EQ(n, 2u);
  // The predicate sees entries in run order.
  EXPECT_EQ(seen, (std::vector<std::string>{"drop-b", "keep-d", "drop-c", "keep-a"}));
  EXPECT_EQ(q.Find(b), nullptr);
  EXPECT_EQ(q.Find(c), nullptr);
  EXPECT_FALSE(q.Cancel(c));
  EXPECT_EQ(q.PopDue(At(10))->id, d);
  EXPECT_EQ(q.PopDue(At(10))->id, a);
  EXPECT_TRUE(q.empty());
}

// A value whose destructor adds a timer to the queue that holds it: the queue must be
// consistent by the time values die.
struct ReachesBack {
  TimerQueue* q = nullptr;
  int* added = nullptr;
  ReachesBack(TimerQueue* queue, int* count) : q(queue), added(count) {}
  ReachesBack(ReachesBack&& o) noexcept : q(std::exchange(o.q, nullptr)), added(o.added) {}
  ReachesBack& operator=(ReachesBack&&) = delete;
  ~ReachesBack() {
    if (q != nullptr && q->Add(At(100), [] {}).ok()) ++*added;
  }
  void operator()() && {}
};

TEST(TimerQueueTest, RescheduleKeepsTheIdAndIdsIfFollowsRunOrder) {
  BasicTimerQueue<std::string> q;
  const TimerId a = *q.Add(At(5), "a");
  const TimerId b = *q.Add(At(1), "b");
  const TimerId c = *q.Add(At(3), "c");
  EXPECT_EQ(q.IdsIf([](const std::string&) { return true; }), (std::vector<TimerId>{b, c, a}));
  EXPECT_EQ(q.IdsIf([](const std::string& v) { return v != "c"; }), (std::vector<TimerId>{b, a}));
  ASSERT_TRUE(q.Reschedule(a, At(1)));
  EXPECT_FALSE(q.Reschedule(999, At(1)));
  ASSERT_NE(q.Find(a), nullptr);
  EXPECT_EQ(*q.Find(a), "a");
  // Same time as b: the lower id (a, added first) runs first.
  std::optional<BasicTimerQueue<std::string>::Entry> e = q.PopDue(At(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, a);
  EXPECT_EQ(e->when, At(1));
  EXPECT_EQ(q.PopDue(At(1))->id, b);
  EXPECT_FALSE(q.PopDue(At(2)).has_value());
  EXPECT_TRUE(q.Cancel(c)) << "a rescheduled queue stays consistent";
  EXPECT_TRUE(q.empty());
}

TEST(TimerQueueTest, DestructorsMayUseTheQueue) {
  TimerQueue q;
  int added = 0;
  const TimerId a = *q.Add(At(1), ReachesBack(&q, &added));
  ASSERT_TRUE(q.Add(At(2), ReachesBack(&q, &added)).ok());
  ASSERT_TRUE(q.Add(At(3), ReachesBack(&q, &added)).ok());

  EXPECT_TRUE(q.Cancel(a));
  EXPECT_EQ(added, 1);
  EXPECT_EQ(q.size(), 3u);  // two left + one added by the destructor

  q.Clear();
  EXPECT_EQ(added, 3);
  EXPECT_EQ(q.size(), 2u) << "added by destructors after the queue was emptied";
  EXPECT_EQ(q.NextDeadline(), At(100));

  int added_at_end = 0;
  {
    TimerQueue dying;
    ASSERT_TRUE(dying.Add(At(1), ReachesBack(&dying, &added_at_end)).ok());
  }  // the queue's destructor clears it first: the value's Add lands in a live, empty queue
  EXPECT_EQ(added_at_end, 1);
}

}  // namespace
}  // namespace netlayer
