#include "netlayer/sim/choices.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace netlayer::sim {
namespace {

constexpr char kChoiceFormat[] = "netlayer-choices-1";

// Up to 8 bytes of `bytes` from `offset`, big-endian, zero-padded.
uint64_t Block(std::string_view bytes, size_t offset) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) {
    const size_t at = offset + i;
    const uint64_t byte = at < bytes.size() ? static_cast<unsigned char>(bytes[at]) : 0;
    value = (value << 8) | byte;
  }
  return value;
}

void AppendBlock(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

}  // namespace

uint64_t ChoiceSeed(std::string_view bytes) { return Block(bytes, 0); }

std::string SeedChoices(uint64_t seed) {
  std::string out;
  AppendBlock(out, seed);
  return out;
}

std::string EncodeChoices(uint64_t seed, const ChoiceRecord& record) {
  std::string out = SeedChoices(seed);
  const size_t blocks = std::max(record.streams[0].size(), record.streams[1].size());
  out.reserve(kChoiceSeedBytes + blocks * kChoiceStreams * 8);
  for (size_t i = 0; i < blocks; ++i) {
    for (const std::vector<uint64_t>& stream : record.streams) {
      AppendBlock(out, i < stream.size() ? stream[i] : 0);
    }
  }
  return out;
}

ChoiceGenerator::ChoiceGenerator(uint64_t seed, const std::string* bytes, int stream,
                                 std::vector<uint64_t>* record)
    : continuation_(seed),
      bytes_(bytes),
      offset_(kChoiceSeedBytes + static_cast<size_t>(stream) * 8),
      record_(record) {}

uint64_t ChoiceGenerator::Next() {
  uint64_t value;
  if (bytes_ != nullptr && offset_ < bytes_->size()) {
    value = Block(*bytes_, offset_);
    offset_ += kChoiceStreams * 8;
  } else {
    value = continuation_.Next();
  }
  if (record_ != nullptr) record_->push_back(value);
  return value;
}

std::string ChoiceFile::Serialize() const {
  return absl::StrCat(kChoiceFormat, "\nscenario: ", scenario, "\nplant: ", plant,
                      "\nbuggify: ", buggify ? "on" : "off",
                      "\nbytes: ", absl::BytesToHexString(bytes), "\n");
}

absl::StatusOr<ChoiceFile> ChoiceFile::Parse(std::string_view whole) {
  const absl::string_view text(whole.data(), whole.size());
  ChoiceFile file;
  if (!absl::StartsWith(text, absl::StrCat(kChoiceFormat, "\n"))) {
    file.bytes = std::string(text);
    return file;
  }
  bool have_bytes = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line == kChoiceFormat) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("choice file: malformed line '", line, "'"));
    }
    const absl::string_view key = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (key == "scenario") {
      file.scenario = std::string(value);
    } else if (key == "plant") {
      file.plant = std::string(value);
    } else if (key == "buggify") {
      if (value != "on" && value != "off") {
        return absl::InvalidArgumentError("choice file: buggify is 'on' or 'off'");
      }
      file.buggify = value == "on";
    } else if (key == "bytes") {
      if (value.size() % 2 != 0 || !std::all_of(value.begin(), value.end(),
                                                [](char c) { return absl::ascii_isxdigit(c); })) {
        return absl::InvalidArgumentError("choice file: bytes are not hex");
      }
      file.bytes = absl::HexStringToBytes(value);
      have_bytes = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("choice file: unknown key '", key, "'"));
    }
  }
  if (file.scenario.empty() || !have_bytes) {
    return absl::InvalidArgumentError("choice file: needs 'scenario:' and 'bytes:' lines");
  }
  return file;
}

}  // namespace netlayer::sim
