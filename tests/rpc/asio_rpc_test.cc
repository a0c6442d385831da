// rpc over the asio backend on loopback (the suite: socket_rpc_suite.cc): on one io thread, on
// four, and mixed with posix: an asio server with posix clients, and a posix server with asio
// clients (the rpc client and server then share the asio Runtime's Env).
#include "netlayer/asio/asio.h"
#include "netlayer/posix/posix.h"
#include "socket_rpc_suite.h"

namespace netlayer::rpc::testing {
namespace {

enum class Mix { kAsioOnly, kAsioServerPosixClients, kPosixServerAsioClients };

class AsioRpcBackend final : public RpcBackend {
 public:
  AsioRpcBackend(int io_threads, Mix mix)
      : runtime_(io_threads), asio_client_(runtime_), asio_server_(runtime_), mix_(mix) {}
  Env& env() override { return runtime_.env(); }
  ClientConnectionFactory& client_factory() override {
    if (mix_ == Mix::kAsioServerPosixClients) return posix_client_;
    return asio_client_;
  }
  ServerConnectionFactory& server_factory() override {
    if (mix_ == Mix::kPosixServerAsioClients) return posix_server_;
    return asio_server_;
  }

 private:
  asio::Runtime runtime_;  // outlives everything made on it (declared first)
  asio::AsioClientFactory asio_client_;
  asio::AsioServerFactory asio_server_;
  posix::PosixClientFactory posix_client_;
  posix::PosixServerFactory posix_server_;
  Mix mix_;
};

RpcBackendMaker Maker(std::string name, int io_threads, Mix mix) {
  return {std::move(name),
          [io_threads, mix] { return std::make_unique<AsioRpcBackend>(io_threads, mix); }};
}

INSTANTIATE_TEST_SUITE_P(
    Asio, SocketRpcTest,
    ::testing::Values(Maker("asio_1_thread", 1, Mix::kAsioOnly),
                      Maker("asio_4_threads", 4, Mix::kAsioOnly),
                      Maker("asio_server_posix_clients", 2, Mix::kAsioServerPosixClients),
                      Maker("posix_server_asio_clients", 2, Mix::kPosixServerAsioClients)),
    RpcBackendName);

}  // namespace
}  // namespace netlayer::rpc::testing
