// The posix implementation of the contract suite's backend: real sockets over loopback TCP
// (IPv4, and IPv6 when ::1 works) and unix-domain sockets in a temporary directory.
#include <unistd.h>

#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "socket_backend.h"

namespace netlayer::contract {
namespace {

posix::PosixOptions WithContractLimits(posix::PosixOptions options) {
  options.limits = ContractLimits();
  return options;
}

class PosixContractBackend final : public SocketContractBackend {
 public:
  // `listen_at`: where the listener binds (port 0 for TCP). `unix_dir`: a temporary directory
  // removed at the end, or empty.
  PosixContractBackend(Address listen_at, std::string unix_dir, posix::PosixOptions options = {})
      : client_(WithContractLimits(options)),
        server_(WithContractLimits(options)),
        unix_dir_(std::move(unix_dir)) {
    StartListening(server_, listen_at);
  }
  ~PosixContractBackend() override {
    StopListening();
    if (!unix_dir_.empty()) ::rmdir(unix_dir_.c_str());
  }

  Env& env() override { return env_; }

 private:
  ClientConnectionFactory& client_factory() override { return client_; }

  posix::PosixEnv env_;
  posix::PosixClientFactory client_;
  posix::PosixServerFactory server_;
  std::string unix_dir_;
};

}  // namespace

std::vector<BackendMaker> PosixBackendMakers() {
  std::vector<BackendMaker> makers;
  makers.push_back(
      {"posix_tcp",
       [] { return std::make_unique<PosixContractBackend>(Address::IPv4("127.0.0.1", 0), ""); }});
  makers.push_back({"posix_unix", []() -> std::unique_ptr<ContractBackend> {
                      const std::string dir = MakeUnixSocketDir();
                      if (dir.empty()) return nullptr;
                      return std::make_unique<PosixContractBackend>(Address::Unix(dir + "/s.sock"),
                                                                    dir);
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
