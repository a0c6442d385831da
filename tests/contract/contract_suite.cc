// The six connection promises of netlayer/core/connection.h, on whichever backend the binary
// instantiates. Handlers here may run on backend threads (posix), so everything they touch is
// guarded; each test waits on conditions with deadlines, never sleeps.
#include "contract_suite.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netlayer/core/generator.h"

namespace netlayer::contract {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

// What a connection's handlers saw, shared by every handler installed on that connection.
struct Sink {
  mutable std::mutex mu;
  std::string received;             // guarded by mu
  std::vector<CloseReason> closes;  // guarded by mu
  size_t received_at_close = 0;     // guarded by mu
  std::atomic<int> inside{0};       // handlers running right now on this connection
  std::atomic<int> max_inside{0};
  std::atomic<size_t> received_bytes{0};
  std::atomic<int> close_count{0};

  std::string Received() const {
    std::lock_guard<std::mutex> lock(mu);
    return received;
  }
  std::vector<CloseReason> Closes() const {
    std::lock_guard<std::mutex> lock(mu);
    return closes;
  }
};

// Records into a Sink, and checks it is never entered twice at once for one connection.
class Recorder : public ConnectionHandler {
 public:
  explicit Recorder(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {}
  std::function<void(Connection&, std::string_view)> on_input;  // set before installing

  void InputData(Connection& connection, std::string_view data) override {
    Enter();
    EXPECT_FALSE(data.empty());
    {
      std::lock_guard<std::mutex> lock(sink_->mu);
      sink_->received.append(data);
    }
    sink_->received_bytes += data.size();
    if (on_input) on_input(connection, data);
    Leave();
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    Enter();
    {
      std::lock_guard<std::mutex> lock(sink_->mu);
      sink_->closes.push_back(reason);
      sink_->received_at_close = sink_->received.size();
    }
    sink_->close_count++;
    Leave();
  }

 private:
  void Enter() {
    int now = ++sink_->inside;
    int max = sink_->max_inside.load();
    while (now > max && !sink_->max_inside.compare_exchange_weak(max, now)) {
    }
  }
  void Leave() { --sink_->inside; }
  std::shared_ptr<Sink> sink_;
};

std::string Pattern(size_t size, uint64_t seed) {
  Xoshiro256 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>('a' + UniformInt(gen, 0, 25));
  return out;
}

// Writes `data` in pieces of random sizes (1..max_piece), as many small Writes.
void WriteInPieces(Connection& c, std::string_view data, size_t max_piece, uint64_t seed) {
  Xoshiro256 gen(seed);
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), UniformInt(gen, 1, max_piece));
    ASSERT_TRUE(c.Write(data.substr(0, n)).ok());
    data.remove_prefix(n);
  }
}

// Promise 1: input and close that arrive before a handler is set are queued, then delivered in
// order once one is set.
TEST_P(ContractTest, InputAndCloseBeforeHandlerAreDeliveredInOrder) {
  auto pair = backend().Connect();
  ASSERT_TRUE(pair.server->Write("hello ").ok());
  ASSERT_TRUE(pair.server->Write("world").ok());
  pair.server->Close();
  // The client learns of the close before any handler is set.
  ASSERT_TRUE(backend().WaitFor([&] { return !pair.client->IsOpen(); }, kWait));
  auto sink = std::make_shared<Sink>();
  EXPECT_EQ(pair.client->SetHandler(std::make_shared<Recorder>(sink)), nullptr);
  ASSERT_TRUE(backend().WaitFor([&] { return sink->close_count.load() == 1; }, kWait));
  EXPECT_EQ(sink->Received(), "hello world");
  std::lock_guard<std::mutex> lock(sink->mu);
  EXPECT_EQ(sink->received_at_close, 11u) << "close was delivered before the data";
  EXPECT_EQ(sink->closes[0].kind(), CloseReason::Kind::kPeerClosed) << sink->closes[0];
}

