// 1,000 hostile connections against a posix rpc server while a well-behaved client keeps calling
// (issue 12; docs/OPERATIONS.md, "Hostile inputs"). The hostile peers are plain non-blocking
// sockets driven by the test's own thread, each misbehaving in one of the ways of the table:
// garbage before the hello, a wrong version, a 4 GiB header, a 64 MiB header followed by data, a
// truncated frame, malformed envelopes, a slow drip, connections abandoned before and after the
// hello, a peer that never reads its replies, and a connect-and-reset. Checked: every call of
// the well-behaved client succeeds; the server closes every hostile connection by itself (its
// protections, not the peer, end each one); afterwards the process's descriptors, threads and RSS
// are back near their baseline. Runs under ASan+UBSan and TSan too (label posix).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../posix/test_util.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/server.h"
#include "netlayer/smac/frame.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NETLAYER_SANITIZED 1
// Releases the sanitizer allocator's caches and quarantine (ASan has it; weak, so a runtime
// without it leaves it null).
extern "C" void __sanitizer_purge_allocator() __attribute__((weak));
#else
#define NETLAYER_SANITIZED 0
#endif

namespace netlayer::rpc {
namespace {

using posix::testing::LiveThreads;
using posix::testing::OpenFds;
using posix::testing::WaitFor;

enum class Kind {
  kGarbage,           // "GET / HTTP/1.1" before any hello
  kWrongVersion,      // a well-formed client hello choosing version 7
  kHugeHeader,        // a header announcing 4 GiB - 1
  kBigFrameDrip,      // a header announcing 64 MiB, then 256 KiB of it
  kTruncated,         // hello, then half a frame, then end of stream
  kMalformed,         // hello, then a malformed envelope (several kinds, in turn)
  kDrip,              // one byte of a hello every 100 ms
  kSilent,            // connects and sends nothing
  kSilentAfterHello,  // a valid hello, then nothing
  kNeverReads,        // a valid hello and calls with large replies, never reads
  kReset,             // connects and resets at once
  kCount,
};

std::string Frame(std::string_view payload) { return smac::EncodeFrame(payload); }
std::string Header(size_t n) {
  auto h = smac::EncodeHeader(n);
  return std::string(h.data(), h.size());
}

std::string Malformed(int variant) {
  switch (variant % 6) {
    case 0:
      return Frame("");  // empty frame
    case 1:
      return Frame(std::string("\x09garbage", 8));  // unknown kind
    case 2:
      return Frame(std::string("\x01\0\0\0", 4));  // shorter than its fixed fields
    case 3:
      return Frame(std::string("\x01\0\0\0\0\0\0\0\x01\0\0", 11));  // method length 0
    case 4:
      return Frame(std::string("\x01\0\0\0\0\0\0\0\x01\x04\x01m", 12));  // method over 1024
    default:
      return Frame(std::string("\x05\0\0\0\0\0\0\0\x01xx", 11));  // a ping with trailing bytes
  }
}

std::string CallFrame(uint64_t id, std::string_view method) {
  Envelope e;
  e.kind = MessageKind::kCall;
  e.id = id;
  e.method = method;
  return Frame(EncodeEnvelope(BinaryCodec(), e));
}

struct Peer {
  int fd = -1;
  Kind kind = Kind::kSilent;
  std::string pending;  // bytes still to write (non-blocking)
  size_t dripped = 0;
  bool ended = false;  // the server closed it (end of stream or reset seen)
};

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

size_t TrimmedRss() {
#if NETLAYER_SANITIZED
  if (&__sanitizer_purge_allocator != nullptr) __sanitizer_purge_allocator();
#else
  ::malloc_trim(0);
#endif
  return RssBytes();
}

void RaiseFdLimit(rlim_t want) {
  rlimit l{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &l), 0);
  if (l.rlim_cur >= want) return;
  l.rlim_cur = std::min(want, l.rlim_max);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &l), 0) << std::strerror(errno);
}

