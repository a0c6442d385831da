#include "netlayer/core/probe.h"

#include <mutex>  // NOLINT(determinism): guards the registry; no thread is started

#include "netlayer/core/assert.h"

namespace netlayer {

namespace probe_internal {
constinit thread_local ProbeSink* current_sink = nullptr;
}  // namespace probe_internal

std::string_view ProbeKindName(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kSometimes:
      return "sometimes";
    case ProbeKind::kReachable:
      return "reachable";
    case ProbeKind::kUnreachable:
      return "unreachable";
    case ProbeKind::kBuggify:
      return "buggify";
  }
  return "?";
}

namespace {
struct Registry {
  std::mutex mu;
  std::vector<ProbeInfo> probes;  // by id
};
// Never destroyed: probes may be registered and read during static initialisation and exit.
Registry& TheRegistry() {
  static Registry* const registry = new Registry();
  return *registry;
}
}  // namespace

uint32_t ProbeRegistry::Register(std::string_view name, ProbeKind kind) {
  NETLAYER_ASSERT(!name.empty(), "a probe needs a name");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    NETLAYER_ASSERT(ok, "a probe name may only use [A-Za-z0-9._-]");
  }
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (uint32_t id = 0; id < r.probes.size(); ++id) {
    if (r.probes[id].name == name) {
      NETLAYER_ASSERT(r.probes[id].kind == kind,
                      "a probe name is used with two kinds (NETLAYER_SOMETIMES / REACHABLE / "
                      "UNREACHABLE / BUGGIFY): probe names must be unique");
      return id;
    }
  }
  r.probes.push_back(ProbeInfo{name, kind});
  return static_cast<uint32_t>(r.probes.size() - 1);
}

std::vector<ProbeInfo> ProbeRegistry::All() {
  Registry& r = TheRegistry();
  std::vector<ProbeInfo> out;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    out = r.probes;
  }
  std::sort(out.begin(), out.end(),
            [](const ProbeInfo& a, const ProbeInfo& b) { return a.name < b.name; });
  return out;
}

ProbeInfo ProbeRegistry::Get(uint32_t id) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  NETLAYER_ASSERT(id < r.probes.size(), "not a probe id");
  return r.probes[id];
}

size_t ProbeRegistry::size() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.probes.size();
}

ProbeSink::ProbeSink(uint64_t seed)
    : counts_(ProbeRegistry::size()), generator_(seed ^ kBuggifySalt) {}

ProbeSink::Count& ProbeSink::At(uint32_t id) {
  // Probes of a library loaded after this sink was made have larger ids.
  if (id >= counts_.size()) counts_.resize(id + 1);
  return counts_[id];
}

void ProbeSink::Hit(uint32_t id, bool held) {
  Count& c = At(id);
  ++c.evaluated;
  if (held) ++c.held;
}

void ProbeSink::Unreachable(uint32_t id) {
  Hit(id, true);
  if (on_unreachable_) on_unreachable_(ProbeRegistry::Get(id).name);
}

bool ProbeSink::Buggify(uint32_t id) {
  if (!buggify_) return false;
  Count& c = At(id);
  ++c.evaluated;
  if (c.buggify < 0) c.buggify = generator_.Next() % 4 == 0 ? 1 : 0;
  if (c.buggify == 0) return false;
  const bool fire = generator_.Next() % 4 == 0;
  if (fire) ++c.held;
  return fire;
}

std::vector<ProbeHit> ProbeSink::Hits() const {
  std::vector<ProbeHit> out;
  for (uint32_t id = 0; id < counts_.size(); ++id) {
    if (counts_[id].evaluated == 0) continue;
    const ProbeInfo info = ProbeRegistry::Get(id);
    out.push_back(
        ProbeHit{std::string(info.name), info.kind, counts_[id].evaluated, counts_[id].held});
  }
  std::sort(out.begin(), out.end(),
            [](const ProbeHit& a, const ProbeHit& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> ProbeSink::EnabledBuggifySites() const {
  std::vector<std::string> out;
  for (uint32_t id = 0; id < counts_.size(); ++id) {
    if (counts_[id].buggify == 1) out.emplace_back(ProbeRegistry::Get(id).name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace netlayer