TEST_P(ContractTest, SetHandlerReturnsThePreviousHandler) {
  auto pair = backend().Connect();
  auto sink = std::make_shared<Sink>();
  auto h1 = std::make_shared<Recorder>(sink);
  auto h2 = std::make_shared<Recorder>(sink);
  EXPECT_EQ(pair.client->SetHandler(h1), nullptr);
  EXPECT_EQ(pair.client->SetHandler(h2), h1);
  EXPECT_EQ(pair.client->SetHandler(nullptr), h2);
  EXPECT_TRUE(pair.client->IsOpen());
  EXPECT_TRUE(pair.server->IsOpen());
  pair.client->Close();
  pair.server->Close();
}

// Promise 2: never re-entered, never two at once, even while the handler is swapped from another
// thread and the handler itself writes and calls SetHandler.
TEST_P(ContractTest, HandlerIsNeverReenteredOrConcurrent) {
  auto pair = backend().Connect();
  auto server_sink = std::make_shared<Sink>();
  auto client_sink = std::make_shared<Sink>();
  auto a = std::make_shared<Recorder>(server_sink);
  auto b = std::make_shared<Recorder>(server_sink);
  auto echo = [](Connection& c, std::string_view data) {
    ASSERT_TRUE(c.Write(data).ok());  // Write from inside a handler must not deadlock
  };
  a->on_input = echo;
  b->on_input = [b_weak = std::weak_ptr<Recorder>(b), echo](Connection& c, std::string_view d) {
    echo(c, d);
    // Re-installing itself from inside the callback must not re-enter it.
    if (auto self = b_weak.lock()) c.SetHandler(self);
  };
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  const std::string data = Pattern(200000, 11);
  WriteInPieces(*pair.client, data, 700, 12);
  size_t last = 0;
  for (int i = 0; server_sink->received_bytes.load() < data.size(); ++i) {
    ASSERT_LT(i, 100000) << "no progress";
    pair.server->SetHandler(i % 2 == 0 ? std::shared_ptr<ConnectionHandler>(a) : b);
    ASSERT_TRUE(backend().WaitFor([&] { return server_sink->received_bytes.load() > last; }, kWait))
        << "stalled at " << last << " of " << data.size();
    last = server_sink->received_bytes.load();
  }
  ASSERT_TRUE(
      backend().WaitFor([&] { return client_sink->received_bytes.load() == data.size(); }, kWait));
  EXPECT_EQ(server_sink->Received(), data);
  EXPECT_EQ(client_sink->Received(), data);
  EXPECT_EQ(server_sink->max_inside.load(), 1);
  EXPECT_EQ(client_sink->max_inside.load(), 1);
  pair.server->SetHandler(nullptr);  // break the handlers' reference cycle through the lambdas
  pair.client->Close();
  pair.server->Close();
}

// Promise 3: Close() sends everything written before it.
TEST_P(ContractTest, CloseFlushesWhatWasWritten) {
  auto pair = backend().Connect();
  auto sink = std::make_shared<Sink>();
  pair.server->SetHandler(std::make_shared<Recorder>(sink));
  const std::string data = Pattern(1 << 20, 3);
  for (size_t off = 0; off < data.size(); off += 65536) {
    ASSERT_TRUE(pair.client->Write(std::string_view(data).substr(off, 65536)).ok());
  }
  pair.client->Close();
  EXPECT_FALSE(pair.client->IsOpen());
  ASSERT_TRUE(backend().WaitFor([&] { return sink->close_count.load() == 1; }, kWait));
  EXPECT_EQ(sink->Received().size(), data.size());
  EXPECT_TRUE(sink->Received() == data) << "flushed bytes differ";
  EXPECT_EQ(sink->Closes()[0].kind(), CloseReason::Kind::kPeerClosed);
  pair.server->Close();
}

