// CallTable driven directly: no I/O, no thread, no Env. Each case is a table of steps, each step
// an input to the table and what it must answer, written as a short string.
#include "netlayer/rpc/call_table.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace netlayer::rpc {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

// One step: `op` with its argument, and the expected answer.
//   call <deadline seconds from kStart, 0: none>  -> "id=N send" | "id=N queued" | status code
//   call-now                                       -> a call whose deadline is now
//   long-name                                      -> a call with a 1025-byte method name
//   oneway                                         -> "send" | "queued" | status code
//   flush <generation>                             -> BeginFlush, "" (asserts from kWaiting)
//   take <generation>                              -> the ids taken, in order ("w" one-way)
//   reply <id> (on generation `gen`)               -> "done N OK" | "ignored"
//   gen <generation>                               -> sets the generation replies arrive on
//   expire <id>                                    -> "done N DEADLINE_EXCEEDED" | "none"
//   sendfail <id>                                  -> "done N RESOURCE_EXHAUSTED" | "none"
//   lost <generation>                              -> the ids failed, "N:CODE ..."
//   close                                          -> the ids failed, "N:CODE ..."
//   link                                           -> waiting | flushing | open | closed
//   pending                                        -> the number of pending calls
struct Step {
  std::string op;
  uint64_t arg = 0;
  std::string expect;
};

struct Case {
  std::string name;
  size_t max_pending = 3;
  std::vector<Step> steps;
};

std::string Code(const absl::Status& s) { return absl::StatusCodeToString(s.code()); }

std::string Ids(const CallTable::Completions& done) {
  std::vector<std::string> out;
  for (const auto& c : done) out.push_back(absl::StrCat(c.id, ":", Code(c.result.status())));
  return absl::StrJoin(out, " ");
}

class Driver {
 public:
  explicit Driver(size_t max_pending) : table_(max_pending) {}

  std::string Run(const Step& s) {
    if (s.op == "call" || s.op == "long-name" || s.op == "call-now") {
      absl::Time deadline =
          s.arg == 0 ? absl::InfiniteFuture() : kStart + absl::Seconds(static_cast<int64_t>(s.arg));
      if (s.op == "call-now") deadline = kStart;
      CallCallback done = [](CallResult) {};
      const std::string method =
          s.op == "long-name" ? std::string(kMaxMethodLength + 1, 'x') : std::string("m");
      auto started = table_.StartCall(method, "p", deadline, kStart, done);
      if (!started.ok()) {
        EXPECT_TRUE(static_cast<bool>(done)) << "a refused call keeps its callback";
        return Code(started.status());
      }
      return absl::StrCat("id=", started->id, started->send_now ? " send" : " queued");
    }
    if (s.op == "oneway") {
      auto now = table_.StartOneWay("w", "p");
      if (!now.ok()) return Code(now.status());
      return *now ? "send" : "queued";
    }
    if (s.op == "flush") {
      table_.BeginFlush(s.arg);
      return "";
    }
    if (s.op == "take") {
      std::vector<std::string> ids;
      for (const auto& m : table_.TakeUnsent(s.arg)) {
        ids.push_back(m.kind == MessageKind::kOneWay ? "w" : absl::StrCat(m.id));
      }
      return absl::StrJoin(ids, ",");
    }
    if (s.op == "gen") {
      gen_ = s.arg;
      return "";
    }
    if (s.op == "reply") return One(table_.OnReply(gen_, s.arg, std::string("r")), "ignored");
    if (s.op == "expire") return One(table_.Expire(s.arg, absl::UnavailableError("x")), "none");
    if (s.op == "sendfail") {
      return One(table_.SendFailed(s.arg, absl::ResourceExhaustedError("full")), "none");
    }
    if (s.op == "lost") return Ids(table_.ConnectionLost(s.arg, absl::UnavailableError("gone")));
    if (s.op == "close") return Ids(table_.Close(absl::CancelledError("closed")));
    if (s.op == "link") return LinkName(table_.link());
    if (s.op == "pending") return absl::StrCat(table_.pending());
    ADD_FAILURE() << "unknown op " << s.op;
    return "";
  }

 private:
  static std::string One(std::optional<CallTable::Completion> c, const char* none) {
    if (!c) return none;
    return absl::StrCat("done ", c->id, " ", Code(c->result.status()));
  }

