#include "netlayer/sim/fault_tape.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace netlayer::sim {
namespace {
constexpr char kTapeFormat[] = "netlayer-fault-tape-1";

// Durations as integer nanoseconds; -1 for "until the liveness phase" (infinite).
int64_t Ns(absl::Duration d) {
  return d == absl::InfiniteDuration() ? -1 : absl::ToInt64Nanoseconds(d);
}
absl::Duration FromNs(int64_t ns) {
  return ns < 0 ? absl::InfiniteDuration() : absl::Nanoseconds(ns);
}
}  // namespace

size_t FaultTape::faults() const {
  size_t n = 0;
  for (const TapeEntry& e : entries) n += e.IsFault() ? 1 : 0;
  return n;
}

std::string FaultTape::Serialize() const {
  std::string out = nlohmann::json{
      {"format", kTapeFormat},
      {"scenario", scenario},
      {"seed", seed},
      {"plant", plant},
      {"profile",
       profile}}.dump();
  out += '\n';
  for (const TapeEntry& e : entries) {
    nlohmann::json j{{"p", e.process}, {"kind", e.kind}, {"n", e.ordinal}};
    if (e.process == "fault") j["at_ns"] = Ns(e.at);
    if (e.duration != absl::ZeroDuration()) j["dur_ns"] = Ns(e.duration);
    if (!e.host.empty()) j["host"] = e.host;
    if (!e.from.empty()) j["from"] = e.from;
    if (!e.to.empty()) j["to"] = e.to;
    if (!e.side_a.empty()) j["a"] = e.side_a;
    if (!e.side_b.empty()) j["b"] = e.side_b;
    if (e.one_way) j["one_way"] = true;
    if (e.stream != 0) j["stream"] = e.stream;
    if (e.side != 0) j["side"] = e.side;
    if (e.count != 0) j["count"] = e.count;
    if (e.offset != absl::ZeroDuration()) j["offset_ns"] = Ns(e.offset);
    if (e.drift_ppb != 0) j["drift_ppb"] = e.drift_ppb;
    out += j.dump();
    out += '\n';
  }
  return out;
}

absl::StatusOr<FaultTape> FaultTape::Parse(const std::string& text) {
  FaultTape tape;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  try {
    while (std::getline(in, line)) {
      ++number;
      if (line.empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line);
      if (number == 1) {
        if (j.value("format", "") != kTapeFormat) {
          return absl::InvalidArgumentError(
              absl::StrCat("not a fault tape (", kTapeFormat, ") on line 1"));
        }
        tape.scenario = j.value("scenario", "");
        tape.seed = j.at("seed").get<uint64_t>();
        tape.plant = j.value("plant", "");
        tape.profile = j.value("profile", "");
        continue;
      }
      TapeEntry e;
      e.process = j.at("p").get<std::string>();
      e.kind = j.value("kind", "");
      e.ordinal = j.value("n", uint64_t{0});
      e.at = absl::Nanoseconds(j.value("at_ns", int64_t{0}));
      e.duration = FromNs(j.value("dur_ns", int64_t{0}));
      e.host = j.value("host", "");
      e.from = j.value("from", "");
      e.to = j.value("to", "");
      e.side_a = j.value("a", std::vector<std::string>{});
      e.side_b = j.value("b", std::vector<std::string>{});
      e.one_way = j.value("one_way", false);
      e.stream = j.value("stream", uint64_t{0});
      e.side = j.value("side", 0);
      e.count = j.value("count", uint64_t{0});
      e.offset = absl::Nanoseconds(j.value("offset_ns", int64_t{0}));
      e.drift_ppb = j.value("drift_ppb", int64_t{0});
      if (e.process != "fault" && e.process != "connect-fail" && e.process != "flap" &&
          e.process != "clock") {
        return absl::InvalidArgumentError(
            absl::StrCat("fault tape line ", number, ": unknown process '", e.process, "'"));
      }
      tape.entries.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat("fault tape line ", number, ": ", ex.what()));
  }
  if (number == 0) return absl::InvalidArgumentError("empty fault tape");
  return tape;
}

}  // namespace netlayer::sim
