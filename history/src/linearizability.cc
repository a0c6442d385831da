#include "netlayer/history/linearizability.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace netlayer::history {

std::vector<std::vector<Operation>> Model::Partition(std::vector<Operation> ops) const {
  std::vector<std::vector<Operation>> parts;
  parts.push_back(std::move(ops));
  return parts;
}

std::vector<std::vector<Operation>> PartitionByKey(std::vector<Operation> ops) {
  std::map<std::string, std::vector<Operation>> by_key;  // ordered: deterministic
  for (Operation& op : ops) by_key[op.key].push_back(std::move(op));
  std::vector<std::vector<Operation>> parts;
  parts.reserve(by_key.size());
  for (auto& [key, part] : by_key) parts.push_back(std::move(part));
  return parts;
}

std::string VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kViolation:
      return "violation";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

// ---- the built-in models ----

std::string Encode(const Json& j) { return j.dump(); }

// read / write / cas on values encoded as JSON text.
std::optional<State> RegisterStep(const State& state, const Operation& op) {
  if (op.f == "read") {
    if (op.outcome == Outcome::kInfo) return state;
    if (Encode(op.result) != state) return std::nullopt;
    return state;
  }
  if (op.f == "write") return Encode(op.value);
  if (op.f == "cas") {
    if (!op.value.is_array() || op.value.size() != 2) return std::nullopt;
    if (Encode(op.value[0]) != state) return std::nullopt;
    return Encode(op.value[1]);
  }
  return std::nullopt;
}

class RegisterLike : public Model {
 public:
  explicit RegisterLike(bool by_key) : by_key_(by_key) {}
  std::string name() const override { return by_key_ ? "kv" : "register"; }
  State Init() const override { return "null"; }
  std::optional<State> Step(const State& state, const Operation& op) const override {
    return RegisterStep(state, op);
  }
  std::vector<std::vector<Operation>> Partition(std::vector<Operation> ops) const override {
    if (!by_key_) return Model::Partition(std::move(ops));
    return PartitionByKey(std::move(ops));
  }
  bool Droppable(const Operation& op) const override { return op.f == "read"; }

 private:
  const bool by_key_;
};

// State: "holder token accepted" (holder -1: free; token: the last granted; accepted: the
// largest token the fenced resource accepted).
struct MutexState {
  int64_t holder = -1;
  int64_t token = 0;
  int64_t accepted = 0;
  static MutexState Decode(const State& s) {
    Json j = Json::parse(s);
    return {j[0].get<int64_t>(), j[1].get<int64_t>(), j[2].get<int64_t>()};
  }
  State Encode() const { return Json::array({holder, token, accepted}).dump(); }
};

class MutexModelImpl final : public Model {
 public:
  std::string name() const override { return "mutex"; }
  State Init() const override { return MutexState{}.Encode(); }
  std::optional<State> Step(const State& state, const Operation& op) const override {
    MutexState s = MutexState::Decode(state);
    if (op.f == "acquire") {
      if (op.outcome == Outcome::kInfo) {
        // Granted with a token we never saw: later tokens must only be larger than it.
        s.holder = op.process;
        s.token = s.token + 1;
        return s.Encode();
      }
      if (!op.result.is_number_integer()) return std::nullopt;
      const int64_t t = op.result.get<int64_t>();
      if (t > s.token) {
        // A new grant: the lock was free, or its holder's lease ran out.
        s.holder = op.process;
        s.token = t;
        return s.Encode();
      }
      if (t == s.token && s.holder == op.process) return state;  // a renewal
      return std::nullopt;
    }
    if (op.f == "release") {
      const int64_t t = op.value.is_number_integer() ? op.value.get<int64_t>() : -1;
      if (s.holder == op.process && t == s.token) s.holder = -1;
      return s.Encode();
    }
    if (op.f == "write") {
      const int64_t t = op.value.is_number_integer()
                            ? op.value.get<int64_t>()
                            : (op.value.is_object() ? op.value.value("token", int64_t{-1}) : -1);
      if (t > s.token) return std::nullopt;  // a token not granted yet
      if (op.outcome == Outcome::kInfo) {
        if (t >= s.accepted) s.accepted = t;
        return s.Encode();
      }
      const bool accepted = op.result == "accepted";
      if (accepted != (t >= s.accepted)) return std::nullopt;
      if (accepted) s.accepted = t;
      return s.Encode();
    }
    return std::nullopt;
  }
  std::vector<std::vector<Operation>> Partition(std::vector<Operation> ops) const override {
    return PartitionByKey(std::move(ops));
  }
  bool Droppable(const Operation& op) const override {
    return op.f == "release";  // an unknown release leaves the lock to lease expiry anyway
  }
};