// Promise 4: ConnectionClosed fires once for a remote close, never for a local Close().
TEST_P(ContractTest, RemoteCloseNotifiedOnceLocalCloseNever) {
  auto pair = backend().Connect();
  auto client_sink = std::make_shared<Sink>();
  auto server_sink = std::make_shared<Sink>();
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  pair.server->SetHandler(std::make_shared<Recorder>(server_sink));
  pair.client->Close();
  ASSERT_TRUE(backend().WaitFor([&] { return server_sink->close_count.load() == 1; }, kWait));
  pair.server->Close();  // a local close after the remote one: nothing more
  pair.client->Close();  // idempotent
  backend().Quiesce(absl::Milliseconds(200));
  EXPECT_EQ(server_sink->close_count.load(), 1);
  EXPECT_EQ(client_sink->close_count.load(), 0) << "a local Close() must not be notified";
}

// A local Close() made after the peer's close arrived but before it was delivered: the handler
// hears nothing more (here: it closes from inside the first InputData).
TEST_P(ContractTest, LocalCloseInsideHandlerSuppressesAQueuedRemoteClose) {
  auto pair = backend().Connect();
  ASSERT_TRUE(pair.server->Write("hello").ok());
  pair.server->Close();
  ASSERT_TRUE(backend().WaitFor([&] { return !pair.client->IsOpen(); }, kWait));
  auto sink = std::make_shared<Sink>();
  auto closer = std::make_shared<Recorder>(sink);
  closer->on_input = [](Connection& c, std::string_view) { c.Close(); };
  pair.client->SetHandler(closer);
  ASSERT_TRUE(backend().WaitFor([&] { return sink->received_bytes.load() == 5; }, kWait));
  backend().Quiesce(absl::Milliseconds(100));
  EXPECT_EQ(sink->close_count.load(), 0) << "ConnectionClosed after a local Close()";
  EXPECT_EQ(pair.client->Write("x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(ContractTest, AbortIsSeenOnceAsAResetByThePeer) {
  auto pair = backend().Connect();
  auto client_sink = std::make_shared<Sink>();
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  ASSERT_TRUE(pair.server->Write("before reset").ok());
  ASSERT_TRUE(backend().WaitFor([&] { return client_sink->received_bytes.load() == 12; }, kWait));
  pair.server->Abort();
  ASSERT_TRUE(backend().WaitFor([&] { return client_sink->close_count.load() == 1; }, kWait));
  backend().Quiesce(absl::Milliseconds(200));
  EXPECT_EQ(client_sink->close_count.load(), 1);
  EXPECT_EQ(client_sink->Closes()[0].kind(), backend().AbortSeenAs()) << client_sink->Closes()[0];
  EXPECT_FALSE(pair.client->IsOpen());
  EXPECT_EQ(pair.client->Write("after").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(ContractTest, HandlerMayCloseItsConnectionFromInsideACallback) {
  auto pair = backend().Connect();
  auto server_sink = std::make_shared<Sink>();
  auto client_sink = std::make_shared<Sink>();
  auto closer = std::make_shared<Recorder>(server_sink);
  closer->on_input = [](Connection& c, std::string_view) {
    ASSERT_TRUE(c.Write("bye").ok());
    c.Close();
  };
  pair.server->SetHandler(closer);
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  ASSERT_TRUE(pair.client->Write("hi").ok());
  ASSERT_TRUE(backend().WaitFor([&] { return client_sink->close_count.load() == 1; }, kWait));
  EXPECT_EQ(client_sink->Received(), "bye");
  backend().Quiesce(absl::Milliseconds(100));
  EXPECT_EQ(server_sink->close_count.load(), 0);
  pair.client->Close();
}

// Promise 5: Write after close fails cleanly.
TEST_P(ContractTest, WriteAfterCloseFailsCleanly) {
  auto pair = backend().Connect();
  pair.client->Close();
  EXPECT_EQ(pair.client->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  // And after the peer closed.
  ASSERT_TRUE(backend().WaitFor([&] { return !pair.server->IsOpen(); }, kWait));
  EXPECT_EQ(pair.server->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  std::string_view pieces[] = {"a", "b"};
  EXPECT_EQ(pair.server->WriteV(pieces).code(), absl::StatusCode::kFailedPrecondition);
}

// Promise 6: in order, never duplicated, both directions at once, any boundaries.
TEST_P(ContractTest, BytesArriveInOrderBothWaysAtOnce) {
  auto pair = backend().Connect();
  auto client_sink = std::make_shared<Sink>();
  auto server_sink = std::make_shared<Sink>();
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  pair.server->SetHandler(std::make_shared<Recorder>(server_sink));
  const std::string up = Pattern(300000, 21);
  const std::string down = Pattern(300000, 22);
  if (backend().threaded()) {
    std::thread writer([&] { WriteInPieces(*pair.server, down, 5000, 23); });
    WriteInPieces(*pair.client, up, 5000, 24);
    writer.join();
  } else {
    WriteInPieces(*pair.server, down, 5000, 23);
    WriteInPieces(*pair.client, up, 5000, 24);
  }
  ASSERT_TRUE(backend().WaitFor(
      [&] {
        return server_sink->received_bytes.load() >= up.size() &&
               client_sink->received_bytes.load() >= down.size();
      },
      kWait));
  backend().Quiesce(absl::Milliseconds(50));
  EXPECT_TRUE(server_sink->Received() == up) << "client->server bytes differ";
  EXPECT_TRUE(client_sink->Received() == down) << "server->client bytes differ";
  pair.client->Close();
  pair.server->Close();
}

// Input beyond the pending-input bound while no handler is set is held back, not lost.
TEST_P(ContractTest, ManyMegabytesBeforeAHandlerAreAllDelivered) {
  auto pair = backend().Connect();
  const std::string data = Pattern(20 << 20, 31);
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    ASSERT_TRUE(pair.client->Write(std::string_view(data).substr(off, 1 << 20)).ok());
  }
  backend().Quiesce(absl::Milliseconds(100));
  auto sink = std::make_shared<Sink>();
  pair.server->SetHandler(std::make_shared<Recorder>(sink));
  ASSERT_TRUE(backend().WaitFor([&] { return sink->received_bytes.load() >= data.size(); }, kWait));
  EXPECT_TRUE(sink->Received() == data);
  pair.client->Close();
  pair.server->Close();
}

// A frame of `size` bytes naming its writer and sequence number: "<w,seq>" then padding.
std::string Frame(int writer, int seq, size_t size) {
  std::string f = "<" + std::to_string(writer) + "," + std::to_string(seq) + ">";
  f.resize(size, static_cast<char>('a' + (writer * 7 + seq) % 26));
  return f;
}

// Parses `received` as whole frames of `size` bytes; fails the test on a torn or unknown frame.
// Returns the sequence numbers seen per writer, in arrival order.
std::vector<std::vector<int>> ParseFrames(std::string_view received, size_t size, int writers) {
  std::vector<std::vector<int>> seen(static_cast<size_t>(writers));
  EXPECT_EQ(received.size() % size, 0u) << "a frame was torn";
  for (size_t off = 0; off + size <= received.size(); off += size) {
    std::string_view f = received.substr(off, size);
    int w = -1;
    int seq = -1;
    if (std::sscanf(std::string(f.substr(0, 24)).c_str(), "<%d,%d>", &w, &seq) != 2 || w < 0 ||
        w >= writers || f != Frame(w, seq, size)) {
      ADD_FAILURE() << "frame at offset " << off << " is not a whole frame";
      return seen;
    }
    seen[static_cast<size_t>(w)].push_back(seq);
  }
  return seen;
}

// Promises 3 and 6 under load: several writers at once (threads on a threaded backend), while
// the peer reads slowly (no handler at first: back-pressure fills every buffer and bound). Each
// write is one whole frame on the wire, each writer's frames arrive in its order, none is lost.
TEST_P(ContractTest, ManyWritersKeepTheirOrderWhileThePeerReadsSlowly) {
  auto pair = backend().Connect();
  constexpr int kWriters = 4;
  constexpr int kFrames = 200;
  constexpr size_t kSize = 4096;
  std::vector<int> accepted(kWriters, 0);
  auto write_one = [&](int w) {
    absl::Status s = pair.client->Write(Frame(w, accepted[static_cast<size_t>(w)], kSize));
    if (s.ok()) ++accepted[static_cast<size_t>(w)];
    return s;
  };
  if (backend().threaded()) {
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    std::atomic<int> done{0};
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        while (accepted[static_cast<size_t>(w)] < kFrames && !failed) {
          absl::Status s = write_one(w);
          if (!s.ok() && s.code() != absl::StatusCode::kResourceExhausted) failed = true;
        }
        ++done;
      });
    }
    // The peer starts reading after a while: the writers meet back-pressure meanwhile (or, with
    // buffers larger than all the data, finish first).
    auto sink = std::make_shared<Sink>();
    ASSERT_TRUE(backend().WaitFor(
        [&] { return pair.client->QueuedOutputBytes() > 0 || done.load() == kWriters; }, kWait));
    pair.server->SetHandler(std::make_shared<Recorder>(sink));
    for (std::thread& t : threads) t.join();
    ASSERT_FALSE(failed);
    ASSERT_TRUE(backend().WaitFor(
        [&] { return sink->received_bytes.load() == kWriters * kFrames * kSize; }, kWait));
    std::vector<std::vector<int>> seen = ParseFrames(sink->Received(), kSize, kWriters);
    for (int w = 0; w < kWriters; ++w) {
      std::vector<int> want(kFrames);
      for (int i = 0; i < kFrames; ++i) want[static_cast<size_t>(i)] = i;
      EXPECT_EQ(seen[static_cast<size_t>(w)], want) << "writer " << w;
    }
  } else {
    // One thread: the writers take turns, letting the network run a little between turns.
    auto sink = std::make_shared<Sink>();
    for (int round = 0; round < kFrames; ++round) {
      for (int w = 0; w < kWriters; ++w) {
        absl::Status s = write_one(w);
        ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kResourceExhausted) << s;
      }
      if (round % 16 == 0) backend().Quiesce(absl::Microseconds(200));
      if (round == kFrames / 2) pair.server->SetHandler(std::make_shared<Recorder>(sink));
    }
    size_t total = 0;
    for (int n : accepted) total += static_cast<size_t>(n) * kSize;
    ASSERT_TRUE(backend().WaitFor([&] { return sink->received_bytes.load() == total; }, kWait));
    std::vector<std::vector<int>> seen = ParseFrames(sink->Received(), kSize, kWriters);
    for (int w = 0; w < kWriters; ++w) {
      const std::vector<int>& got = seen[static_cast<size_t>(w)];
      ASSERT_EQ(got.size(), static_cast<size_t>(accepted[static_cast<size_t>(w)]));
      for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i));
    }
  }
  pair.client->Close();
  pair.server->Close();
}

