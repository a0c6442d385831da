// The asio implementation of the contract suite's backend: a Runtime with one io thread or a
// pool of four (one connection's completions then run on any of them, never two handlers at
// once), over loopback TCP (IPv4, and IPv6 when ::1 works) and unix-domain sockets.
#include <unistd.h>

#include "netlayer/asio/asio.h"
#include "socket_backend.h"

namespace netlayer::contract {
namespace {

asio::AsioOptions ContractOptions() {
  asio::AsioOptions options;
  options.limits = ContractLimits();
  return options;
}

class AsioContractBackend final : public SocketContractBackend {
 public:
  // `listen_at`: where the listener binds (port 0 for TCP). `unix_dir`: a temporary directory
  // removed at the end, or empty.
  AsioContractBackend(int io_threads, Address listen_at, std::string unix_dir = "")
      : runtime_(io_threads),
        client_(runtime_, ContractOptions()),
        server_(runtime_, ContractOptions()),
        unix_dir_(std::move(unix_dir)) {
    StartListening(server_, listen_at);
  }
  ~AsioContractBackend() override {
    StopListening();
    if (!unix_dir_.empty()) ::rmdir(unix_dir_.c_str());
  }

  Env& env() override { return runtime_.env(); }

 private:
  ClientConnectionFactory& client_factory() override { return client_; }

  asio::Runtime runtime_;  // outlives the factories and the listener (declared first)
  asio::AsioClientFactory client_;
  asio::AsioServerFactory server_;
  std::string unix_dir_;
};

std::unique_ptr<ContractBackend> UnixBackend(int io_threads) {
  const std::string dir = MakeUnixSocketDir();
  if (dir.empty()) return nullptr;
  return std::make_unique<AsioContractBackend>(io_threads, Address::Unix(dir + "/s.sock"), dir);
}

std::unique_ptr<ContractBackend> TcpBackend(int io_threads, Address address) {
  return std::make_unique<AsioContractBackend>(io_threads, std::move(address));
}

}  // namespace

std::vector<BackendMaker> AsioBackendMakers() {
  std::vector<BackendMaker> makers;
  makers.push_back({"asio_tcp", [] { return TcpBackend(1, Address::IPv4("127.0.0.1", 0)); }});
  makers.push_back({"asio_unix", [] { return UnixBackend(1); }});
  makers.push_back(
      {"asio_tcp_4_threads", [] { return TcpBackend(4, Address::IPv4("127.0.0.1", 0)); }});
  makers.push_back({"asio_unix_4_threads", [] { return UnixBackend(4); }});
  if (Ipv6LoopbackWorks()) {
    makers.push_back(
        {"asio_tcp6_4_threads", [] { return TcpBackend(4, Address::IPv6("::1", 0)); }});
  }
  return makers;
}

}  // namespace netlayer::contract
