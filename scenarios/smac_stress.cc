// smac-stress: messages from 0 bytes to several MiB through the simulator's random chunking,
// short writes, bounded socket buffers (back-pressure) and a slow reader that stops reading now
// and then; connections may be reset by the seed's faults.
//
// Safety: on each connection, every message arrives whole, once and in order (its size and every
// byte are checked against what was sent); a connection that ends early reports why; a sender's
// Close() delivers every message before the peer sees the close.
// Liveness: after faults stop, messages flow again.
//
// Planted bug "drop-first-byte-of-split-frame": the receiver's connection drops the first byte
// of any read that starts inside a frame, the kind of bug a hand-written framing layer has.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "builtin.h"
#include "netlayer/core/assert.h"
#include "netlayer/smac/message_connection.h"

namespace netlayer::scenarios {
namespace {

using sim::HostId;
using sim::ScenarioContext;

constexpr uint16_t kPort = 9000;
constexpr size_t kMessagesPerConnection = 20;
constexpr size_t kSenderQueueLimit = size_t{4} << 20;  // back-pressure: stop sending above it

// The byte at `offset` of message `index` of connection `epoch`: checkable without storing it.
char PatternByte(uint64_t epoch, uint64_t index, size_t offset) {
  uint64_t x = (epoch * 0x9E3779B97F4A7C15ULL) ^ (index * 0xBF58476D1CE4E5B9ULL) ^ offset;
  x ^= x >> 29;
  return static_cast<char>(x * 0x94D049BB133111EBULL >> 56);
}

// A Connection that passes everything through, except that (when planted) it drops the first
// byte of each read that begins inside a smac frame.
class DropFirstByteOfSplitFrame final : public Connection {
 public:
  explicit DropFirstByteOfSplitFrame(std::shared_ptr<Connection> inner)
      : inner_(std::move(inner)) {}
  bool IsOpen() const override { return inner_->IsOpen(); }
  std::shared_ptr<ConnectionHandler> SetHandler(std::shared_ptr<ConnectionHandler> h) override {
    auto wrapper = h ? std::make_shared<Wrapper>(this, h) : nullptr;
    auto old = inner_->SetHandler(wrapper);
    auto old_wrapper = std::static_pointer_cast<Wrapper>(old);
    return old_wrapper ? old_wrapper->inner : nullptr;
  }
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override {
    return inner_->WriteV(pieces);
  }
  void Close() override { inner_->Close(); }
  void Abort() override { inner_->Abort(); }
  size_t QueuedOutputBytes() const override { return inner_->QueuedOutputBytes(); }
  Address local_address() const override { return inner_->local_address(); }
  Address peer_address() const override { return inner_->peer_address(); }

 private:
  struct Wrapper final : ConnectionHandler {
    Wrapper(DropFirstByteOfSplitFrame* owner, std::shared_ptr<ConnectionHandler> inner)
        : owner(owner), inner(std::move(inner)) {}
    void InputData(Connection&, std::string_view data) override {
      const bool inside_frame = owner->header_have_ > 0 || owner->body_left_ > 0;
      owner->Track(data);
      if (inside_frame) data.remove_prefix(1);  // the bug
      if (!data.empty()) inner->InputData(*owner, data);
    }
    void ConnectionClosed(Connection&, const CloseReason& reason) override {
      inner->ConnectionClosed(*owner, reason);
    }
    DropFirstByteOfSplitFrame* owner;
    std::shared_ptr<ConnectionHandler> inner;
  };
  // Follows frame boundaries in the original bytes.
  void Track(std::string_view data) {
    for (size_t i = 0; i < data.size();) {
      if (body_left_ > 0) {
        const size_t n = std::min(body_left_, data.size() - i);
        body_left_ -= n;
        i += n;
        continue;
      }
      header_ = (header_ << 8) | static_cast<uint8_t>(data[i++]);
      if (++header_have_ == 4) {
        body_left_ = static_cast<uint32_t>(header_);
        header_have_ = 0;
        header_ = 0;
      }
    }
  }
  std::shared_ptr<Connection> inner_;
  size_t header_have_ = 0;
  uint64_t header_ = 0;
  size_t body_left_ = 0;
};

class SmacStress final : public sim::Scenario {
 public:
  std::vector<sim::Plant> Plants() const override {
    return {{kDropFirstByteOfSplitFrame,
             "the receiver drops the first byte of a frame split across reads"},
            {kAbort, "the run aborts at its first event (a sweep must report a crashed run)"}};
  }

