// ConnectionState alone: the connection promises that the state machine can show without a
// backend (the contract suite checks them again on every backend).
#include "netlayer/core/connection_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "null_connection.h"

namespace netlayer {
namespace {

using test_support::NullConnection;

// A connection shell for delivery: the state machine only passes it through to the handler.

class Recorder : public ConnectionHandler {
 public:
  void InputData(Connection&, std::string_view data) override {
    EXPECT_FALSE(inside_) << "handler re-entered";
    inside_ = true;
    if (on_input) on_input(data);
    log.push_back("in:" + std::string(data));
    inside_ = false;
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    EXPECT_FALSE(inside_) << "handler re-entered";
    log.push_back("closed:" + reason.ToString());
  }
  std::vector<std::string> log;
  std::function<void(std::string_view)> on_input;

 private:
  bool inside_ = false;
};

struct Fixture {
  ConnectionState state;
  NullConnection conn;
  NoLock lock;
  void Input(std::string_view data) { ReceiveInput(lock, state, conn, data); }
  void Deliver() { DeliverEvents(lock, state, conn); }
};

TEST(ConnectionStateTest, InputAndCloseBeforeHandlerAreQueuedAndDeliveredInOrder) {
  Fixture f;
  f.Input("ab");
  f.Input("cd");
  EXPECT_TRUE(f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, "")).wake_reader);
  EXPECT_FALSE(f.state.IsOpen());
  auto h = std::make_shared<Recorder>();
  EXPECT_EQ(f.state.SetHandler(h), nullptr);
  f.Deliver();
  // Queued input may be merged (promise 6 allows it), but its order and content must hold.
  EXPECT_THAT(h->log, testing::ElementsAre("in:abcd", "closed:peer closed"));
}

TEST(ConnectionStateTest, DirectDeliveryWhenHandlerSetAndNothingQueued) {
  Fixture f;
  auto h = std::make_shared<Recorder>();
  f.state.SetHandler(h);
  f.Input("x");
  f.Input("y");
  EXPECT_THAT(h->log, testing::ElementsAre("in:x", "in:y"));
  EXPECT_EQ(f.state.pending_input_bytes(), 0u);
  EXPECT_FALSE(f.state.delivering());
}

TEST(ConnectionStateTest, InputArrivingDuringDeliveryIsQueuedNotReentered) {
  Fixture f;
  auto h = std::make_shared<Recorder>();
  int depth = 0;
  h->on_input = [&](std::string_view data) {
    if (data == "1" && depth++ == 0) f.Input("2");  // arrives while the handler runs
  };
  f.state.SetHandler(h);
  f.Input("1");
  EXPECT_THAT(h->log, testing::ElementsAre("in:1", "in:2"));
}

TEST(ConnectionStateTest, RemovingTheHandlerQueuesAgain) {
  Fixture f;
  auto h1 = std::make_shared<Recorder>();
  auto h2 = std::make_shared<Recorder>();
  f.state.SetHandler(h1);
  f.Input("a");
  EXPECT_EQ(f.state.SetHandler(nullptr), h1);
  f.Input("b");
  EXPECT_EQ(f.state.pending_input_bytes(), 1u);
  f.state.SetHandler(h2);
  f.Deliver();
  EXPECT_THAT(h1->log, testing::ElementsAre("in:a"));
  EXPECT_THAT(h2->log, testing::ElementsAre("in:b"));
}

TEST(ConnectionStateTest, HandlerSwappedInsideCallbackGetsTheRest) {
  Fixture f;
  auto h1 = std::make_shared<Recorder>();
  auto h2 = std::make_shared<Recorder>();
  f.Input("a");
  f.Input(std::string(70000, 'b'));  // too big to merge: a second event
  h1->on_input = [&](std::string_view) { f.state.SetHandler(h2); };
  f.state.SetHandler(h1);
  f.Deliver();
  ASSERT_EQ(h1->log.size(), 1u);
  EXPECT_EQ(h1->log[0], "in:a");
  ASSERT_EQ(h2->log.size(), 1u);
  EXPECT_EQ(h2->log[0].size(), 3u + 70000u);
}

TEST(ConnectionStateTest, LocalCloseNeverNotifiesAndDropsQueuedEvents) {
  Fixture f;
  f.Input("unread");
  f.state.Close(absl::UnixEpoch());
  f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, ""));
  auto h = std::make_shared<Recorder>();
  f.state.SetHandler(h);
  f.Deliver();
  EXPECT_TRUE(h->log.empty());
}

