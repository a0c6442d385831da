#include "netlayer/history/transactions.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace netlayer::history {

std::string ScopeOf(const std::string& key) {
  const size_t slash = key.find('/');
  return slash == std::string::npos ? std::string() : key.substr(0, slash);
}

namespace {

int64_t VersionOf(const Json& result) {
  if (!result.is_object()) return -1;
  const Json& v = result.contains("version") ? result.at("version") : Json(nullptr);
  return v.is_number_integer() ? v.get<int64_t>() : -1;
}

struct Txn {
  size_t op = 0;  // index into ops
  int64_t tid = -1;
  std::map<std::string, int64_t> reads;
  std::map<std::string, std::string> writes;  // key -> data (JSON text)
};

}  // namespace

TransactionsResult CheckTransactions(const std::vector<Operation>& ops) {
  TransactionsResult result;
  result.origin = Origin(ops);
  auto op_text = [&](size_t i) { return ops[i].ToString(result.origin); };

  // The commits that may have happened (ok or info), and who wrote what.
  std::vector<Txn> txns;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = ops[i];
    if (op.f == "load") ++result.loads;
    if (op.f != "commit") continue;
    ++result.commits;
    if (op.outcome == Outcome::kFail) continue;
    Txn t;
    t.op = i;
    if (op.outcome == Outcome::kOk) t.tid = VersionOf(op.result);
    if (op.value.is_object()) {
      if (op.value.contains("reads") && op.value["reads"].is_object()) {
        for (const auto& [k, v] : op.value["reads"].items()) {
          t.reads[k] = v.is_number_integer() ? v.get<int64_t>() : 0;
        }
      }
      if (op.value.contains("writes") && op.value["writes"].is_object()) {
        for (const auto& [k, d] : op.value["writes"].items()) t.writes[k] = d.dump();
      }
    }
    txns.push_back(std::move(t));
  }
  // (key, data) -> the transaction that wrote it.
  std::map<std::pair<std::string, std::string>, size_t> writer_of_data;
  for (size_t t = 0; t < txns.size(); ++t) {
    for (const auto& [k, d] : txns[t].writes) writer_of_data[{k, d}] = t;
  }
  // Loads that see an info commit's data give its tid.
  for (const Operation& op : ops) {
    if (op.f != "load" || !op.ok()) continue;
    const int64_t v = VersionOf(op.result);
    if (v <= 0) continue;
    auto it = writer_of_data.find({op.key, op.result.value("data", Json(nullptr)).dump()});
    if (it != writer_of_data.end() && txns[it->second].tid < 0) txns[it->second].tid = v;
  }
  // Versions per key: version -> writer transaction.
  std::map<std::string, std::map<int64_t, size_t>> versions;
  for (size_t t = 0; t < txns.size(); ++t) {
    if (txns[t].tid < 0) continue;
    ++result.committed;
    for (const auto& [k, d] : txns[t].writes) versions[k][txns[t].tid] = t;
  }
  auto add_problem = [&](std::string p) {
    result.verdict = Verdict::kViolation;
    result.problems.push_back(std::move(p));
  };
  // Could an unresolved info commit have written `key`?
  auto maybe_unknown_writer = [&](const std::string& key) {
    for (const Txn& t : txns) {
      if (t.tid < 0 && t.writes.contains(key)) return true;
    }
    return false;
  };

  // 1. Loads and committed reads name versions some commit wrote.
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = ops[i];
    if (op.f != "load" || !op.ok()) continue;
    const int64_t v = VersionOf(op.result);
    if (v <= 0) continue;
    const std::string data = op.result.value("data", Json(nullptr)).dump();
    auto kv = versions.find(op.key);
    const size_t* writer = nullptr;
    if (kv != versions.end()) {
      auto it = kv->second.find(v);
      if (it != kv->second.end()) writer = &it->second;
    }
    if (writer != nullptr && txns[*writer].writes.at(op.key) == data) continue;
    if (writer == nullptr && maybe_unknown_writer(op.key) &&
        writer_of_data.contains({op.key, data})) {
      continue;
    }
    add_problem(absl::StrCat(
        "a load returned a version no commit wrote", writer ? " (other data)" : "", ":\n    ",
        op_text(i),
        writer ? absl::StrCat("\n    the commit of that version: ", op_text(txns[*writer].op))
               : ""));
  }
  for (const Txn& t : txns) {
    if (t.tid < 0) continue;
    for (const auto& [k, v] : t.reads) {
      if (v <= 0) continue;
      auto kv = versions.find(k);
      if (kv != versions.end() && kv->second.contains(v)) continue;
      if (maybe_unknown_writer(k)) continue;
      add_problem(absl::StrCat("a committed transaction read a version no commit wrote (", k,
                               " at ", v, "):\n    ", op_text(t.op)));
    }
  }

  // 2. The dependency graph of committed transactions.
  struct Edge {
    size_t to;
    std::string why;
  };
  std::vector<std::vector<Edge>> graph(txns.size());
  for (const auto& [k, vs] : versions) {
    for (auto it = vs.begin(); it != vs.end(); ++it) {
      auto next = std::next(it);
      if (next != vs.end() && it->second != next->second) {
        graph[it->second].push_back({next->second, absl::StrCat("ww ", k)});
      }
    }
  }
  for (size_t t = 0; t < txns.size(); ++t) {
    if (txns[t].tid < 0) continue;
    for (const auto& [k, v] : txns[t].reads) {
      auto kv = versions.find(k);
      if (kv == versions.end()) continue;
      auto w = kv->second.find(v);
      if (w != kv->second.end() && w->second != t) {
        graph[w->second].push_back({t, absl::StrCat("wr ", k)});
      }
      auto after = kv->second.upper_bound(v);
      if (after != kv->second.end() && after->second != t) {
        graph[t].push_back({after->second, absl::StrCat("rw ", k)});
      }
    }
  }
  // Iterative DFS for a cycle (colours: 0 new, 1 on the path, 2 done).
  {
    std::vector<int> colour(txns.size(), 0);
    std::vector<std::pair<size_t, size_t>> parent(txns.size(), {SIZE_MAX, 0});
    bool found = false;
    for (size_t root = 0; root < txns.size() && !found; ++root) {
      if (colour[root] != 0 || txns[root].tid < 0) continue;
      std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
      colour[root] = 1;
      while (!stack.empty() && !found) {
        auto& [u, next_edge] = stack.back();
        if (next_edge == graph[u].size()) {
          colour[u] = 2;
          stack.pop_back();
          continue;
        }
        const size_t e = next_edge++;
        const size_t v = graph[u][e].to;
        if (colour[v] == 0) {
          colour[v] = 1;
          parent[v] = {u, e};
          stack.push_back({v, 0});
        } else if (colour[v] == 1) {
          // The cycle v -> ... -> u -> v.
          std::vector<std::pair<size_t, size_t>> cycle{{u, e}};
          for (size_t x = u; x != v;) {
            cycle.push_back(parent[x]);
            x = parent[x].first;
          }
          std::reverse(cycle.begin(), cycle.end());
          std::string p = "committed transactions are not serializable: a dependency cycle";
          for (const auto& [from, edge] : cycle) {
            absl::StrAppend(&p, "\n    ", op_text(txns[from].op), "\n      -",
                            graph[from][edge].why, "->");
          }
          absl::StrAppend(&p, "\n    ", op_text(txns[v].op));
          add_problem(std::move(p));
          found = true;
        }
      }
    }
  }

  // 3. No load older than what its process had observed.
  {
    // Every version known to exist, per key (commits and loads).
    std::map<std::string, std::map<int64_t, size_t>> known;  // version -> an op showing it
    for (const auto& [k, vs] : versions) {
      for (const auto& [v, t] : vs) known[k][v] = txns[t].op;
    }
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].f == "load" && ops[i].ok() && VersionOf(ops[i].result) > 0) {
        known[ops[i].key].emplace(VersionOf(ops[i].result), i);
      }
    }
    struct Observation {
      int64_t at;
      std::string scope;
      int64_t version;
      size_t op;
    };
    std::map<int64_t, std::vector<Observation>> observed;  // per process
    std::map<int64_t, std::vector<size_t>> loads;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Operation& op = ops[i];
      if (!op.ok()) continue;
      const int64_t v = VersionOf(op.result);
      if (op.f == "load") {
        loads[op.process].push_back(i);
        if (v > 0) observed[op.process].push_back({op.complete, ScopeOf(op.key), v, i});
      } else if (op.f == "commit" && v > 0) {
        // A commit's versions are in the scope of its writes.
        std::set<std::string> scopes;
        if (op.value.is_object() && op.value.contains("writes")) {
          for (const auto& [k, d] : op.value["writes"].items()) scopes.insert(ScopeOf(k));
        }
        for (const std::string& s : scopes) observed[op.process].push_back({op.complete, s, v, i});
      } else if ((op.f == "sync" || op.f == "invalidate") && v > 0 && op.value.is_object()) {
        observed[op.process].push_back({op.complete, op.value.value("scope", std::string()), v, i});
      }
    }
    size_t stale_reported = 0;
    for (auto& [process, list] : loads) {
      std::vector<Observation>& obs = observed[process];
      std::sort(obs.begin(), obs.end(),
                [](const Observation& a, const Observation& b) { return a.at < b.at; });
      std::sort(list.begin(), list.end(),
                [&](size_t a, size_t b) { return ops[a].invoke < ops[b].invoke; });
      std::map<std::string, std::pair<int64_t, size_t>> watermark;  // scope -> (version, op)
      size_t next = 0;
      for (size_t i : list) {
        const Operation& op = ops[i];
        while (next < obs.size() && obs[next].at < op.invoke) {
          auto& w = watermark[obs[next].scope];
          if (obs[next].version > w.first) w = {obs[next].version, obs[next].op};
          ++next;
        }
        auto w = watermark.find(ScopeOf(op.key));
        if (w == watermark.end()) continue;
        const int64_t v = std::max<int64_t>(VersionOf(op.result), 0);
        auto kv = known.find(op.key);
        if (kv == known.end()) continue;
        auto newer = kv->second.upper_bound(v);
        if (newer == kv->second.end() || newer->first > w->second.first) continue;
        if (++stale_reported > 20) continue;
        add_problem(absl::StrCat(
            "a load returned a version older than one its process had already observed (a stale "
            "read):\n    ",
            op_text(i), "\n    after p", process, " had seen ", w->first, " as of version ",
            w->second.first, ":\n    ", op_text(w->second.second), "\n    and version ",
            newer->first, " of ", op.key, " exists:\n    ", op_text(newer->second)));
      }
    }
  }
  return result;
}