  sim::FaultProfile Profile(uint64_t seed) override {
    // The seed's network shape (chunking, short writes, buffers, latency), and for half of the
    // seeds connection resets; no partitions or crashes (two hosts: nothing to route around).
    sim::FaultProfile profile = sim::DrawNetworkProfile(seed);
    Xoshiro256 gen(seed ^ 0x736d6163ULL);
    if (Bernoulli(gen, 0.5)) profile.reset_rate = 0.05 + 0.3 * UniformDouble(gen);
    return profile;
  }
  absl::Duration FaultPhase() const override { return absl::Seconds(6); }
  absl::Duration LivenessBound() const override { return absl::Seconds(30); }

  void Setup(ScenarioContext& ctx) override {
    ctx_ = &ctx;
    world_ = &ctx.world();
    NETLAYER_ASSERT(!ctx.planted(kAbort),
                    "planted abort (a sweep must report this run as crashed)");
    sender_host_ = *world_->AddHost("sender");
    receiver_host_ = *world_->AddHost("receiver");
    auto listener = world_->server_factory(receiver_host_)
                        .Listen(Address::HostName("receiver", kPort),
                                [this](std::shared_ptr<Connection> c) { Accepted(std::move(c)); });
    ctx.Check(listener.ok(), "the receiver listens", [&] { return listener.status().ToString(); });
    if (!listener.ok()) return;
    listener_ = *listener;
    Connect();
  }

  void OnFaultsStopped(ScenarioContext& ctx) override {
    const uint64_t at_heal = delivered_;
    ctx.Eventually(
        "messages flow again", [this, at_heal] { return delivered_ >= at_heal + 10; },
        [this, at_heal] {
          return absl::StrCat(delivered_ - at_heal, " of 10 messages delivered");
        });
  }

  void Finish(ScenarioContext&) override {
    stopping_ = true;
    world_->Note(receiver_host_,
                 absl::StrCat("delivered ", delivered_, " messages, ", delivered_bytes_,
                              " bytes, over ", epochs_, " connections"));
    if (sender_) sender_->Close();
    listener_->Close();
  }

 private:
  // What the sender sent on one connection (the oracle), and what the receiver got.
  struct Stream {
    std::vector<size_t> sizes;  // of the messages sent so far
    size_t received = 0;
    bool sender_closed = false;
  };

  // One accepted connection. Its first message names the sender's connection number.
  class Receiver final : public smac::MessageHandler {
   public:
    Receiver(SmacStress* s, uint64_t accepted) : s_(s), accepted_(accepted) {}
    void MessageReceived(smac::MessageConnection& c, std::string_view m) override {
      if (epoch_ == 0) {
        const absl::string_view text(m.data(), m.size());
        s_->ctx_->Check(
            absl::StartsWith(text, "epoch:") && absl::SimpleAtoi(text.substr(6), &epoch_) &&
                s_->streams_.count(epoch_) == 1,
            "a connection's first message names it",
            [&] { return absl::StrCat("got '", absl::CHexEscape(text.substr(0, 32)), "'"); });
        return;
      }
      s_->OnMessage(c, epoch_, m);
    }
    void ConnectionClosed(smac::MessageConnection&, const CloseReason& r) override {
      s_->OnReceiverClosed(accepted_, epoch_, r);
    }

   private:
    SmacStress* s_;
    uint64_t accepted_;
    uint64_t epoch_ = 0;
  };

  class SenderEvents final : public ConnectHandler, public smac::MessageHandler {
   public:
    explicit SenderEvents(SmacStress* s) : s_(s) {}
    void Connected(std::shared_ptr<Connection> c) override { s_->OnConnected(std::move(c)); }
    void FailedConnection(const absl::Status& status) override {
      s_->ctx_->Fail("the sender connects (no max_attempts)", status.ToString());
    }
    void MessageReceived(smac::MessageConnection&, std::string_view) override {}
    void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
      s_->OnSenderClosed(reason);
    }

   private:
    SmacStress* s_;
  };

