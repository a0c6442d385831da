// Choices: a simulated run as a function of a byte string (docs/SIMULATOR.md "Choices").
//
// Every random choice of a world (chunk sizes, latencies, which fault and when, whom it hits)
// comes from two generator streams: the world's (network and workload) and the fault decider's
// (WorldOptions::seed, seed ^ salt). A choice string replaces both by bytes:
//
//   bytes [0, 8)        the run's seed, big-endian (missing bytes are zero): it seeds what is
//                       drawn from the seed outside the two streams (the fault profile, drawn
//                       options, BUGGIFY, the disks, a scenario's own generators);
//   then 8-byte blocks  block j feeds stream j % 2 (0: the world's, 1: the faults'), each draw
//                       (Generator::Next) of a stream takes its next block, big-endian (so a
//                       block's first byte is its most significant: it decides a Bernoulli or a
//                       UniformInt most); a last, partial block is padded with zero bytes.
//
// Past its last block a stream continues from the generator the seed would have given it, from
// its start (Xoshiro256(seed) for the world's, Xoshiro256(seed ^ salt) for the faults'). So the
// 8 bytes of a seed alone are that seed's run exactly, and a byte string determines a run.
//
// A choice file (`run --choices FILE`) holds the bytes and what else the run needs (scenario,
// plant, BUGGIFY); any other file is taken as raw bytes (a fuzzer's corpus entry).
//
// Thread rules: values; a ChoiceGenerator is used by the thread of its world.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "netlayer/core/generator.h"

namespace netlayer::sim {

inline constexpr size_t kChoiceSeedBytes = 8;
inline constexpr int kChoiceStreams = 2;

// The seed a choice string starts with (its first 8 bytes, big-endian, zero-padded).
uint64_t ChoiceSeed(std::string_view bytes);
// The 8 bytes of `seed` (a choice string for exactly that seed's run).
std::string SeedChoices(uint64_t seed);

// Every value each stream of a run drew, in order (WorldOptions::record_choices).
struct ChoiceRecord {
  std::vector<uint64_t> streams[kChoiceStreams];
};
// A choice string that replays a recorded run: the seed, then the recorded values block by
// block (a stream that drew fewer values is padded with zero blocks it never reads).
std::string EncodeChoices(uint64_t seed, const ChoiceRecord& record);

// One stream of a world: seeded (the default: exactly Xoshiro256(seed)), or fed by a choice
// string, optionally recording what it draws.
class ChoiceGenerator final : public Generator {
 public:
  explicit ChoiceGenerator(uint64_t seed) : continuation_(seed) {}
  // `bytes` (a whole choice string, header included) and `record` (if not null) outlive this.
  ChoiceGenerator(uint64_t seed, const std::string* bytes, int stream,
                  std::vector<uint64_t>* record);
  uint64_t Next() override;

 private:
  Xoshiro256 continuation_;
  const std::string* bytes_ = nullptr;
  size_t offset_ = 0;  // of this stream's next block in *bytes_
  std::vector<uint64_t>* record_ = nullptr;
};

// A choice file: the bytes and the run's other inputs.
struct ChoiceFile {
  std::string scenario;  // empty: not recorded (raw bytes)
  std::string plant;
  bool buggify = true;
  std::string bytes;

  // "netlayer-choices-1", then "scenario:", "plant:", "buggify:" and "bytes:" (hex) lines.
  std::string Serialize() const;
  // A serialized choice file, or else the raw bytes of `text` (scenario empty). InvalidArgument
  // for a choice file whose lines are malformed.
  static absl::StatusOr<ChoiceFile> Parse(std::string_view text);
};

}  // namespace netlayer::sim
