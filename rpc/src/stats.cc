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

std::string MethodsJson(const std::map<std::string, MethodStats>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, Quote(k), ":{\"calls\":", v.calls,
                    ",\"by_status\":", MapJson(v.by_status), ",\"latency_count\":", v.latency_count,
                    ",\"latency_sum_ns\":", v.latency_sum_ns, "}");
  }
  return out + "}";
}

constexpr std::array<const char*, kRefusalKinds> kRefusalNames = {
    "max_sessions",       "max_sessions_per_host", "shutting_down",       "max_inflight_calls",
    "shutting_down_call", "memory_budget_frame",   "memory_budget_reply", "reply_over_frame_limit",
    "reply_output_full",  "handshake_timeout",     "idle_timeout",        "hello_too_large",
    "frame_too_large"};

}  // namespace

const char* RefusalName(Refusal refusal) {
  const auto i = static_cast<size_t>(refusal);
  return i < kRefusalNames.size() ? kRefusalNames[i] : "unknown";
}

std::string ServerStats::ToJson() const {
  return absl::StrCat(
      "{\"sessions_open\":", sessions_open, ",\"sessions_accepted\":", sessions_accepted,
      ",\"sessions_refused\":", sessions_refused, ",\"calls_by_method\":", MapJson(calls_by_method),
      ",\"calls_by_status\":", MapJson(calls_by_status), ",\"pushes\":", pushes,
      ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
      ",\"inflight_calls\":", inflight_calls, ",\"queued_output_bytes\":", queued_output_bytes,
      ",\"memory_budget_bytes\":", memory_budget_bytes,
      ",\"frame_buffer_bytes\":", frame_buffer_bytes,
      ",\"peak_frame_buffer_bytes\":", peak_frame_buffer_bytes,
      ",\"budget_refusals\":", budget_refusals, ",\"shutting_down\":", Bool(shutting_down),
      ",\"methods\":", MethodsJson(methods), ",\"refusals\":", MapJson(refusals),
      ",\"handshake_failures\":", MapJson(handshake_failures),
      ",\"session_closes\":", MapJson(session_closes), "}");
}

std::string ClientStats::ToJson() const {
  return absl::StrCat("{\"connections\":", connections, ",\"reconnects\":", reconnects,
                      ",\"connect_failures\":", connect_failures, ",\"disconnects\":", disconnects,
                      ",\"calls_by_method\":", MapJson(calls_by_method),
                      ",\"calls_by_status\":", MapJson(calls_by_status), ",\"pushes\":", pushes,
                      ",\"bytes_in\":", bytes_in, ",\"bytes_out\":", bytes_out,
                      ",\"pending_calls\":", pending_calls,
                      ",\"queued_output_bytes\":", queued_output_bytes, ",\"ready\":", Bool(ready),
                      ",\"methods\":", MethodsJson(methods),
                      ",\"handshake_failures\":", MapJson(handshake_failures), "}");
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

MethodStats& StatsCounters::MethodLocked(std::string_view method) {
  auto it = by_method_.find(method);
  if (it != by_method_.end()) return it->second;
  if (by_method_.size() < kMaxStatsMethods) return by_method_[std::string(method)];
  return by_method_["(other)"];
}

void StatsCounters::AddCall(std::string_view method) {
  MutexLock lock(mu_);
  ++MethodLocked(method).calls;
}

void StatsCounters::AddAnswer(std::string_view method, absl::StatusCode code,
                              absl::Duration latency) {
  const std::string name = absl::StatusCodeToString(code);
  MutexLock lock(mu_);
  ++by_status_[name];
  if (method.empty()) return;
  MethodStats& m = MethodLocked(method);
  ++m.by_status[name];
  if (latency < absl::ZeroDuration()) return;
  const double seconds = absl::ToDoubleSeconds(latency);
  size_t bucket = 0;
  while (bucket < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[bucket]) {
    ++bucket;
  }
  ++m.latency_counts[bucket];
  ++m.latency_count;
  m.latency_sum_ns += absl::ToInt64Nanoseconds(latency);
}

void StatsCounters::AddClose(bool handshaking, std::string_view kind) {
  MutexLock lock(mu_);
  auto& map = handshaking ? handshake_failures_ : closes_;
  auto it = map.find(kind);
  if (it == map.end()) {
    map.emplace(std::string(kind), 1);
  } else {
    ++it->second;
  }
}

void StatsCounters::FillMethods(std::map<std::string, MethodStats>& methods) const {
  MutexLock lock(mu_);
  methods.clear();
  for (const auto& [k, v] : by_method_) methods.emplace(k, v);
}

void StatsCounters::FillRefusals(std::map<std::string, uint64_t>& refusals) const {
  for (size_t i = 0; i < kRefusalKinds; ++i) {
    refusals[kRefusalNames[i]] += refusals_[i].load(std::memory_order_relaxed);
  }
}

void StatsCounters::FillCloses(std::map<std::string, uint64_t>& handshake_failures,
                               std::map<std::string, uint64_t>& closes) const {
  MutexLock lock(mu_);
  handshake_failures.clear();
  for (const auto& [k, v] : handshake_failures_) handshake_failures.emplace(k, v);
  closes.clear();
  for (const auto& [k, v] : closes_) closes.emplace(k, v);
}

void StatsCounters::Fill(std::map<std::string, uint64_t>& by_method,
                         std::map<std::string, uint64_t>& by_status, uint64_t& bytes_in,
                         uint64_t& bytes_out) const {
  MutexLock lock(mu_);
  by_method.clear();
  for (const auto& [k, v] : by_method_) {
    if (v.calls > 0) by_method.emplace(k, v.calls);
  }
  by_status = by_status_;
  bytes_in = bytes_in_;
  bytes_out = bytes_out_;
}

}  // namespace internal
}  // namespace netlayer::rpc