  void Connect() {
    if (stopping_) return;
    ConnectOptions options;
    options.min_delay = absl::Milliseconds(50);
    options.max_delay = absl::Milliseconds(500);
    options.delay_backoff = 2;
    auto attempt = world_->client_factory(sender_host_)
                       .Connect({Address::HostName("receiver", kPort)}, options,
                                std::make_shared<SenderEvents>(this));
    ctx_->Check(attempt.ok(), "connect starts", [&] { return attempt.status().ToString(); });
  }

  void Accepted(std::shared_ptr<Connection> connection) {
    const uint64_t epoch = ++accepted_;  // the accept number, not the sender's epoch
    if (ctx_->planted(kDropFirstByteOfSplitFrame)) {
      connection = std::make_shared<DropFirstByteOfSplitFrame>(std::move(connection));
    }
    smac::MessageOptions options;
    options.max_message_size = size_t{8} << 20;
    auto receiver = smac::MessageConnection::Create(std::move(connection), options);
    receiver->SetHandler(std::make_shared<Receiver>(this, epoch));
    receivers_[epoch] = receiver;  // by accept number
  }

  void OnConnected(std::shared_ptr<Connection> connection) {
    ++epochs_;
    epoch_ = epochs_;
    streams_[epoch_] = Stream{};
    smac::MessageOptions options;
    options.max_message_size = size_t{8} << 20;
    sender_ = smac::MessageConnection::Create(std::move(connection), options);
    sender_->SetHandler(std::make_shared<SenderEvents>(this));
    (void)sender_->Send(absl::StrCat("epoch:", epoch_));
    Pump();
  }

  // Sends while the output queue is below its limit; then checks again shortly (back-pressure).
  void Pump() {
    if (stopping_ || sender_ == nullptr || !sender_->IsOpen()) return;
    Stream& stream = streams_[epoch_];
    Generator& gen = world_->generator();
    while (stream.sizes.size() < kMessagesPerConnection &&
           sender_->QueuedOutputBytes() < kSenderQueueLimit) {
      // Mostly small messages, some large, a few of several MiB.
      const double kind = UniformDouble(gen);
      size_t size;
      if (kind < 0.10) {
        size = 0;
      } else if (kind < 0.45) {
        size = UniformInt(gen, 1, 64);
      } else if (kind < 0.85) {
        size = UniformInt(gen, 65, 16 << 10);
      } else if (kind < 0.97) {
        size = UniformInt(gen, (16 << 10) + 1, 256 << 10);
      } else {
        size = UniformInt(gen, (256 << 10) + 1, 3 << 20);
      }
      const uint64_t index = stream.sizes.size();
      std::string message(size, '\0');
      for (size_t i = 0; i < size; ++i) message[i] = PatternByte(epoch_, index, i);
      absl::Status sent = sender_->Send(message);
      if (!sent.ok()) {
        ctx_->Check(sent.code() == absl::StatusCode::kResourceExhausted ||
                        sent.code() == absl::StatusCode::kFailedPrecondition,
                    "a send fails only when the queue is full or the connection closed",
                    [&] { return sent.ToString(); });
        break;
      }
      stream.sizes.push_back(size);
    }
    if (stream.sizes.size() == kMessagesPerConnection) {
      // All sent: close (it flushes), and start the next connection after a pause.
      stream.sender_closed = true;
      sender_->Close();
      sender_ = nullptr;
      ConnectLater();
      return;
    }
    Env& env = world_->env(sender_host_);
    env.RunAt(env.Now() + absl::Milliseconds(1), [this] { Pump(); });
  }

  void OnSenderClosed(const CloseReason& reason) {
    ctx_->Check(reason.kind() != CloseReason::Kind::kProtocolError,
                "the sender sees no protocol error", [&] { return reason.ToString(); });
    sender_ = nullptr;
    ConnectLater();
  }

  void ConnectLater() {
    Env& env = world_->env(sender_host_);
    const absl::Duration pause =
        absl::Milliseconds(static_cast<int64_t>(Exponential(world_->generator(), 1500)));
    env.RunAt(env.Now() + pause, [this] { Connect(); });
  }

