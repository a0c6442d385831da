// DeliveryQueue alone, table-driven: each case is a script of steps on one queue (driven with
// NoLock, as the simulator drives it) and the handler calls it must produce, in order.
#include "netlayer/core/delivery_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace netlayer {
namespace {

class Handler {
 public:
  explicit Handler(std::string name) : name_(std::move(name)) {}
  void Input(std::string_view data) {
    EXPECT_FALSE(inside_) << name_ << " re-entered";
    inside_ = true;
    log->push_back(name_ + " in:" + std::string(data));
    if (on_input) on_input(data);
    inside_ = false;
  }
  void Closed(const CloseReason& reason) {
    EXPECT_FALSE(inside_) << name_ << " re-entered";
    log->push_back(name_ + " closed:" + reason.ToString());
  }
  std::vector<std::string>* log = nullptr;
  std::function<void(std::string_view)> on_input;

 private:
  std::string name_;
  bool inside_ = false;
};

using Queue = DeliveryQueue<Handler>;

struct Dispatch {
  void operator()(Handler& h, std::string_view input) const { h.Input(input); }
  void operator()(Handler& h, const CloseReason& reason) const { h.Closed(reason); }
};

// The world of one case: a queue, two handlers that log into one list, and the driver's calls.
struct Rig {
  explicit Rig(Queue::Policy policy) : queue(policy) {
    a->log = &log;
    b->log = &log;
  }
  // What a driver does with arriving input: straight to the handler when it may, else queued.
  void Arrive(std::string_view data) {
    if (std::shared_ptr<Handler> direct = queue.ClaimDirect()) {
      queue.DeliverDirect(lock, std::move(direct), data, Dispatch{});
    } else {
      queue.Push(data);
      queue.Deliver(lock, Dispatch{});
    }
  }
  void Deliver() { queue.Deliver(lock, Dispatch{}); }

