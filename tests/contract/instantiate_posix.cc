#include "contract_suite.h"

namespace netlayer::contract {
std::vector<BackendMaker> PosixBackendMakers();  // posix_backend.cc
INSTANTIATE_TEST_SUITE_P(Posix, ContractTest, testing::ValuesIn(PosixBackendMakers()),
                         BackendMakerName);
}  // namespace netlayer::contract
