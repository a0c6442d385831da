// The attack thread (attack.h): non-blocking sockets on one epoll set.
#include "attack.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include "netlayer/rpc/envelope.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/smac/frame.h"

namespace netlayer::bench {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { kSilent, kPartial, kSlowReader, kGarbage, kBurst };
constexpr int kPersistentKinds = 3;  // kSilent, kPartial, kSlowReader: kept at their counts

constexpr size_t kBulkPiece = size_t{64} << 10;
constexpr size_t kSlowCallPayload = size_t{65} << 10;  // past smac::kUnbudgetedBytes

struct Conn {
  Kind kind = Kind::kSilent;
  bool connected = false;
  bool writing = false;  // EPOLLOUT is asked for
  bool starved = false;  // waits for the bulk pacing
  std::string out;       // bytes to send before the bulk (hello, headers, a call)
  size_t out_sent = 0;
  size_t bulk_left = 0;  // partial frame payload still to send
  uint64_t next_id = 1;  // slow readers' call ids
};

std::string HelloFrame() { return smac::EncodeFrame(rpc::EncodeClientHello({"netlayer-rpc", 1})); }

std::string CallFrame(uint64_t id) {
  rpc::Envelope call;
  call.kind = rpc::MessageKind::kCall;
  call.id = id;
  call.method = "echo";
  const std::string payload(kSlowCallPayload, 's');
  call.payload = payload;
  return smac::EncodeFrame(rpc::EncodeEnvelope(rpc::BinaryCodec(), call));
}

void CloseWithReset(int fd) {
  const ::linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

class Loop {
 public:
  Loop(uint16_t port, const AttackMix& mix, std::atomic<uint64_t>& opened,
       std::atomic<uint64_t>& ended)
      : mix_(mix), opened_(opened), ended_(ended), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    address_.sin_family = AF_INET;
    address_.sin_port = htons(port);
    address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    zeros_.assign(kBulkPiece, '\0');
    hello_ = HelloFrame();
    const std::array<char, smac::kHeaderSize> header = smac::EncodeHeader(mix_.partial_announced);
    partial_prefix_ = hello_ + std::string(header.data(), header.size());
  }
  ~Loop() {
    for (auto& [fd, c] : conns_) CloseWithReset(fd);
    ::close(epoll_);
  }

  void Run(const std::atomic<bool>& running) {
    const Clock::time_point start = Clock::now();
    Clock::time_point last = start;
    double garbage_due = 0, bursts_due = 0;
    std::vector<epoll_event> events(256);
    while (running.load()) {
      const Clock::time_point now = Clock::now();
      const double dt = std::chrono::duration<double>(now - last).count();
      last = now;
      tokens_ = std::min(tokens_ + dt * mix_.bulk_bytes_per_second, 4.0 * kBulkPiece);
      if (tokens_ > 0) Unstarve();
      Refill(Kind::kSilent, mix_.silent);
      Refill(Kind::kPartial, mix_.partial_frames);
      Refill(Kind::kSlowReader, mix_.slow_readers);
      garbage_due += dt * mix_.garbage_per_second;
      for (; garbage_due >= 1; garbage_due -= 1) Open(Kind::kGarbage);
      bursts_due += dt * mix_.bursts_per_second;
      for (; bursts_due >= 1; bursts_due -= 1) {
        for (int i = 0; i < mix_.burst_size; ++i) Open(Kind::kBurst);
      }
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 2);
      for (int i = 0; i < n; ++i)
        Handle(events[static_cast<size_t>(i)].data.fd, events[static_cast<size_t>(i)].events);
    }
  }

 private:
  void Refill(Kind kind, int target) {
    // At most a few dozen per turn: a server refusing at once must not make this spin.
    for (int i = 0; i < 32 && live_[static_cast<int>(kind)] < target; ++i) {
      if (!Open(kind)) break;
    }
  }

