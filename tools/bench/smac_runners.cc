// smac ping-pong and bulk over any backend (core and smac interfaces only).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "netlayer/core/address.h"
#include "netlayer/smac/message_connection.h"
#include "netlayer_figures.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr absl::Duration kSetupTimeout = absl::Seconds(10);
constexpr Seconds kAnswerTimeout{10};

// A listener, and a connected client/server pair of MessageConnections over it.
class SmacPair {
 public:
  absl::Status Start(const FactoriesMaker& make, size_t max_message) {
    absl::StatusOr<Factories> factories = make();
    if (!factories.ok()) return factories.status();
    factories_ = std::move(*factories);
    absl::StatusOr<Address> address = Address::Parse(factories_.listen_address);
    if (!address.ok()) return address.status();
    absl::StatusOr<std::shared_ptr<Listener>> listener = factories_.server->Listen(*address);
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    ConnectOptions options;
    options.max_attempts = 1;
    options.attempt_timeout = kSetupTimeout;
    options.give_up_after = kSetupTimeout;
    absl::StatusOr<std::shared_ptr<Connection>> client =
        factories_.client->ConnectBlocking({listener_->address()}, options);
    if (!client.ok()) return client.status();
    std::shared_ptr<Connection> server = listener_->Accept(absl::Now() + kSetupTimeout);
    if (server == nullptr) return absl::DeadlineExceededError("no connection accepted");
    smac::MessageOptions message_options;
    message_options.max_message_size = max_message;
    client_ = smac::MessageConnection::Create(std::move(*client), message_options);
    server_ = smac::MessageConnection::Create(std::move(server), message_options);
    return absl::OkStatus();
  }

  // The client closes (flushing); the server sees the end of the stream; then everything goes.
  void Stop() {
    if (client_) client_->Close();
    if (server_) server_->Close();
    if (listener_) listener_->Close();
    client_.reset();
    server_.reset();
    listener_.reset();
    factories_ = {};
  }

  smac::MessageConnection& client() { return *client_; }
  smac::MessageConnection& server() { return *server_; }
  std::shared_ptr<smac::MessageConnection> client_ptr() { return client_; }
  std::shared_ptr<smac::MessageConnection> server_ptr() { return server_; }

 private:
  Factories factories_;
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<smac::MessageConnection> client_, server_;
};

// Counts handler failures (wrong echo, unexpected close) for the runner to report.
struct Failures {
  std::mutex mu;
  std::string first;
  void Add(std::string what) {
    std::lock_guard lock(mu);
    if (first.empty()) first = std::move(what);
  }
  std::string Get() {
    std::lock_guard lock(mu);
    return first;
  }
};

class EchoHandler : public smac::MessageHandler {
 public:
  explicit EchoHandler(Failures* failures) : failures_(failures) {}
  void MessageReceived(smac::MessageConnection& c, std::string_view message) override {
    if (absl::Status s = c.Send(message); !s.ok()) failures_->Add("echo send: " + s.ToString());
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    if (reason.kind() != CloseReason::Kind::kPeerClosed) {
      failures_->Add("echo side closed: " + reason.ToString());
    }
  }

 private:
  Failures* failures_;
};

class PingPongClient : public smac::MessageHandler {
 public:
  PingPongClient(size_t size, Failures* failures) : out_(size, 'x'), failures_(failures) {}

