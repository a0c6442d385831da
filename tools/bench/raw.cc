// Raw blocking-socket baselines: ping-pong and bulk writev.
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "baselines.h"
#include "sockets.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kIoTimeoutSeconds = 10;

// A connected pair: the client end here, the server end handled by a thread running `serve`.
class LoopbackPair {
 public:
  template <typename Serve>
  absl::Status Start(Serve serve) {
    uint16_t port = 0;
    absl::StatusOr<Fd> listener = ListenLoopback(&port);
    if (!listener.ok()) return listener.status();
    absl::StatusOr<Fd> client = ConnectLoopback(port);
    if (!client.ok()) return client.status();
    absl::StatusOr<Fd> server = AcceptOne(*listener, kIoTimeoutSeconds);
    if (!server.ok()) return server.status();
    client_ = std::move(*client);
    if (absl::Status s = SetTimeouts(client_, kIoTimeoutSeconds); !s.ok()) return s;
    server_thread_ = std::thread(
        [this, serve, fd = std::move(*server)]() mutable { server_status_ = serve(fd); });
    return absl::OkStatus();
  }

  // Closes the client end; the server sees the end of stream and returns.
  absl::Status Stop() {
    ::shutdown(client_.get(), SHUT_WR);
    if (server_thread_.joinable()) server_thread_.join();
    client_.Reset();
    return server_status_;
  }

  const Fd& client() const { return client_; }

 private:
  Fd client_;
  std::thread server_thread_;
  absl::Status server_status_;  // written by the server thread before it ends
};

// The echo server: reads [len][payload], writes it back with one send.
absl::Status EchoServe(Fd& fd, size_t max_size) {
  std::vector<char> buf(4 + max_size);
  for (;;) {
    absl::Status s = ReadFull(fd, buf.data(), 4);
    if (absl::IsNotFound(s)) return absl::OkStatus();  // clean end
    if (!s.ok()) return s;
    uint32_t len = GetBigEndian32(buf.data());
    if (len > max_size) return absl::DataLossError("echo server: oversized frame");
    if (s = ReadFull(fd, buf.data() + 4, len); !s.ok()) return s;
    if (s = WriteFull(fd, buf.data(), 4 + len); !s.ok()) return s;
  }
}

class RawPingPong : public Runner {
 public:
  explicit RawPingPong(size_t size) : size_(size), out_(4 + size, 'x'), in_(4 + size) {
    PutBigEndian32(static_cast<uint32_t>(size), out_.data());
  }

  absl::Status Start() override {
    size_t size = size_;
    return pair_.Start([size](Fd& fd) { return EchoServe(fd, size); });
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    const Fd& fd = pair_.client();
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    uint64_t rounds = 0;
    Clock::time_point now;
    do {
      char mark = static_cast<char>('a' + rounds % 26);
      out_[4] = mark;
      out_[3 + size_] = mark;
      if (absl::Status s = WriteFull(fd, out_.data(), out_.size()); !s.ok()) return s;
      if (absl::Status s = ReadFull(fd, in_.data(), 4); !s.ok()) return s;
      if (GetBigEndian32(in_.data()) != size_) return absl::DataLossError("wrong echo length");
      if (absl::Status s = ReadFull(fd, in_.data() + 4, size_); !s.ok()) return s;
      if (in_[4] != mark || in_[3 + size_] != mark) return absl::DataLossError("wrong echo bytes");
      ++rounds;
      now = Clock::now();
    } while (now < deadline);
    return rounds / Seconds(now - start).count();
  }

  absl::Status Stop() override { return pair_.Stop(); }

 private:
  size_t size_;
  std::vector<char> out_, in_;
  LoopbackPair pair_;
};

// The bulk receiver: reads [len][payload] into one buffer; a zero length asks for a 1-byte ack.
absl::Status BulkReceive(Fd& fd, size_t max_size) {
  std::vector<char> buf(max_size);
  char header[4];
  for (;;) {
    absl::Status s = ReadFull(fd, header, 4);
    if (absl::IsNotFound(s)) return absl::OkStatus();
    if (!s.ok()) return s;
    uint32_t len = GetBigEndian32(header);
    if (len == 0) {
      if (s = WriteFull(fd, "k", 1); !s.ok()) return s;
      continue;
    }
    if (len > max_size) return absl::DataLossError("bulk receiver: oversized frame");
    if (s = ReadFull(fd, buf.data(), len); !s.ok()) return s;
  }
}

class RawBulk : public Runner {
 public:
  explicit RawBulk(size_t size) : size_(size), payload_(size, 'b') {}

  absl::Status Start() override {
    size_t size = size_;
    return pair_.Start([size](Fd& fd) { return BulkReceive(fd, size); });
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    const Fd& fd = pair_.client();
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    char header[4];
    PutBigEndian32(static_cast<uint32_t>(size_), header);
    uint64_t bytes = 0;
    do {
      iovec iov[2] = {{header, 4}, {payload_.data(), size_}};
      if (absl::Status s = WritevFull(fd, iov, 2); !s.ok()) return s;
      bytes += size_;
    } while (Clock::now() < deadline);
    // End of burst: a zero-length frame, acknowledged once everything before it was read.
    char end[4];
    PutBigEndian32(0, end);
    if (absl::Status s = WriteFull(fd, end, 4); !s.ok()) return s;
    char ack;
    if (absl::Status s = ReadFull(fd, &ack, 1); !s.ok()) return s;
    return bytes / 1e6 / Seconds(Clock::now() - start).count();
  }

  absl::Status Stop() override { return pair_.Stop(); }

 private:
  size_t size_;
  std::vector<char> payload_;
  LoopbackPair pair_;
};

}  // namespace

std::unique_ptr<Runner> MakeRawPingPong(size_t size) { return std::make_unique<RawPingPong>(size); }
std::unique_ptr<Runner> MakeRawBulk(size_t size) { return std::make_unique<RawBulk>(size); }

}  // namespace netlayer::bench
