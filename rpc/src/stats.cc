#include "netlayer/rpc/stats.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace netlayer::rpc {
namespace {

constexpr size_t kFrameHeader = 4;

// A JSON string literal; method names are arbitrary bytes, so control and non-ASCII bytes are
// escaped as \u00XX.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppend(&out, "\\u00", absl::BytesToHexString(std::string(1, static_cast<char>(c))));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string MapJson(const std::map<std::string, uint64_t>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, Quote(k), ":", v);
  }
  return out + "}";
}

const char* Bool(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string ServerStats::ToJson() const {
  return absl::StrCat(
      "{\"sessions_open\":", sessions_open, ",\"sessions_accepted\":", sessions_accepted,
      ",\"sessions_refused\":", sessions_refused, ",\"calls_by_method\":", MapJson(calls_by_method),
      ",\"calls_by_status\":", MapJson(calls_by_status), ",\"pushes\":", pushes,
      ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
      ",\"inflight_calls\":", inflight_calls, ",\"queued_output_bytes\":", queued_output_bytes,
      ",\"shutting_down\":", Bool(shutting_down), "}");
}

std::string ClientStats::ToJson() const {
  return absl::StrCat("{\"connections\":", connections, ",\"reconnects\":", reconnects,
                      ",\"connect_failures\":", connect_failures, ",\"disconnects\":", disconnects,
                      ",\"calls_by_method\":", MapJson(calls_by_method),
                      ",\"calls_by_status\":", MapJson(calls_by_status), ",\"pushes\":", pushes,
                      ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
                      ",\"pending_calls\":", pending_calls,
                      ",\"queued_output_bytes\":", queued_output_bytes, ",\"ready\":", Bool(ready),
                      "}");
}

namespace internal {

void StatsCounters::AddBytesIn(size_t message_bytes) {
  MutexLock lock(mu_);
  bytes_in_ += message_bytes + kFrameHeader;
}

void StatsCounters::AddBytesOut(size_t message_bytes) {
  MutexLock lock(mu_);
  bytes_out_ += message_bytes + kFrameHeader;
}

void StatsCounters::AddCall(std::string_view method) {
  MutexLock lock(mu_);
  auto it = by_method_.find(method);
  if (it != by_method_.end()) {
    ++it->second;
  } else if (by_method_.size() < kMaxStatsMethods) {
    by_method_.emplace(std::string(method), 1);
  } else {
    ++by_method_["(other)"];
  }
}

void StatsCounters::AddStatus(absl::StatusCode code) {
  MutexLock lock(mu_);
  ++by_status_[absl::StatusCodeToString(code)];
}

void StatsCounters::Fill(std::map<std::string, uint64_t>& by_method,
                         std::map<std::string, uint64_t>& by_status, uint64_t& bytes_in,
                         uint64_t& bytes_out) const {
  MutexLock lock(mu_);
  by_method.clear();
  for (const auto& [k, v] : by_method_) by_method.emplace(k, v);
  by_status = by_status_;
  bytes_in = bytes_in_;
  bytes_out = bytes_out_;
}

}  // namespace internal
}  // namespace netlayer::rpc
