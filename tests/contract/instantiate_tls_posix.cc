#include "contract_suite.h"

namespace netlayer::contract {
std::vector<BackendMaker> PosixBackendMakers();  // posix_backend.cc
std::vector<BackendMaker> TlsBackendMakers(std::vector<BackendMaker> inner,
                                           bool deterministic);  // tls_backend.cc
INSTANTIATE_TEST_SUITE_P(TlsOverPosix, ContractTest,
                         testing::ValuesIn(TlsBackendMakers(PosixBackendMakers(), false)),
                         BackendMakerName);
}  // namespace netlayer::contract