  // Sends the first message; the handler keeps going until `deadline`.
  absl::Status Begin(smac::MessageConnection& c, Clock::time_point deadline) {
    {
      std::lock_guard lock(mu_);
      deadline_ = deadline;
      rounds_ = 0;
      done_ = false;
    }
    return SendNext(c);
  }
  // Waits for the run to end; the number of round trips, or an error.
  absl::StatusOr<uint64_t> Wait(Clock::time_point limit) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, limit, [&] { return done_; })) {
      return absl::DeadlineExceededError("smac ping-pong: no answer");
    }
    if (!error_.empty()) return absl::DataLossError(error_);
    return rounds_;
  }

  void MessageReceived(smac::MessageConnection& c, std::string_view message) override {
    // Only this handler touches out_ between Begin and done (never re-entered).
    char mark = out_[0];
    if (message.size() != out_.size() || message.front() != mark || message.back() != mark) {
      return Finish("smac ping-pong: wrong echo");
    }
    bool more;
    {
      std::lock_guard lock(mu_);
      ++rounds_;
      more = Clock::now() < deadline_;
    }
    if (!more) return Finish("");
    if (absl::Status s = SendNext(c); !s.ok()) Finish("send: " + s.ToString());
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    failures_->Add("client closed: " + reason.ToString());
    Finish("client closed: " + reason.ToString());
  }

 private:
  absl::Status SendNext(smac::MessageConnection& c) {
    char mark = static_cast<char>('a' + (next_mark_++ % 26));
    out_.front() = mark;
    out_.back() = mark;
    return c.Send(out_);
  }
  void Finish(std::string error) {
    std::lock_guard lock(mu_);
    if (done_) return;
    error_ = std::move(error);
    done_ = true;
    cv_.notify_all();
  }

  std::string out_;
  unsigned next_mark_ = 0;
  Failures* failures_;
  std::mutex mu_;
  std::condition_variable cv_;
  Clock::time_point deadline_;
  uint64_t rounds_ = 0;
  bool done_ = false;
  std::string error_;
};

class SmacPingPong : public Runner {
 public:
  SmacPingPong(FactoriesMaker make, size_t size)
      : make_(std::move(make)),
        size_(size),
        client_handler_(std::make_shared<PingPongClient>(size, &failures_)) {}

  absl::Status Start() override {
    if (absl::Status s = pair_.Start(make_, std::max<size_t>(size_, 1024)); !s.ok()) return s;
    pair_.server().SetHandler(std::make_shared<EchoHandler>(&failures_));
    pair_.client().SetHandler(client_handler_);
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    if (absl::Status s = client_handler_->Begin(pair_.client(), deadline); !s.ok()) return s;
    absl::StatusOr<uint64_t> rounds = client_handler_->Wait(
        deadline + std::chrono::duration_cast<Clock::duration>(kAnswerTimeout));
    auto end = Clock::now();
    if (!rounds.ok()) return rounds.status();
    if (std::string f = failures_.Get(); !f.empty()) return absl::DataLossError(f);
    return *rounds / Seconds(end - start).count();
  }

  absl::Status Stop() override {
    pair_.Stop();
    if (std::string f = failures_.Get(); !f.empty()) return absl::DataLossError(f);
    return absl::OkStatus();
  }

 private:
  FactoriesMaker make_;
  size_t size_;
  Failures failures_;
  std::shared_ptr<PingPongClient> client_handler_;
  SmacPair pair_;
};

// Bulk receiver: counts messages, acknowledges every `ack_every` of them with the count (8
// decimal digits), and an empty message (the end of a burst) with "end".
class BulkReceiver : public smac::MessageHandler {
 public:
  BulkReceiver(size_t size, uint64_t ack_every, Failures* failures)
      : size_(size), ack_every_(ack_every), failures_(failures) {}
  void MessageReceived(smac::MessageConnection& c, std::string_view message) override {
    absl::Status s;
    if (message.empty()) {
      s = c.Send("end");
    } else if (message.size() != size_) {
      failures_->Add("bulk: wrong message size");
      return;
    } else if (++received_ % ack_every_ == 0) {
      s = c.Send(std::to_string(received_));
    }
    if (!s.ok()) failures_->Add("bulk ack: " + s.ToString());
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    if (reason.kind() != CloseReason::Kind::kPeerClosed) {
      failures_->Add("bulk receiver closed: " + reason.ToString());
    }
  }

 private:
  size_t size_;
  uint64_t ack_every_;
  uint64_t received_ = 0;  // handler only
  Failures* failures_;
};