class QueueModelImpl final : public Model {
 public:
  std::string name() const override { return "queue"; }
  State Init() const override { return "[]"; }
  std::optional<State> Step(const State& state, const Operation& op) const override {
    Json q = Json::parse(state);
    if (op.f == "enqueue") {
      q.push_back(op.value);
      return q.dump();
    }
    if (op.f == "dequeue") {
      if (op.outcome == Outcome::kInfo) {
        if (!q.empty()) q.erase(q.begin());
        return q.dump();
      }
      if (q.empty()) {
        if (!op.result.is_null()) return std::nullopt;
        return state;
      }
      if (q.front() != op.result) return std::nullopt;
      q.erase(q.begin());
      return q.dump();
    }
    return std::nullopt;
  }
  std::vector<std::vector<Operation>> Partition(std::vector<Operation> ops) const override {
    return PartitionByKey(std::move(ops));
  }
};

class FunctionModel final : public Model {
 public:
  explicit FunctionModel(ModelFunctions f) : f_(std::move(f)) {}
  std::string name() const override { return f_.name; }
  State Init() const override { return f_.init; }
  std::optional<State> Step(const State& state, const Operation& op) const override {
    return f_.step(state, op);
  }
  std::vector<std::vector<Operation>> Partition(std::vector<Operation> ops) const override {
    if (f_.partition) return f_.partition(std::move(ops));
    return Model::Partition(std::move(ops));
  }

 private:
  ModelFunctions f_;
};

// ---- the search ----

struct Node {
  bool call = false;
  int id = 0;  // the operation's position in its part
  int64_t time = 0;
  Node* match = nullptr;
  Node* prev = nullptr;
  Node* next = nullptr;
};

void Lift(Node* e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
  Node* m = e->match;
  m->prev->next = m->next;
  if (m->next != nullptr) m->next->prev = m->prev;
}

void Unlift(Node* e) {
  Node* m = e->match;
  m->prev->next = m;
  if (m->next != nullptr) m->next->prev = m;
  e->prev->next = e;
  e->next->prev = e;
}

using Bits = std::vector<uint64_t>;

struct CacheKey {
  Bits bits;
  State state;
  bool operator==(const CacheKey& o) const { return bits == o.bits && state == o.state; }
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& k) {
    return H::combine(std::move(h), k.bits, k.state);
  }
};

struct PartResult {
  Verdict verdict = Verdict::kOk;
  size_t best_depth = 0;
  std::vector<int> prefix;
  std::vector<State> states;
  std::vector<int> unplaced;
};

// One depth-first search. With `capture_depth` set, stops at the first dead end at that depth
// and records it (the second pass of a failed part).
PartResult SearchPart(const Model& model, const std::vector<Operation>& ops, uint64_t& steps,
                      uint64_t max_steps, std::optional<size_t> capture_depth) {
  PartResult result;
  const size_t n = ops.size();
  std::vector<Node> nodes(2 * n + 1);
  Node* head = &nodes[2 * n];
  std::vector<Node*> order;
  order.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    Node* c = &nodes[2 * i];
    Node* r = &nodes[2 * i + 1];
    c->call = true;
    c->id = r->id = static_cast<int>(i);
    c->time = ops[i].invoke;
    r->time = ops[i].complete;
    c->match = r;
    order.push_back(c);
    order.push_back(r);
  }
  // By time; at equal times calls first (the operations count as concurrent), then by id.
  std::stable_sort(order.begin(), order.end(), [](const Node* a, const Node* b) {
    if (a->time != b->time) return a->time < b->time;
    if (a->call != b->call) return a->call;
    return a->id < b->id;
  });
  Node* prev = head;
  for (Node* e : order) {
    prev->next = e;
    e->prev = prev;
    prev = e;
  }
  prev->next = nullptr;

  Bits linearized((n + 63) / 64, 0);
  absl::flat_hash_set<CacheKey> cache;
  struct Frame {
    Node* entry;
    State state;
  };
  std::vector<Frame> stack;
  State state = model.Init();
  Node* entry = head->next;
  auto capture = [&](Node* stuck) {
    for (const Frame& f : stack) result.prefix.push_back(f.entry->id);
    for (size_t i = 1; i < stack.size(); ++i) result.states.push_back(stack[i].state);
    result.states.push_back(state);
    if (stuck != nullptr) {
      result.unplaced.push_back(stuck->id);
      for (Node* e = head->next; e != nullptr && e != stuck && result.unplaced.size() < 12;
           e = e->next) {
        if (e->call && e->id != stuck->id) result.unplaced.push_back(e->id);
      }
    }
  };
  while (head->next != nullptr) {
    if (++steps > max_steps) {
      result.verdict = Verdict::kUnknown;
      capture(nullptr);
      return result;
    }
    if (entry->call) {
      std::optional<State> next = model.Step(state, ops[entry->id]);
      if (next.has_value()) {
        Bits bits = linearized;
        bits[entry->id / 64] |= uint64_t{1} << (entry->id % 64);
        if (cache.insert(CacheKey{bits, *next}).second) {
          stack.push_back({entry, std::move(state)});
          state = std::move(*next);
          linearized = std::move(bits);
          Lift(entry);
          entry = head->next;
          continue;
        }
      }
      entry = entry->next;
      continue;
    }
    // A completion whose operation is not linearized yet.
    if (ops[entry->id].outcome == Outcome::kInfo) return result;  // only info ones remain
    const size_t depth = stack.size();
    if (capture_depth.has_value() && depth == *capture_depth) {
      result.verdict = Verdict::kViolation;
      capture(entry);
      return result;
    }
    result.best_depth = std::max(result.best_depth, depth);
    if (stack.empty()) {
      result.verdict = Verdict::kViolation;
      return result;
    }
    Frame f = std::move(stack.back());
    stack.pop_back();
    state = std::move(f.state);
    linearized[f.entry->id / 64] &= ~(uint64_t{1} << (f.entry->id % 64));
    Unlift(f.entry);
    entry = f.entry->next;
  }
  return result;
}

}  // namespace