int CheckHistoryCommand(const std::string& model, const std::string& path, std::ostream& out) {
  absl::StatusOr<std::vector<Operation>> ops = ReadJsonLines(path);
  if (!ops.ok()) {
    out << ops.status().message() << "\n";
    return 2;
  }
  if (model == "objstore") {
    const TransactionsResult r = CheckTransactions(*ops);
    out << r.Report() << "\n";
    return r.ok() ? 0 : 1;
  }
  absl::StatusOr<std::unique_ptr<Model>> m = BuiltinModel(model);
  if (!m.ok()) {
    out << m.status().message() << " or objstore\n";
    return 2;
  }
  const LinearizabilityResult r = CheckLinearizable(**m, std::move(*ops));
  out << r.Report() << "\n";
  return r.ok() ? 0 : 1;
}

std::string TransactionsResult::Report(size_t max_problems) const {
  std::string s = absl::StrCat("transactions: ", VerdictName(verdict), "; ", loads, " loads, ",
                               commits, " commits (", committed, " committed)");
  for (size_t i = 0; i < problems.size() && i < max_problems; ++i) {
    absl::StrAppend(&s, "\n  ", problems[i]);
  }
  if (problems.size() > max_problems) {
    absl::StrAppend(&s, "\n  ... and ", problems.size() - max_problems, " more");
  }
  return s;
}

}  // namespace netlayer::history
