// The connection-contract suite (DESIGN.md §3), one set of tests for every backend. A backend's
// test binary instantiates it with INSTANTIATE_TEST_SUITE_P(Name, ContractTest, ...).
#pragma once

#include <gtest/gtest.h>

#include "backend.h"

namespace netlayer::contract {

class ContractTest : public testing::TestWithParam<BackendMaker> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    ASSERT_NE(backend_, nullptr);
  }
  void TearDown() override { backend_.reset(); }
  ContractBackend& backend() { return *backend_; }

 private:
  std::unique_ptr<ContractBackend> backend_;
};

}  // namespace netlayer::contract