  Queue queue;
  NoLock lock;
  std::vector<std::string> log;
  std::shared_ptr<Handler> a = std::make_shared<Handler>("a");
  std::shared_ptr<Handler> b = std::make_shared<Handler>("b");
};

const CloseReason kPeerClosed(CloseReason::Kind::kPeerClosed, "");
const CloseReason kReset(CloseReason::Kind::kReset, "rst");

constexpr Queue::Policy kBytes{.max_queued_bytes = 8, .merge_input_up_to = 64 << 10};
constexpr Queue::Policy kMessages{.max_queued_bytes = 8, .merge_input_up_to = 0};

struct Case {
  const char* name;
  Queue::Policy policy;
  std::function<void(Rig&)> steps;
  std::vector<std::string> calls;  // the handler calls, in order
};

std::vector<Case> Cases() {
  return {
      {"queued before a handler, then delivered in order",
       kMessages,
       [](Rig& r) {
         r.Arrive("1");
         r.Arrive("2");
         r.queue.PushClose(kPeerClosed);
         r.Deliver();  // no handler: nothing happens
         EXPECT_TRUE(r.log.empty());
         r.queue.SetHandler(r.a);
         r.Deliver();
       },
       {"a in:1", "a in:2", "a closed:peer closed"}},
      {"bytes merge while queued",
       kBytes,
       [](Rig& r) {
         r.Arrive("ab");
         r.Arrive("cd");
         r.queue.SetHandler(r.a);
         r.Deliver();
       },
       {"a in:abcd"}},
      {"direct delivery when nothing waits",
       kBytes,
       [](Rig& r) {
         r.queue.SetHandler(r.a);
         r.Arrive("x");
         EXPECT_FALSE(r.queue.delivering());
         r.Arrive("y");
         EXPECT_EQ(r.queue.queued_bytes(), 0u);
         EXPECT_TRUE(r.queue.empty());
       },
       {"a in:x", "a in:y"}},
      {"input during a delivery is queued, not re-entered",
       kMessages,
       [](Rig& r) {
         r.a->on_input = [&r](std::string_view data) {
           if (data == "1") {
             r.Arrive("2");  // the claim is held: queued, delivered after this call returns
             EXPECT_EQ(r.queue.ClaimDirect(), nullptr);
             EXPECT_FALSE(r.queue.ClaimDelivery());
             r.Deliver();  // does nothing: the claimant delivers
           }
         };
         r.queue.SetHandler(r.a);
         r.Arrive("1");
         r.Arrive("3");
       },
       {"a in:1", "a in:2", "a in:3"}},
      {"a handler swapped inside a call gets the rest",
       kMessages,
       [](Rig& r) {
         r.Arrive("1");
         r.Arrive("2");
         r.a->on_input = [&r](std::string_view) { EXPECT_EQ(r.queue.SetHandler(r.b), r.a); };
         r.queue.SetHandler(r.a);
         r.Deliver();
       },
       {"a in:1", "b in:2"}},
      {"removing the handler queues again",
       kMessages,
       [](Rig& r) {
         r.queue.SetHandler(r.a);
         r.Arrive("1");
         r.queue.SetHandler(nullptr);
         r.Arrive("2");
         EXPECT_EQ(r.queue.queued_bytes(), 1u);
         r.queue.SetHandler(r.b);
         r.Deliver();
       },
       {"a in:1", "b in:2"}},
      {"a close is queued once and is the last event",
       kMessages,
       [](Rig& r) {
         r.Arrive("1");
         EXPECT_TRUE(r.queue.PushClose(kReset));
         EXPECT_FALSE(r.queue.PushClose(kPeerClosed));
         EXPECT_FALSE(r.queue.Push("late"));
         EXPECT_TRUE(r.queue.closed());
         r.queue.SetHandler(r.a);
         r.Deliver();
         r.Arrive("later");
         r.Deliver();
       },
       {"a in:1", "a closed:reset: rst"}},
      {"a local close drops queued input and an undelivered close",
       kMessages,
       [](Rig& r) {
         r.Arrive("unread");
         EXPECT_TRUE(r.queue.PushClose(kPeerClosed));
         r.queue.CloseLocally();
         EXPECT_EQ(r.queue.queued_bytes(), 0u);
         EXPECT_FALSE(r.queue.PushClose(kReset));
         r.queue.SetHandler(r.a);
         r.Arrive("late");
         r.Deliver();
       },
       {}},
      {"a local close inside a call ends the delivery after it",
       kMessages,
       [](Rig& r) {
         r.Arrive("1");
         r.Arrive("2");
         r.queue.PushClose(kPeerClosed);
         r.a->on_input = [&r](std::string_view) { r.queue.CloseLocally(); };
         r.queue.SetHandler(r.a);
         r.Deliver();
         EXPECT_FALSE(r.queue.delivering());
       },
       {"a in:1"}},
      {"the bound: back-pressure flag and room",
       kBytes,
       [](Rig& r) {
         EXPECT_TRUE(r.queue.below_bound());
         r.Arrive("abcdef");
         EXPECT_TRUE(r.queue.below_bound());
         EXPECT_TRUE(r.queue.HasRoomFor(2));
         EXPECT_FALSE(r.queue.HasRoomFor(3));
         r.Arrive("ghi");  // a soft bound: accepted past it, reading should pause
         EXPECT_EQ(r.queue.queued_bytes(), 9u);
         EXPECT_FALSE(r.queue.below_bound());
         EXPECT_FALSE(r.queue.HasRoomFor(0));
         r.queue.SetHandler(r.a);
         r.Deliver();
         EXPECT_TRUE(r.queue.below_bound());
         EXPECT_TRUE(r.queue.HasRoomFor(8));
       },
       {"a in:abcdefghi"}},
      {"messages never merge, empty ones included",
       kMessages,
       [](Rig& r) {
         r.Arrive("a");
         r.Arrive("");
         r.Arrive("");
         r.Arrive("b");
         EXPECT_EQ(r.queue.queued_bytes(), 2u);
         r.queue.SetHandler(r.a);
         r.Deliver();
       },
       {"a in:a", "a in:", "a in:", "a in:b"}},
      {"bytes merge only up to the policy's size",
       Queue::Policy{.merge_input_up_to = 4},
       [](Rig& r) {
         r.Arrive("ab");
         r.Arrive("cd");
         r.Arrive("e");
         r.queue.SetHandler(r.a);
         r.Deliver();
       },
       {"a in:abcd", "a in:e"}},
  };
}

TEST(DeliveryQueueTest, Table) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    Rig r(c.policy);
    c.steps(r);
    EXPECT_THAT(r.log, testing::ElementsAreArray(c.calls));
    EXPECT_FALSE(r.queue.delivering()) << "every claim is released";
  }
}

TEST(DeliveryQueueTest, OwnedInputIsMovedNotCopied) {
  Queue q(kMessages);
  std::string owned(1000, 'm');
  const char* bytes = owned.data();
  std::string_view view = owned;
  ASSERT_TRUE(q.Push(view, &owned));
  Handler h("a");
  std::vector<std::string> log;
  h.log = &log;
  q.SetHandler(std::shared_ptr<Handler>(&h, [](Handler*) {}));
  ASSERT_TRUE(q.ClaimDelivery());
  Queue::Delivery d;
  ASSERT_TRUE(q.NextDelivery(d));
  EXPECT_EQ(d.input.data(), bytes);
  EXPECT_FALSE(q.NextDelivery(d));
  EXPECT_FALSE(q.delivering());
}

}  // namespace
}  // namespace netlayer