// A local Close() after the remote close was seen but before it was delivered (no handler yet,
// or a handler that closes from inside InputData) drops both the input and the notification.
TEST(ConnectionStateTest, LocalCloseAfterUndeliveredRemoteCloseDropsIt) {
  Fixture f;
  f.Input("hello");
  f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, ""));
  auto h = std::make_shared<Recorder>();
  h->on_input = [&](std::string_view) {
    EXPECT_FALSE(f.state.Close(absl::UnixEpoch()).shutdown_write) << "nothing to shut down";
  };
  f.state.SetHandler(h);
  f.Deliver();
  EXPECT_THAT(h->log, testing::ElementsAre("in:hello"));
  Fixture g;
  g.Input("unread");
  g.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, ""));
  EXPECT_FALSE(g.state.Close(absl::UnixEpoch()).shutdown_write);
  auto h2 = std::make_shared<Recorder>();
  g.state.SetHandler(h2);
  g.Deliver();
  EXPECT_TRUE(h2->log.empty());
}

TEST(ConnectionStateTest, RemoteCloseNotifiedExactlyOnce) {
  Fixture f;
  auto h = std::make_shared<Recorder>();
  f.state.SetHandler(h);
  EXPECT_TRUE(f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "rst")).wake_reader);
  EXPECT_FALSE(f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kPeerClosed, "")).wake_reader);
  EXPECT_FALSE(f.state.OnEndOfStream().wake_reader);
  f.Deliver();
  f.Input("late");  // input after close is discarded
  f.Deliver();
  EXPECT_THAT(h->log, testing::ElementsAre("closed:reset: rst"));
}

TEST(ConnectionStateTest, PendingInputBoundStopsReading) {
  ConnectionLimits limits;
  limits.max_pending_input_bytes = 4;
  ConnectionState state(limits);
  EXPECT_TRUE(state.WantRead());
  EXPECT_EQ(state.OnInput("abcd"), nullptr);
  EXPECT_FALSE(state.WantRead());
  NullConnection conn;
  NoLock lock;
  auto h = std::make_shared<Recorder>();
  state.SetHandler(h);
  DeliverEvents(lock, state, conn);
  EXPECT_TRUE(state.WantRead());
}

}  // namespace
}  // namespace netlayer

namespace netlayer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A handler that offers its own buffer for the next read (ConnectionHandler::InputBuffer).
class BufferHandler : public ConnectionHandler {
 public:
  void InputData(Connection&, std::string_view data) override {
    in_place.push_back(!own.empty() && data.data() == own.data());
    log.push_back("in:" + std::string(data));
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    log.push_back("closed:" + reason.ToString());
  }
  absl::Span<char> InputBuffer(Connection&) override {
    ++asked;
    return absl::MakeSpan(own);
  }
  std::string own;  // empty: offers nothing
  int asked = 0;
  std::vector<bool> in_place;
  std::vector<std::string> log;
};

struct ReadFixture {
  ConnectionState state;
  test_support::NullConnection connection;
  Connection* handle = &connection;
  NoLock lock;
  std::string driver_buffer = std::string(16, '\0');
  // The driver's send path: what it sent, and in how many sends.
  std::string wire;
  int sends = 0;
  auto Writer() {
    return DriverWriter{
        [this](absl::Span<const std::string_view> pieces, std::optional<CloseReason>&) {
          ++sends;
          size_t n = 0;
          for (std::string_view p : pieces) {
            wire.append(p);
            n += p.size();
          }
          return n;
        },
        [](const ConnectionState::Actions&) {}, [] { return absl::UnixEpoch(); }};
  }
  // One ReadAndReceive whose read writes `bytes` (or returns `result` if bytes is empty); `during`
  // runs between the handler's InputBuffer and the read, as another thread could.
  ptrdiff_t Read(std::string bytes, ptrdiff_t result = -1, std::function<void()> during = {}) {
    bool filled = false;
    return ReadAndReceive(
        lock, state, absl::MakeSpan(driver_buffer), [this] { return handle; },
        [&](absl::Span<char> into) -> ptrdiff_t {
          if (during) during();
          if (bytes.empty()) return result;
          const size_t n = std::min(bytes.size(), into.size());
          std::copy_n(bytes.data(), n, into.data());
          return static_cast<ptrdiff_t>(n);
        },
        Writer(), filled);
  }
};

// A connection whose writes go through the fixture's state and send path, as a backend's do.
class StateConnection final : public Connection {
 public:
  explicit StateConnection(ReadFixture& f) : f_(f) {}
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override {
    auto writer = f_.Writer();
    return WriteThroughClaim(f_.lock, f_.state, pieces, writer.send, writer.carry, writer.now);
  }
  bool IsOpen() const override { return f_.state.IsOpen(); }
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler> h) override {
    return f_.state.SetHandler(std::move(h));
  }
  void Close() override {}
  void Abort() override {}
  size_t QueuedOutputBytes() const override { return f_.state.output_bytes(); }
  Address local_address() const override { return Address::HostName("local", 1); }
  Address peer_address() const override { return Address::HostName("peer", 1); }

 private:
  ReadFixture& f_;
};