  void OnMessage(smac::MessageConnection& c, uint64_t epoch, std::string_view m) {
    Stream& stream = streams_[epoch];
    const size_t index = stream.received;
    bool ok = index < stream.sizes.size() && m.size() == stream.sizes[index];
    size_t bad = m.size();
    for (size_t i = 0; ok && i < m.size(); ++i) {
      if (m[i] != PatternByte(epoch, index, i)) {
        ok = false;
        bad = i;
      }
    }
    ctx_->Check(ok, "messages arrive whole, once, in order", [&] {
      return absl::StrCat("connection ", epoch, " message #", index, ": got ", m.size(),
                          " bytes, sent ",
                          index < stream.sizes.size() ? absl::StrCat(stream.sizes[index]) : "none",
                          bad < m.size() ? absl::StrCat(", first wrong byte at ", bad) : "");
    });
    ++stream.received;
    ++delivered_;
    delivered_bytes_ += m.size();
    // A slow reader: now and then stop reading for a while (the queue and the network back up).
    if (Bernoulli(world_->generator(), 0.1)) {
      auto handler = c.SetHandler(nullptr);
      auto keep = c.shared_from_this();
      Env& env = world_->env(receiver_host_);
      const absl::Duration pause =
          absl::Microseconds(static_cast<int64_t>(Exponential(world_->generator(), 30000)));
      env.RunAt(env.Now() + pause, [keep, handler] { keep->SetHandler(handler); });
    }
  }

  void OnReceiverClosed(uint64_t accepted, uint64_t epoch, const CloseReason& reason) {
    receivers_.erase(accepted);
    ctx_->Check(reason.kind() != CloseReason::Kind::kProtocolError,
                "the receiver never sees a malformed frame",
                [&] { return absl::StrCat("connection ", epoch, ": ", reason.ToString()); });
    if (epoch == 0) return;  // closed before its first message
    Stream& stream = streams_[epoch];
    if (reason.kind() == CloseReason::Kind::kPeerClosed) {
      ctx_->Check(stream.sender_closed && stream.received == stream.sizes.size(),
                  "a graceful close comes after every message sent before it", [&] {
                    return absl::StrCat("connection ", epoch, ": ", stream.received, " of ",
                                        stream.sizes.size(), " messages before the close");
                  });
    }
  }

  ScenarioContext* ctx_ = nullptr;
  sim::World* world_ = nullptr;
  HostId sender_host_;
  HostId receiver_host_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<smac::MessageConnection> sender_;
  std::map<uint64_t, std::shared_ptr<smac::MessageConnection>> receivers_;  // by accept number
  std::map<uint64_t, Stream> streams_;  // by connection number (the same on both sides)
  uint64_t epochs_ = 0;                 // connections made by the sender
  uint64_t epoch_ = 0;                  // the sender's current connection
  uint64_t accepted_ = 0;               // connections accepted by the receiver
  uint64_t delivered_ = 0;
  uint64_t delivered_bytes_ = 0;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<sim::Scenario> MakeSmacStress() { return std::make_unique<SmacStress>(); }

const sim::ScenarioRegistry& BuiltinScenarios() {
  static const sim::ScenarioRegistry* registry = [] {
    auto* r = new sim::ScenarioRegistry;
    (void)r->Add({"rpc-faults",
                  "clients with concurrent calls against a server under partitions, clogs, "
                  "resets and server crashes; then heal",
                  MakeRpcFaults});
    (void)r->Add({"reconnect-backoff",
                  "clients with several addresses against servers that come and go; every "
                  "attempt checked against the connect schedule",
                  MakeReconnectBackoff});
    (void)r->Add({"smac-stress",
                  "messages of 0 B to 3 MiB through chunking, back-pressure and slow readers",
                  MakeSmacStress});
    (void)r->Add({"tls-rpc",
                  "an rpc server requiring client certificates (TLS 1.3) under faults; clients "
                  "with good and bad certificates",
                  MakeTlsRpc});
    (void)r->Add({"hostile-peers",
                  "a protected rpc server and a good client while two hosts open misbehaving "
                  "connections (garbage, drips, silence, floods, peers that never read)",
                  MakeHostilePeers});
    (void)r->Add({"objstore",
                  "the ZEO-like object store: clients with caches running conflicting "
                  "transactions under faults and server crash-restarts; invalidations, epochs",
                  MakeObjstore});
    (void)r->Add({"lock",
                  "a lock service on rpc with leases and fencing tokens: three clients and a "
                  "storage host under server crashes, freezes, partitions and skewed clocks",
                  MakeLock});
    return r;
  }();
  return *registry;
}

}  // namespace netlayer::scenarios