int ConnectTo(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void WriteSome(Peer& p) {
  while (!p.pending.empty()) {
    const ssize_t n = ::send(p.fd, p.pending.data(), p.pending.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // EAGAIN (the server does not read fast enough) or the server closed
    p.pending.erase(0, static_cast<size_t>(n));
  }
}

// Reads and discards; marks the peer ended at end of stream or a reset.
void ReadSome(Peer& p) {
  char buf[16384];
  while (true) {
    const ssize_t n = ::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) p.ended = true;
    return;
  }
}

Peer Open(uint16_t port, int index) {
  Peer p;
  p.kind = static_cast<Kind>(index % static_cast<int>(Kind::kCount));
  p.fd = ConnectTo(port);
  const std::string hello = Frame(EncodeClientHello({"netlayer-rpc", 1}));
  switch (p.kind) {
    case Kind::kGarbage:
      p.pending = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      break;
    case Kind::kWrongVersion:
      p.pending = Frame(EncodeClientHello({"netlayer-rpc", 7}));
      break;
    case Kind::kHugeHeader:
      p.pending = "\xff\xff\xff\xff";
      break;
    case Kind::kBigFrameDrip:
      p.pending = Header(size_t{64} << 20) + std::string(256 << 10, 'x');
      break;
    case Kind::kTruncated:
      p.pending = hello + Header(100) + std::string(50, 't');
      break;
    case Kind::kMalformed:
      p.pending = hello + Malformed(index / static_cast<int>(Kind::kCount));
      break;
    case Kind::kDrip:
    case Kind::kSilent:
    case Kind::kReset:
      break;
    case Kind::kSilentAfterHello:
      p.pending = hello;
      break;
    case Kind::kNeverReads:
      p.pending = hello;
      for (uint64_t id = 1; id <= 64; ++id) p.pending += CallFrame(id, "big");
      break;
    case Kind::kCount:
      break;
  }
  if (p.kind == Kind::kReset && p.fd >= 0) {
    linger l{1, 0};
    ::setsockopt(p.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(p.fd);
    p.fd = -1;
    p.ended = true;
  }
  if (p.kind == Kind::kTruncated && p.fd >= 0) {
    WriteSome(p);
    ::shutdown(p.fd, SHUT_WR);  // the stream ends mid-frame
  }
  return p;
}

TEST(PosixHostileTest, AThousandHostileConnectionsWhileAGoodClientKeepsCalling) {
#if defined(__SANITIZE_THREAD__)
  constexpr int kConnections = 500;  // TSan: fewer (each connection is two threads on the server)
#else
  constexpr int kConnections = 1000;
#endif
  constexpr int kWave = 250;  // connections open at once
  RaiseFdLimit(4096);

  posix::PosixEnv env;
  posix::PosixOptions popt;
  popt.limits.max_output_bytes = 1 << 20;  // what a peer that never reads can make us hold
  popt.limits.close_linger = absl::Seconds(1);
  posix::PosixServerFactory server_factory(popt);
  posix::PosixClientFactory client_factory;

  ServerOptions sopt;
  sopt.handshake_timeout = absl::Seconds(2);
  sopt.idle_timeout = absl::Seconds(3);
  sopt.max_sessions = 60;  // the long-lived peers of each wave go over it: the rest are refused
  auto server = Server::Create(env, sopt);
  server->Register("echo", [](const Request& r, Responder resp) { (void)resp.Reply(r.payload); });
  server->Register(
      "big", [](const Request&, Responder resp) { (void)resp.Reply(std::string(256 << 10, 'b')); });
  auto listener = server_factory.Listen(*Address::Parse("127.0.0.1:0"),
                                        [&](std::shared_ptr<Connection> c) { server->Serve(c); });
  ASSERT_TRUE(listener.ok()) << listener.status();
  const uint16_t port = (*listener)->address().port();

  // The well-behaved client, calling in a loop on its own thread.
  ClientOptions copt;
  copt.heartbeat_interval = absl::Seconds(1);
  auto conn = client_factory.ConnectBlocking({(*listener)->address()}, {});
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto good = Client::Create(env, *conn, copt);
  ASSERT_TRUE(good->WaitReady(absl::Now() + absl::Seconds(10)));
  ASSERT_EQ(*good->Call("echo", "warm", absl::Now() + absl::Seconds(10)), "warm");

  const int fds_before = OpenFds();
  const int threads_before = LiveThreads();
  const size_t rss_before = TrimmedRss();

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string first_failure;
  std::thread caller([&] {
    for (int i = 0; !stop.load(); ++i) {
      const std::string payload = absl::StrCat("call ", i);
      CallResult r = good->Call("echo", payload, absl::Now() + absl::Seconds(10));
      if (r.ok() && *r == payload) {
        ok.fetch_add(1);
      } else if (failed.fetch_add(1) == 0) {
        first_failure = r.ok() ? "wrong reply " + *r : r.status().ToString();
      }
    }
  });

  size_t peak_rss = 0;
  for (int start = 0; start < kConnections; start += kWave) {
    std::vector<Peer> peers;
    for (int i = start; i < std::min(start + kWave, kConnections); ++i) {
      peers.push_back(Open(port, i));
      ASSERT_TRUE(peers.back().fd >= 0 || peers.back().kind == Kind::kReset)
          << "connect " << i << ": " << std::strerror(errno);
    }
    // Drive the peers until the server has closed every hostile connection by itself.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::Time next_drip = absl::Now();
    while (true) {
      const absl::Time now = absl::Now();
      bool all_ended = true;
      std::vector<pollfd> fds;
      for (Peer& p : peers) {
        if (p.ended) continue;
        if (p.kind == Kind::kDrip && now >= next_drip) {
          p.pending = p.dripped == 0 ? Header(40) : "d";  // a 40-byte "hello", byte by byte
          ++p.dripped;
        }
        WriteSome(p);
        if (p.kind != Kind::kNeverReads) ReadSome(p);
        // A peer that never reads cannot see its end; the server's session count tells.
        if (!p.ended && p.kind != Kind::kNeverReads) {
          all_ended = false;
          fds.push_back(pollfd{p.fd, POLLIN, 0});
        }
      }
      if (now >= next_drip) next_drip = now + absl::Milliseconds(100);
      peak_rss = std::max(peak_rss, RssBytes());
      if (all_ended && server->Sessions().size() == 1) break;
      ASSERT_LT(absl::Now(), deadline)
          << "hostile connections still open: sessions " << server->Sessions().size();
      // Wait for input on the peers (or the next drip): no sleep.
      (void)::poll(fds.data(), fds.size(), 50);
    }
    for (Peer& p : peers) {
      if (p.fd >= 0) ::close(p.fd);
    }
  }
  stop = true;
  caller.join();
  EXPECT_EQ(failed.load(), 0) << "first failure: " << first_failure;
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(server->refused_connections(), 0u) << "max_sessions was never reached";
  ASSERT_EQ(server->Sessions().size(), 1u);
  EXPECT_EQ(*good->Call("echo", "after", absl::Now() + absl::Seconds(10)), "after");

  // The server's connection threads end by themselves (close_linger and close_drain bound
  // them); descriptors and threads go back to where they were, and so does memory.
  EXPECT_TRUE(WaitFor([&] { return LiveThreads() <= threads_before + 2; }, absl::Seconds(30)))
      << LiveThreads() << " threads, " << threads_before << " before";
  EXPECT_TRUE(WaitFor([&] { return OpenFds() <= fds_before + 2; }, absl::Seconds(30)))
      << OpenFds() << " descriptors, " << fds_before << " before";
  const size_t rss_after = TrimmedRss();
  RecordProperty("rss_before_kib", static_cast<int>(rss_before >> 10));
  RecordProperty("rss_peak_kib", static_cast<int>(peak_rss >> 10));
  RecordProperty("rss_after_kib", static_cast<int>(rss_after >> 10));
  RecordProperty("good_calls", ok.load());
  std::printf("rss before %zu KiB, peak %zu KiB, after %zu KiB; %d good calls; %llu refused\n",
              rss_before >> 10, peak_rss >> 10, rss_after >> 10, ok.load(),
              static_cast<unsigned long long>(server->refused_connections()));
  // Sanitizer runtimes keep freed memory (ASan purges its quarantine above; TSan cannot) and
  // shadow memory: a looser bound there. The leak this guards against (a frame buffered per
  // hostile peer, threads never ending) is far larger.
#if defined(__SANITIZE_THREAD__)
  constexpr size_t kRssSlack = size_t{256} << 20;
#elif NETLAYER_SANITIZED
  constexpr size_t kRssSlack = size_t{128} << 20;
#else
  constexpr size_t kRssSlack = size_t{32} << 20;
#endif
  EXPECT_LE(rss_after, rss_before + kRssSlack);

  good->Close();
  (*listener)->Close();
  server->Close();
  EXPECT_TRUE(posix::WaitForConnectionThreads(absl::Now() + absl::Seconds(30)));
}

}  // namespace
}  // namespace netlayer::rpc