// Close() to a peer that never reads is bounded: the flush waits at most the close linger, then
// the stream is reset. The peer, once it reads, finds a prefix of what was written, then the
// reset (never a silent end of stream, never more than was written). The closing end hears
// nothing (a local close).
TEST_P(ContractTest, CloseToAPeerThatNeverReadsEndsWithAResetAfterTheLinger) {
  if (!backend().BackPressureReachesTheSender()) {
    GTEST_SKIP() << "this backend's receiver keeps reading without a handler";
  }
  auto pair = backend().Connect();
  auto client_sink = std::make_shared<Sink>();
  pair.client->SetHandler(std::make_shared<Recorder>(client_sink));
  const std::string data = Pattern(32 << 20, 41);  // far more than every buffer on the way
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    absl::Status s = pair.client->Write(std::string_view(data).substr(off, 1 << 20));
    if (s.code() == absl::StatusCode::kResourceExhausted) break;  // a backend with a lower bound
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(backend().WaitFor([&] { return pair.client->QueuedOutputBytes() > 0; }, kWait));
  pair.client->Close();
  // The linger passes with output unsent: the output is discarded and the stream reset.
  ASSERT_TRUE(backend().WaitFor([&] { return pair.client->QueuedOutputBytes() == 0; }, kWait));
  auto sink = std::make_shared<Sink>();
  pair.server->SetHandler(std::make_shared<Recorder>(sink));
  ASSERT_TRUE(backend().WaitFor([&] { return sink->close_count.load() == 1; }, kWait));
  const std::string got = sink->Received();
  EXPECT_LT(got.size(), data.size());
  EXPECT_TRUE(got == std::string_view(data).substr(0, got.size())) << "not a prefix";
  EXPECT_EQ(sink->Closes()[0].kind(), backend().AbortSeenAs()) << sink->Closes()[0];
  backend().Quiesce(absl::Milliseconds(100));
  EXPECT_EQ(client_sink->close_count.load(), 0);
  pair.server->Close();
}

