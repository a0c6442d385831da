#include "contract_suite.h"

namespace netlayer::contract {
std::vector<BackendMaker> AsioBackendMakers();  // asio_backend.cc
INSTANTIATE_TEST_SUITE_P(Asio, ContractTest, testing::ValuesIn(AsioBackendMakers()),
                         BackendMakerName);
}  // namespace netlayer::contract
