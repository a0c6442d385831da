// Runs every fuzz target over its checked-in corpus (tests/fuzz/corpus/<target>/): the seeds,
// and every crasher the fuzzers found, kept as regression tests. Built in the normal (gcc) build
// and under the guard.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.h"

namespace netlayer::fuzz {
namespace {

void RunCorpus(const std::string& name, int (*target)(const uint8_t*, size_t)) {
  const std::filesystem::path dir = std::filesystem::path(NETLAYER_FUZZ_CORPUS_DIR) / name;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no seeds in " << dir;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(f.string());
    EXPECT_EQ(target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
  }
}

TEST(FuzzCorpusTest, SmacDecoder) { RunCorpus("smac_decoder", FuzzSmacDecoder); }
TEST(FuzzCorpusTest, Envelope) { RunCorpus("envelope", FuzzEnvelope); }
TEST(FuzzCorpusTest, Handshake) { RunCorpus("handshake", FuzzHandshake); }
TEST(FuzzCorpusTest, Session) { RunCorpus("session", FuzzSession); }
TEST(FuzzCorpusTest, Tls) { RunCorpus("tls", FuzzTls); }

}  // namespace
}  // namespace netlayer::fuzz