// Promise 3 against the direct-send path: writes racing Close() (threads on a threaded
// backend; on one thread, a write whose direct send was partial right before Close()). Every
// write that returned OK arrives whole and in its writer's order; none that failed arrives.
TEST_P(ContractTest, CloseRacingDirectSendsFlushesEveryAcceptedWrite) {
  auto pair = backend().Connect();
  auto sink = std::make_shared<Sink>();
  pair.server->SetHandler(std::make_shared<Recorder>(sink));
  constexpr int kWriters = 4;
  constexpr size_t kSize = 1500;
  constexpr int kMaxFrames = 1000;
  std::vector<int> accepted(kWriters, 0);
  if (backend().threaded()) {
    std::vector<std::thread> threads;
    std::atomic<int> started{0};
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        ++started;
        // At most kMaxFrames each: what is queued at Close() must flush within the linger even
        // on a slow transport (beyond it the connection is reset: another test's subject).
        while (accepted[static_cast<size_t>(w)] < kMaxFrames) {
          absl::Status s = pair.client->Write(Frame(w, accepted[static_cast<size_t>(w)], kSize));
          if (s.ok()) {
            ++accepted[static_cast<size_t>(w)];
          } else if (s.code() != absl::StatusCode::kResourceExhausted) {
            EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
            return;
          }
        }
      });
    }
    ASSERT_TRUE(
        backend().WaitFor([&] { return sink->received_bytes.load() > 100 * kSize; }, kWait));
    pair.client->Close();
    for (std::thread& t : threads) t.join();
  } else {
    for (int i = 0; i < 50; ++i) {
      for (int w = 0; w < kWriters; ++w) {
        ASSERT_TRUE(pair.client->Write(Frame(w, accepted[static_cast<size_t>(w)], kSize)).ok());
        ++accepted[static_cast<size_t>(w)];
      }
      if (i == 25) backend().Quiesce(absl::Microseconds(300));
    }
    pair.client->Close();
  }
  ASSERT_TRUE(backend().WaitFor([&] { return sink->close_count.load() == 1; }, kWait));
  EXPECT_EQ(sink->Closes()[0].kind(), CloseReason::Kind::kPeerClosed) << sink->Closes()[0];
  std::vector<std::vector<int>> seen = ParseFrames(sink->Received(), kSize, kWriters);
  for (int w = 0; w < kWriters; ++w) {
    const std::vector<int>& got = seen[static_cast<size_t>(w)];
    ASSERT_EQ(got.size(), static_cast<size_t>(accepted[static_cast<size_t>(w)])) << "writer " << w;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i));
  }
  pair.server->Close();
}

}  // namespace
}  // namespace netlayer::contract