// Answers every input with two writes ("<input>" and "."), as a server answering requests does.
class AnsweringHandler : public ConnectionHandler {
 public:
  void InputData(Connection& c, std::string_view data) override {
    ASSERT_TRUE(c.Write("<" + std::string(data) + ">").ok());
    ASSERT_TRUE(c.Write(".").ok());
  }
  void ConnectionClosed(Connection&, const CloseReason&) override {}
};

TEST(ReadAndReceiveTest, ReadsIntoTheHandlersBufferWhenItOffersOneElseIntoTheDrivers) {
  ReadFixture f;
  auto handler = std::make_shared<BufferHandler>();
  f.state.SetHandler(handler);
  EXPECT_EQ(f.Read("abc"), 3);
  EXPECT_EQ(handler->asked, 1);
  handler->own = std::string(4, '\0');
  EXPECT_EQ(f.Read("defgh"), 4) << "at most the offered span";
  EXPECT_THAT(handler->log, ElementsAre("in:abc", "in:defg"));
  EXPECT_THAT(handler->in_place, ElementsAre(false, true));
  EXPECT_FALSE(f.state.delivering()) << "the claim ends with the delivery";
}

TEST(ReadAndReceiveTest, NothingReadEndsTheClaimAndDeliversWhatWasQueuedBehindIt) {
  ReadFixture f;
  auto handler = std::make_shared<BufferHandler>();
  handler->own = std::string(8, '\0');
  f.state.SetHandler(handler);
  EXPECT_EQ(f.Read("", -1), -1);
  EXPECT_FALSE(f.state.delivering());
  EXPECT_TRUE(handler->log.empty());
  // A remote close seen meanwhile (a writer's send failed) waits behind the claim, then comes.
  EXPECT_EQ(f.Read("xyz", 0,
                   [&] { f.state.OnRemoteClosed(CloseReason(CloseReason::Kind::kReset, "boom")); }),
            3);
  ASSERT_EQ(handler->log.size(), 1u) << "input after the close is discarded";
  EXPECT_THAT(handler->log[0], HasSubstr("closed:"));
  EXPECT_FALSE(f.state.delivering());
}

TEST(ReadAndReceiveTest, LocalCloseOrAGoneHandleDuringTheReadDiscardsTheInput) {
  {
    ReadFixture f;
    auto handler = std::make_shared<BufferHandler>();
    handler->own = std::string(8, '\0');
    f.state.SetHandler(handler);
    EXPECT_EQ(f.Read("abc", 0, [&] { f.state.Close(absl::UnixEpoch()); }), 3);
    EXPECT_TRUE(handler->log.empty());
    EXPECT_FALSE(f.state.delivering());
    EXPECT_EQ(f.Read("abc"), 3);
    EXPECT_EQ(handler->asked, 1) << "no buffer is asked for once closed";
  }
  {
    ReadFixture f;
    auto handler = std::make_shared<BufferHandler>();
    handler->own = std::string(8, '\0');
    f.state.SetHandler(handler);
    EXPECT_EQ(f.Read("abc", 0,
                     [&] {
                       f.handle =
                           nullptr;  // the application's handle was destroyed: its handler removed
                       f.state.SetHandler(nullptr);
                     }),
              3);
    EXPECT_TRUE(handler->log.empty());
    EXPECT_FALSE(f.state.delivering());
  }
}

TEST(ReadAndReceiveTest, NoBufferIsAskedForWhileInputWaitsForAHandler) {
  ReadFixture f;
  EXPECT_EQ(f.Read("abc"), 3);  // no handler: queued
  auto handler = std::make_shared<BufferHandler>();
  handler->own = std::string(8, '\0');
  f.state.SetHandler(handler);  // not delivered yet (no delivery loop ran)
  EXPECT_EQ(f.Read("def"), 3);
  EXPECT_EQ(handler->asked, 0) << "input waits: the next goes behind it, not into the handler";
  EXPECT_THAT(handler->log, ElementsAre("in:abcdef"));
}

TEST(ReadAndReceiveTest, AnswersWrittenDuringADeliveryLeaveTogetherInOneSendWhenItReturns) {
  ReadFixture f;
  StateConnection connection(f);
  f.handle = &connection;
  f.state.SetHandler(std::make_shared<AnsweringHandler>());
  EXPECT_EQ(f.Read("ab"), 2);
  EXPECT_EQ(f.wire, "<ab>.");
  EXPECT_EQ(f.sends, 1) << "both answers in one gather send";
  EXPECT_FALSE(f.state.corked());
  EXPECT_EQ(f.state.sender(), ConnectionState::Sender::kNone) << "the claim ended";
  // Outside a delivery a write is sent at once, by its own send.
  ASSERT_TRUE(connection.Write("x").ok());
  EXPECT_EQ(f.wire, "<ab>.x");
  EXPECT_EQ(f.sends, 2);
}

}  // namespace
}  // namespace netlayer
