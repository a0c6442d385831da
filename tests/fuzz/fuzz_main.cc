// The libFuzzer entry point for one target, chosen at compile time with NETLAYER_FUZZ_ENTRY.
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return netlayer::fuzz::NETLAYER_FUZZ_ENTRY(data, size);
}