std::unique_ptr<Model> RegisterModel() { return std::make_unique<RegisterLike>(false); }
std::unique_ptr<Model> KvModel() { return std::make_unique<RegisterLike>(true); }
std::unique_ptr<Model> MutexModel() { return std::make_unique<MutexModelImpl>(); }
std::unique_ptr<Model> QueueModel() { return std::make_unique<QueueModelImpl>(); }
std::unique_ptr<Model> MakeModel(ModelFunctions functions) {
  return std::make_unique<FunctionModel>(std::move(functions));
}

absl::StatusOr<std::unique_ptr<Model>> BuiltinModel(std::string_view name) {
  if (name == "register") return RegisterModel();
  if (name == "kv") return KvModel();
  if (name == "mutex") return MutexModel();
  if (name == "queue") return QueueModel();
  return absl::NotFoundError(
      absl::StrCat("no model '", std::string(name), "' (known: register, kv, mutex, queue)"));
}

LinearizabilityResult CheckLinearizable(const Model& model, std::vector<Operation> ops,
                                        const CheckOptions& options) {
  LinearizabilityResult result;
  result.model = model.name();
  result.origin = Origin(ops);
  std::vector<std::vector<Operation>> parts = model.Partition(std::move(ops));
  for (auto& part : parts) {
    std::erase_if(part, [&](const Operation& op) {
      return (op.outcome == Outcome::kFail && !model.KeepFailed(op)) ||
             (op.outcome == Outcome::kInfo && model.Droppable(op));
    });
    std::stable_sort(part.begin(), part.end(),
                     [](const Operation& a, const Operation& b) { return a.invoke < b.invoke; });
    if (part.empty()) continue;
    ++result.parts;
    result.operations += part.size();
    uint64_t steps_before = result.steps;
    PartResult r = SearchPart(model, part, result.steps, options.max_steps, std::nullopt);
    if (r.verdict == Verdict::kOk) continue;
    if (r.verdict == Verdict::kViolation) {
      // Again, to the first dead end at the greatest depth reached: the longest prefix.
      uint64_t again = steps_before;
      r = SearchPart(model, part, again, options.max_steps * 2 + again, r.best_depth);
    }
    result.verdict = r.verdict == Verdict::kOk ? Verdict::kViolation : r.verdict;
    result.key = part.front().key;
    for (int id : r.prefix) result.prefix.push_back(part[id]);
    result.states = r.states;
    for (int id : r.unplaced) result.unplaced.push_back(part[id]);
    return result;
  }
  return result;
}

std::string LinearizabilityResult::Report(size_t prefix_shown) const {
  std::string s =
      absl::StrCat("linearizability (", model, "): ", VerdictName(verdict), "; ", operations,
                   " operations in ", parts, " parts, ", steps, " search steps");
  if (verdict == Verdict::kOk) return s;
  if (verdict == Verdict::kUnknown) absl::StrAppend(&s, "; the step budget ran out");
  absl::StrAppend(&s, "\n  part key '", key, "': the longest linearization found orders ",
                  prefix.size(), " operations");
  const size_t from = prefix.size() > prefix_shown ? prefix.size() - prefix_shown : 0;
  if (from > 0) absl::StrAppend(&s, " (the last ", prefix_shown, " shown)");
  for (size_t i = from; i < prefix.size(); ++i) {
    absl::StrAppend(&s, "\n    ", prefix[i].ToString(origin), "  => state ",
                    i < states.size() ? states[i] : "?");
  }
  if (!unplaced.empty()) {
    absl::StrAppend(&s,
                    "\n  then none of these can be placed (the first completed before it "
                    "could take effect):");
    for (const Operation& op : unplaced) absl::StrAppend(&s, "\n    ", op.ToString(origin));
  }
  return s;
}

}  // namespace netlayer::history
