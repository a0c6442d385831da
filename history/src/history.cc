#include "netlayer/history/history.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "netlayer/core/assert.h"

namespace netlayer::history {

std::string OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kInfo:
      return "info";
  }
  return "?";
}

namespace {

std::string Seconds(int64_t ns, int64_t origin) {
  if (ns == kNever) return "inf";
  return absl::StrFormat("%.9fs", static_cast<double>(ns - origin) / 1e9);
}

}  // namespace

std::string Operation::ToString(int64_t origin) const {
  std::string s = absl::StrCat("#", index, " p", process, " ", f);
  if (!key.empty()) absl::StrAppend(&s, " ", key);
  if (!value.is_null()) absl::StrAppend(&s, " ", value.dump());
  absl::StrAppend(&s, " -> ", OutcomeName(outcome));
  if (!result.is_null()) absl::StrAppend(&s, " ", result.dump());
  absl::StrAppend(&s, " [", Seconds(invoke, origin), ", ", Seconds(complete, origin), "]");
  return s;
}

Json ToJson(const Operation& op) {
  Json j = Json::object();
  j["index"] = op.index;
  j["process"] = op.process;
  j["f"] = op.f;
  j["key"] = op.key;
  j["value"] = op.value;
  j["type"] = OutcomeName(op.outcome);
  j["result"] = op.result;
  j["invoke"] = op.invoke;
  j["complete"] = op.complete == kNever ? Json(nullptr) : Json(op.complete);
  return j;
}

absl::StatusOr<Operation> FromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("an operation must be a JSON object");
  Operation op;
  try {
    op.index = j.value("index", uint64_t{0});
    op.process = j.at("process").get<int64_t>();
    op.f = j.at("f").get<std::string>();
    op.key = j.value("key", std::string());
    op.value = j.value("value", Json(nullptr));
    const std::string type = j.at("type").get<std::string>();
    if (type == "ok") {
      op.outcome = Outcome::kOk;
    } else if (type == "fail") {
      op.outcome = Outcome::kFail;
    } else if (type == "info") {
      op.outcome = Outcome::kInfo;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown type '", type, "'"));
    }
    op.result = j.value("result", Json(nullptr));
    op.invoke = j.at("invoke").get<int64_t>();
    const Json& c = j.contains("complete") ? j.at("complete") : Json(nullptr);
    op.complete = c.is_null() ? kNever : c.get<int64_t>();
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (op.outcome == Outcome::kInfo) op.complete = kNever;
  if (op.complete < op.invoke) {
    return absl::InvalidArgumentError("an operation completes before it is invoked");
  }
  return op;
}

std::string ToJsonLines(const std::vector<Operation>& ops) {
  std::string out;
  for (const Operation& op : ops) {
    out += ToJson(op).dump();
    out += '\n';
  }
  return out;
}

absl::StatusOr<std::vector<Operation>> FromJsonLines(std::string_view text) {
  std::vector<Operation> ops;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": not JSON"));
    }
    absl::StatusOr<Operation> op = FromJson(j);
    if (!op.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": ", op.status().message()));
    }
    ops.push_back(std::move(*op));
  }
  return ops;
}

absl::Status WriteJsonLines(const std::string& path, const std::vector<Operation>& ops) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  out << ToJsonLines(ops);
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Operation>> ReadJsonLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<std::vector<Operation>> ops = FromJsonLines(buffer.str());
  if (!ops.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", ops.status().message()));
  }
  return ops;
}

int64_t Origin(const std::vector<Operation>& ops) {
  if (ops.empty()) return 0;
  int64_t origin = ops.front().invoke;
  for (const Operation& op : ops) origin = std::min(origin, op.invoke);
  return origin;
}

Recorder::Recorder(Clock clock) : clock_(std::move(clock)) {}
Recorder::Recorder(const Env& env) : clock_([&env] { return env.Now(); }) {}

int64_t Recorder::NowLocked() {
  int64_t now = absl::ToUnixNanos(clock_());
  if (now <= last_) now = last_ + 1;
  last_ = now;
  return now;
}

uint64_t Recorder::Invoke(int64_t process, std::string f, std::string key, Json value) {
  MutexLock lock(mu_);
  Operation op;
  op.index = ops_.size();
  op.process = process;
  op.f = std::move(f);
  op.key = std::move(key);
  op.value = std::move(value);
  op.invoke = NowLocked();
  ops_.push_back(std::move(op));
  completed_.push_back(false);
  return ops_.back().index;
}

void Recorder::CompleteLocked(uint64_t id, Outcome outcome, Json result) {
  NETLAYER_ASSERT(id < ops_.size() && !completed_[id], "history: an operation completed twice");
  completed_[id] = true;
  Operation& op = ops_[id];
  op.outcome = outcome;
  op.result = std::move(result);
  const int64_t now = NowLocked();
  op.complete = outcome == Outcome::kInfo ? kNever : now;
}

void Recorder::Ok(uint64_t id, Json result) {
  MutexLock lock(mu_);
  CompleteLocked(id, Outcome::kOk, std::move(result));
}
void Recorder::Fail(uint64_t id, Json error) {
  MutexLock lock(mu_);
  CompleteLocked(id, Outcome::kFail, std::move(error));
}
void Recorder::Info(uint64_t id, Json error) {
  MutexLock lock(mu_);
  CompleteLocked(id, Outcome::kInfo, std::move(error));
}

uint64_t Recorder::Observe(int64_t process, std::string f, std::string key, Json value,
                           Json result) {
  const uint64_t id = Invoke(process, std::move(f), std::move(key), std::move(value));
  Ok(id, std::move(result));
  return id;
}

void Recorder::SetKey(uint64_t id, std::string key) {
  MutexLock lock(mu_);
  NETLAYER_ASSERT(id < ops_.size(), "history: no such operation");
  ops_[id].key = std::move(key);
}

size_t Recorder::size() const {
  MutexLock lock(mu_);
  return ops_.size();
}

std::vector<Operation> Recorder::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<Operation> ops = ops_;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!completed_[i]) {
      ops[i].outcome = Outcome::kInfo;
      ops[i].complete = kNever;
    }
  }
  return ops;
}

}  // namespace netlayer::history
