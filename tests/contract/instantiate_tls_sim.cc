#include "contract_suite.h"

namespace netlayer::contract {
std::vector<BackendMaker> SimBackendMakers();  // sim_backend.cc
std::vector<BackendMaker> TlsBackendMakers(std::vector<BackendMaker> inner,
                                           bool deterministic);  // tls_backend.cc
INSTANTIATE_TEST_SUITE_P(TlsOverSim, ContractTest,
                         testing::ValuesIn(TlsBackendMakers(SimBackendMakers(), true)),
                         BackendMakerName);
}  // namespace netlayer::contract