  bool Open(Kind kind) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0 &&
        errno != EINPROGRESS) {
      ::close(fd);
      return false;
    }
    opened_.fetch_add(1);
    Conn c;
    c.kind = kind;
    switch (kind) {
      case Kind::kSilent:
        break;
      case Kind::kPartial:
        c.out = partial_prefix_;
        c.bulk_left = mix_.partial_bytes;
        break;
      case Kind::kSlowReader:
        c.out = hello_ + CallFrame(c.next_id++);
        break;
      case Kind::kGarbage:
        c.out.resize(300);
        for (char& ch : c.out) {
          lcg_ = lcg_ * 6364136223846793005u + 1442695040888963407u;
          ch = static_cast<char>(lcg_ >> 56);
        }
        break;
      case Kind::kBurst:
        break;
    }
    // Every kind waits for its connect to complete (writable); the silent ones then listen only.
    c.writing = true;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    if (kind == Kind::kSlowReader) ev.events = EPOLLOUT | EPOLLRDHUP;  // never reads
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    if (static_cast<int>(kind) < kPersistentKinds) ++live_[static_cast<int>(kind)];
    conns_.emplace(fd, std::move(c));
    return true;
  }

  void End(int fd, bool by_server, bool reset) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    const int kind = static_cast<int>(it->second.kind);
    if (kind < kPersistentKinds) --live_[kind];
    if (by_server) ended_.fetch_add(1);
    conns_.erase(it);
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    if (reset) {
      CloseWithReset(fd);
    } else {
      ::close(fd);
    }
  }

  void SetWriting(int fd, Conn& c, bool writing) {
    if (c.writing == writing) return;
    c.writing = writing;
    epoll_event ev{};
    ev.events = (writing ? EPOLLOUT : 0u) | EPOLLRDHUP |
                (c.kind == Kind::kSlowReader ? 0u : static_cast<uint32_t>(EPOLLIN));
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
  }

  void Unstarve() {
    for (int fd : starved_) {
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      it->second.starved = false;
      SetWriting(fd, it->second, true);
    }
    starved_.clear();
  }

  void Handle(int fd, uint32_t events) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      End(fd, /*by_server=*/c.kind != Kind::kBurst && c.kind != Kind::kGarbage, /*reset=*/true);
      return;
    }
    if (events & EPOLLIN) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        End(fd, /*by_server=*/true, /*reset=*/true);
        return;
      }
    }
    if (!(events & EPOLLOUT)) return;
    c.connected = true;
    switch (c.kind) {
      case Kind::kBurst:
        End(fd, false, /*reset=*/true);
        return;
      case Kind::kSilent:
        SetWriting(fd, c, false);
        return;
      default:
        break;
    }
    // Send what is due: the prefix, then (paced) the partial frame's payload or the next call.
    for (;;) {
      if (c.out_sent < c.out.size()) {
        const ssize_t n =
            ::send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return;
          End(fd, /*by_server=*/true, /*reset=*/true);
          return;
        }
        c.out_sent += static_cast<size_t>(n);
        tokens_ -= static_cast<double>(n);
        if (c.out_sent < c.out.size()) return;  // the socket is full
      }
      if (c.kind == Kind::kGarbage) {
        End(fd, false, /*reset=*/false);
        return;
      }
      if (c.kind == Kind::kPartial && c.bulk_left == 0) {
        SetWriting(fd, c, false);  // holds its partial frame from now on
        return;
      }
      if (tokens_ <= 0) {
        c.starved = true;
        starved_.push_back(fd);
        SetWriting(fd, c, false);
        return;
      }
      if (c.kind == Kind::kSlowReader) {
        c.out = CallFrame(c.next_id++);
        c.out_sent = 0;
        continue;
      }
      const size_t want = std::min(c.bulk_left, kBulkPiece);
      const ssize_t n = ::send(fd, zeros_.data(), want, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        End(fd, /*by_server=*/true, /*reset=*/true);
        return;
      }
      c.bulk_left -= static_cast<size_t>(n);
      tokens_ -= static_cast<double>(n);
      if (static_cast<size_t>(n) < want) return;
    }
  }

  const AttackMix mix_;
  std::atomic<uint64_t>& opened_;
  std::atomic<uint64_t>& ended_;
  const int epoll_;
  sockaddr_in address_{};
  std::string zeros_, hello_, partial_prefix_;
  std::unordered_map<int, Conn> conns_;
  std::vector<int> starved_;
  int live_[kPersistentKinds] = {0, 0, 0};
  double tokens_ = 0;
  uint64_t lcg_ = 29;
};

}  // namespace

void Attacker::Start() {
  if (thread_.joinable()) return;
  running_.store(true);
  opened_.store(0);
  ended_by_server_.store(0);
  thread_ = std::thread([this] { Run(); });
}

void Attacker::Stop() {
  if (!thread_.joinable()) return;
  running_.store(false);
  thread_.join();
}

void Attacker::Run() {
  Loop loop(port_, mix_, opened_, ended_by_server_);
  loop.Run(running_);
}

}  // namespace netlayer::bench