// The sender's handler: takes the acknowledgements.
class BulkAcks : public smac::MessageHandler {
 public:
  explicit BulkAcks(Failures* failures) : failures_(failures) {}
  void MessageReceived(smac::MessageConnection&, std::string_view message) override {
    std::lock_guard lock(mu);
    if (message == "end") {
      end_acks++;
    } else {
      acked = std::stoull(std::string(message));
    }
    cv.notify_all();
  }
  void ConnectionClosed(smac::MessageConnection&, const CloseReason& reason) override {
    failures_->Add("bulk sender closed: " + reason.ToString());
    std::lock_guard lock(mu);
    closed = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  uint64_t acked = 0;     // GUARDED_BY(mu): messages the receiver has seen
  uint64_t end_acks = 0;  // GUARDED_BY(mu)
  bool closed = false;    // GUARDED_BY(mu)

 private:
  Failures* failures_;
};

class SmacBulk : public Runner {
 public:
  SmacBulk(FactoriesMaker make, size_t size)
      : make_(std::move(make)),
        size_(size),
        payload_(size, 'b'),
        ack_every_(std::max<uint64_t>(1, (size_t{1} << 20) / size)),
        window_(std::max<uint64_t>(2 * ack_every_, (size_t{8} << 20) / size)),
        acks_(std::make_shared<BulkAcks>(&failures_)) {}

  absl::Status Start() override {
    if (absl::Status s = pair_.Start(make_, size_); !s.ok()) return s;
    pair_.server().SetHandler(std::make_shared<BulkReceiver>(size_, ack_every_, &failures_));
    pair_.client().SetHandler(acks_);
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    auto limit = deadline + std::chrono::duration_cast<Clock::duration>(kAnswerTimeout);
    uint64_t bytes = 0;
    uint64_t end_acks_before;
    {
      std::lock_guard lock(acks_->mu);
      end_acks_before = acks_->end_acks;
    }
    do {
      {
        std::unique_lock lock(acks_->mu);
        if (!acks_->cv.wait_until(
                lock, limit, [&] { return acks_->closed || sent_ - acks_->acked < window_; })) {
          return absl::DeadlineExceededError("smac bulk: no acknowledgement");
        }
        if (acks_->closed) return absl::UnavailableError("smac bulk: connection closed");
      }
      if (absl::Status s = pair_.client().Send(payload_); !s.ok()) return s;
      ++sent_;
      bytes += size_;
    } while (Clock::now() < deadline);
    if (absl::Status s = pair_.client().Send(""); !s.ok()) return s;
    {
      std::unique_lock lock(acks_->mu);
      if (!acks_->cv.wait_until(
              lock, limit, [&] { return acks_->closed || acks_->end_acks > end_acks_before; })) {
        return absl::DeadlineExceededError("smac bulk: no final acknowledgement");
      }
    }
    auto end = Clock::now();
    if (std::string f = failures_.Get(); !f.empty()) return absl::DataLossError(f);
    return bytes / 1e6 / Seconds(end - start).count();
  }

  absl::Status Stop() override {
    pair_.Stop();
    if (std::string f = failures_.Get(); !f.empty()) return absl::DataLossError(f);
    return absl::OkStatus();
  }

 private:
  FactoriesMaker make_;
  size_t size_;
  std::string payload_;
  uint64_t ack_every_, window_;
  uint64_t sent_ = 0;  // main thread only
  Failures failures_;
  std::shared_ptr<BulkAcks> acks_;
  SmacPair pair_;
};

}  // namespace

std::unique_ptr<Runner> MakeSmacPingPong(FactoriesMaker make, size_t size) {
  return std::make_unique<SmacPingPong>(std::move(make), size);
}
std::unique_ptr<Runner> MakeSmacBulk(FactoriesMaker make, size_t size) {
  return std::make_unique<SmacBulk>(std::move(make), size);
}

}  // namespace netlayer::bench