  CallTable table_;
  uint64_t gen_ = 0;
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"CallsWaitThenFlushInOrderThenGoOutAtOnce",
       5,
       {{"link", 0, "waiting"},
        {"call", 0, "id=1 queued"},
        {"oneway", 0, "queued"},
        {"call", 0, "id=2 queued"},
        {"flush", 1, ""},
        {"link", 0, "flushing"},
        {"call", 0, "id=3 queued"},  // behind the queue while flushing: order is kept
        {"take", 1, "1,w,2,3"},
        {"link", 0, "flushing"},
        {"take", 1, ""},
        {"link", 0, "open"},
        {"pending", 0, "3"}}},
      {"RepliesMatchIdAndGeneration",
       3,
       {{"flush", 1, ""},
        {"take", 1, ""},
        {"call", 0, "id=1 send"},
        {"gen", 2, ""},
        {"reply", 1, "ignored"},  // another connection's reply
        {"gen", 1, ""},
        {"reply", 1, "done 1 OK"},
        {"reply", 1, "ignored"},  // answered once
        {"reply", 99, "ignored"},
        {"pending", 0, "0"}}},
      {"AReplyNeverCompletesAnUnsentCall",
       3,
       {{"call", 0, "id=1 queued"}, {"gen", 0, ""}, {"reply", 1, "ignored"}, {"pending", 0, "1"}}},
      {"TheBoundCountsCallsAndQueuedOneWays",
       3,
       {{"call", 0, "id=1 queued"},
        {"oneway", 0, "queued"},
        {"call", 0, "id=2 queued"},
        {"call", 0, "RESOURCE_EXHAUSTED"},
        {"oneway", 0, "RESOURCE_EXHAUSTED"},
        {"expire", 1, "done 1 DEADLINE_EXCEEDED"},
        {"call", 0, "id=3 queued"},
        {"flush", 1, ""},
        {"take", 1, "w,2,3"},  // 1 expired while waiting: skipped
        {"take", 1, ""},
        {"oneway", 0, "send"}}},  // the bound is for what waits
      {"BadArgumentsAreStatuses",
       3,
       {{"long-name", 0, "INVALID_ARGUMENT"},
        {"call-now", 0, "DEADLINE_EXCEEDED"},  // the deadline is now: already passed
        {"pending", 0, "0"},
        {"call", 1, "id=1 queued"}}},
      {"ALostConnectionFailsOnlyItsCalls",
       5,
       {{"flush", 1, ""},
        {"take", 1, ""},
        {"call", 0, "id=1 send"},
        {"call", 0, "id=2 send"},
        {"lost", 2, ""},  // not the current connection
        {"lost", 1, "1:UNAVAILABLE 2:UNAVAILABLE"},
        {"link", 0, "waiting"},
        {"call", 0, "id=3 queued"},
        {"lost", 1, ""},  // once
        {"flush", 2, ""},
        {"take", 1, ""},  // a lost generation takes nothing
        {"take", 2, "3"},
        {"pending", 0, "1"}}},
      {"ALossDuringTheFlushFailsWhatWasTaken",
       5,
       {{"call", 0, "id=1 queued"},
        {"flush", 1, ""},
        {"take", 1, "1"},
        {"lost", 1, "1:UNAVAILABLE"},
        {"take", 1, ""},
        {"link", 0, "waiting"}}},
      {"ASendFailureFailsTheCallOnce",
       3,
       {{"flush", 1, ""},
        {"take", 1, ""},
        {"call", 0, "id=1 send"},
        {"sendfail", 1, "done 1 RESOURCE_EXHAUSTED"},
        {"sendfail", 1, "none"},
        {"gen", 1, ""},
        {"reply", 1, "ignored"}}},
      {"CloseFailsEverythingAndEveryLaterCall",
       5,
       {{"call", 0, "id=1 queued"},
        {"oneway", 0, "queued"},
        {"call", 5, "id=2 queued"},
        {"close", 0, "1:CANCELLED 2:CANCELLED"},
        {"close", 0, ""},
        {"link", 0, "closed"},
        {"call", 0, "CANCELLED"},
        {"oneway", 0, "CANCELLED"},
        {"expire", 2, "none"},
        {"lost", 1, ""},
        {"pending", 0, "0"}}},
      {"IdsAreNeverReused",
       5,
       {{"call", 0, "id=1 queued"},
        {"expire", 1, "done 1 DEADLINE_EXCEEDED"},
        {"call", 0, "id=2 queued"},
        {"close", 0, "2:CANCELLED"}}},
  };
  return cases;
}

class CallTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(CallTableTest, Steps) {
  const Case& c = GetParam();
  Driver driver(c.max_pending);
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& s = c.steps[i];
    EXPECT_EQ(driver.Run(s), s.expect) << "step " << i << ": " << s.op << " " << s.arg;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, CallTableTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(CallTableExpireTest, NamesTheMethodAndWhyItWaited) {
  CallTable table(4);
  CallCallback done = [](CallResult) {};
  auto id = table.StartCall("load", "", absl::InfiniteFuture(), kStart, done);
  ASSERT_TRUE(id.ok());
  auto c = table.Expire(id->id, absl::UnavailableError("connection refused"));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->result.status().message(),
            "rpc call \"load\" (id 1): deadline exceeded while waiting for a connection (last "
            "error: connection refused)");
  EXPECT_TRUE(static_cast<bool>(c->done)) << "the completion carries the callback to run";
}

TEST(CallTableExpireTest, CompletionsCarryTheTimerToCancel) {
  CallTable table(4);
  CallCallback done = [](CallResult) {};
  auto id = table.StartCall("m", "", kStart + absl::Seconds(1), kStart, done);
  ASSERT_TRUE(id.ok());
  table.SetTimer(id->id, 77);
  auto closed = table.Close(absl::CancelledError("bye"));
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].timer, std::optional<TimerId>(77));
}

}  // namespace
}  // namespace netlayer::rpc
