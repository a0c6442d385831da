// The Asio peer: what a user would otherwise pick. Standalone Asio (Debian's libasio-dev), an
// echo server on one io_context thread and a client on another, 4-byte big-endian framing,
// TCP_NODELAY, 127.0.0.1.
#include <array>
#include <asio.hpp>
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "baselines.h"
#include "sockets.h"

namespace netlayer::bench {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// One echo session; owns its socket; ends at end of stream or on an error.
class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  EchoSession(tcp::socket socket, size_t max_size, std::atomic<int>* errors)
      : socket_(std::move(socket)), buf_(4 + max_size), max_size_(max_size), errors_(errors) {}

  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(buf_.data(), 4),
                     [self](const asio::error_code& ec, size_t) {
                       if (ec) return self->End(ec);
                       uint32_t len = GetBigEndian32(self->buf_.data());
                       if (len > self->max_size_) return self->Fail();
                       self->ReadPayload(len);
                     });
  }

 private:
  void ReadPayload(uint32_t len) {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(buf_.data() + 4, len),
                     [self, len](const asio::error_code& ec, size_t) {
                       if (ec) return self->End(ec);
                       asio::async_write(self->socket_, asio::buffer(self->buf_.data(), 4 + len),
                                         [self](const asio::error_code& ec, size_t) {
                                           if (ec) return self->End(ec);
                                           self->ReadHeader();
                                         });
                     });
  }
  void End(const asio::error_code& ec) {
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) Fail();
  }
  void Fail() { errors_->fetch_add(1); }

  tcp::socket socket_;
  std::vector<char> buf_;
  size_t max_size_;
  std::atomic<int>* errors_;
};

class AsioPingPong : public Runner {
 public:
  explicit AsioPingPong(size_t size)
      : size_(size),
        server_work_(asio::make_work_guard(server_ctx_)),
        client_work_(asio::make_work_guard(client_ctx_)),
        acceptor_(server_ctx_),
        client_(client_ctx_),
        out_(4 + size, 'x'),
        in_(4 + size) {
    PutBigEndian32(static_cast<uint32_t>(size), out_.data());
  }

  absl::Status Start() override {
    try {
      tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
      acceptor_.open(endpoint.protocol());
      acceptor_.bind(endpoint);
      acceptor_.listen();
      acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
        if (ec) {
          server_errors_.fetch_add(1);
          return;
        }
        socket.set_option(tcp::no_delay(true));
        std::make_shared<EchoSession>(std::move(socket), size_, &server_errors_)->ReadHeader();
      });
      server_thread_ = std::thread([this] { server_ctx_.run(); });
      client_thread_ = std::thread([this] { client_ctx_.run(); });
      client_.connect(acceptor_.local_endpoint());
      client_.set_option(tcp::no_delay(true));
    } catch (const std::exception& e) {
      return absl::UnavailableError(std::string("asio: ") + e.what());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    auto done = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> result = done->get_future();
    start_ = Clock::now();
    deadline_ = start_ + std::chrono::duration_cast<Clock::duration>(duration);
    rounds_ = 0;
    done_ = done;
    asio::post(client_ctx_, [this] { Round(); });
    if (result.wait_for(duration + Seconds(10)) != std::future_status::ready) {
      return absl::DeadlineExceededError("asio ping-pong: no answer");
    }
    if (absl::Status s = result.get(); !s.ok()) return s;
    if (server_errors_.load() != 0) return absl::DataLossError("asio echo server failed");
    return rounds_ / Seconds(end_ - start_).count();
  }

  absl::Status Stop() override {
    asio::post(client_ctx_, [this] {
      asio::error_code ignored;
      client_.shutdown(tcp::socket::shutdown_both, ignored);
      client_.close(ignored);
    });
    client_work_.reset();
    client_thread_.join();
    // The echo session ends at end of stream; then the server has nothing left to run.
    asio::post(server_ctx_, [this] {
      asio::error_code ignored;
      acceptor_.close(ignored);
    });
    server_work_.reset();
    server_thread_.join();
    if (server_errors_.load() != 0) return absl::DataLossError("asio echo server failed");
    return absl::OkStatus();
  }

 private:
  // Runs on the client's io_context thread.
  void Round() {
    char mark = static_cast<char>('a' + rounds_ % 26);
    out_[4] = mark;
    out_[3 + size_] = mark;
    asio::async_write(
        client_, asio::buffer(out_), [this, mark](const asio::error_code& ec, size_t) {
          if (ec) return Finish(absl::UnavailableError("asio write: " + ec.message()));
          // Header first, then the payload it announces, as a client that does not know the
          // length in advance must.
          asio::async_read(
              client_, asio::buffer(in_.data(), 4),
              [this, mark](const asio::error_code& ec, size_t) {
                if (ec) return Finish(absl::UnavailableError("asio read: " + ec.message()));
                uint32_t len = GetBigEndian32(in_.data());
                if (len != size_) return Finish(absl::DataLossError("asio: wrong echo length"));
                asio::async_read(
                    client_, asio::buffer(in_.data() + 4, len),
                    [this, mark](const asio::error_code& ec, size_t) {
                      if (ec) return Finish(absl::UnavailableError("asio read: " + ec.message()));
                      if (in_[4] != mark || in_[3 + size_] != mark) {
                        return Finish(absl::DataLossError("asio: wrong echo"));
                      }
                      ++rounds_;
                      if (Clock::now() < deadline_) return Round();
                      Finish(absl::OkStatus());
                    });
              });
        });
  }
  void Finish(absl::Status status) {
    end_ = Clock::now();
    if (done_) std::exchange(done_, nullptr)->set_value(std::move(status));
  }

  size_t size_;
  asio::io_context server_ctx_{1}, client_ctx_{1};
  asio::executor_work_guard<asio::io_context::executor_type> server_work_, client_work_;
  tcp::acceptor acceptor_;
  tcp::socket client_;
  std::thread server_thread_, client_thread_;
  std::atomic<int> server_errors_{0};
  std::vector<char> out_, in_;
  // Measure state: written by Measure before posting, then only by the client thread until
  // done_ is set (the promise orders it before Measure reads it).
  Clock::time_point start_, deadline_, end_;
  uint64_t rounds_ = 0;
  std::shared_ptr<std::promise<absl::Status>> done_;
};

}  // namespace

std::unique_ptr<Runner> MakeAsioPingPong(size_t size) {
  return std::make_unique<AsioPingPong>(size);
}

}  // namespace netlayer::bench
