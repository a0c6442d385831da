#include "contract_suite.h"

namespace netlayer::contract {
std::vector<BackendMaker> SimBackendMakers();  // sim_backend.cc
INSTANTIATE_TEST_SUITE_P(Sim, ContractTest, testing::ValuesIn(SimBackendMakers()),
                         BackendMakerName);
}  // namespace netlayer::contract
