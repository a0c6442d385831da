// The posix implementation of the contract suite's backend: real sockets over loopback TCP
// (IPv4, and IPv6 when ::1 works) and unix-domain sockets in a temporary directory.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "backend.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"

namespace netlayer::contract {
namespace {

posix::PosixOptions WithContractLimits(posix::PosixOptions options) {
  options.limits = ContractLimits();
  return options;
}

class PosixContractBackend final : public ContractBackend {
 public:
  // `listen_at`: where the listener binds (port 0 for TCP). `unix_dir`: a temporary directory
  // removed at the end, or empty.
  PosixContractBackend(Address listen_at, std::string unix_dir, posix::PosixOptions options = {})
      : client_(WithContractLimits(options)),
        server_(WithContractLimits(options)),
        unix_dir_(std::move(unix_dir)),
        is_unix_(listen_at.kind() == Address::Kind::kUnix) {
    absl::StatusOr<std::shared_ptr<Listener>> listener = server_.Listen(listen_at);
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (listener.ok()) listener_ = *listener;
  }
  ~PosixContractBackend() override {
    if (listener_) listener_->Close();
    if (!unix_dir_.empty()) ::rmdir(unix_dir_.c_str());
  }

  Pair Connect() override {
    Pair pair;
    if (!listener_) return pair;
    ConnectOptions options;
    options.max_attempts = 3;
    options.min_delay = absl::Milliseconds(10);
    options.max_delay = absl::Milliseconds(10);
    options.attempt_timeout = absl::Seconds(5);
    absl::StatusOr<std::shared_ptr<Connection>> client =
        client_.ConnectBlocking({listener_->address()}, options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return pair;
    pair.client = *client;
    pair.server = listener_->Accept(absl::Now() + absl::Seconds(10));
    EXPECT_NE(pair.server, nullptr) << "no connection accepted";
    return pair;
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      if (absl::Now() >= deadline) return done();
      std::this_thread::sleep_for(std::chrono::microseconds(500));  // backend threads work
    }
    return true;
  }

  void Quiesce(absl::Duration quiet) override {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(quiet));
  }

  CloseReason::Kind AbortSeenAs() const override {
    return is_unix_ ? CloseReason::Kind::kPeerClosed : CloseReason::Kind::kReset;
  }

  bool threaded() const override { return true; }
  Env& env() override { return env_; }

 private:
  posix::PosixEnv env_;
  posix::PosixClientFactory client_;
  posix::PosixServerFactory server_;
  std::shared_ptr<Listener> listener_;
  std::string unix_dir_;
  bool is_unix_;
};

bool Ipv6LoopbackWorks() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::vector<BackendMaker> PosixBackendMakers() {
  std::vector<BackendMaker> makers;
  makers.push_back(
      {"posix_tcp",
       [] { return std::make_unique<PosixContractBackend>(Address::IPv4("127.0.0.1", 0), ""); }});
  makers.push_back({"posix_unix", []() -> std::unique_ptr<ContractBackend> {
                      char dir[] = "/tmp/netlayer-contract-XXXXXX";
                      if (::mkdtemp(dir) == nullptr) return nullptr;
                      return std::make_unique<PosixContractBackend>(
                          Address::Unix(std::string(dir) + "/s.sock"), dir);
                    }});
  // Every read and write moves at most a few hundred bytes: the backend's partial-I/O paths
  // under the whole suite. The Sys is never destroyed (threads may outlive a test).
  makers.push_back({"posix_tcp_short_io", [] {
                      static posix::FaultSys* const sys = [] {
                        auto* s = new posix::FaultSys();
                        s->ShortNext(posix::FaultSys::Op::kRecv, 333, posix::FaultSys::kForever);
                        s->ShortNext(posix::FaultSys::Op::kSend, 777, posix::FaultSys::kForever);
                        return s;
                      }();
                      posix::PosixOptions options;
                      options.sys = sys;
                      return std::make_unique<PosixContractBackend>(Address::IPv4("127.0.0.1", 0),
                                                                    "", options);
                    }});
  if (Ipv6LoopbackWorks()) {
    makers.push_back({"posix_tcp6", [] {
                        return std::make_unique<PosixContractBackend>(Address::IPv6("::1", 0), "");
                      }});
  }
  return makers;
}

}  // namespace netlayer::contract
