// rpc over the posix backend on loopback (the suite: socket_rpc_suite.cc).
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "socket_rpc_suite.h"

namespace netlayer::rpc::testing {
namespace {

class PosixRpcBackend final : public RpcBackend {
 public:
  Env& env() override { return env_; }
  ClientConnectionFactory& client_factory() override { return client_; }
  ServerConnectionFactory& server_factory() override { return server_; }

 private:
  posix::PosixEnv env_;
  posix::PosixClientFactory client_;
  posix::PosixServerFactory server_;
};

INSTANTIATE_TEST_SUITE_P(Posix, SocketRpcTest,
                         ::testing::Values(RpcBackendMaker{
                             "posix", [] { return std::make_unique<PosixRpcBackend>(); }}),
                         RpcBackendName);

}  // namespace
}  // namespace netlayer::rpc::testing
