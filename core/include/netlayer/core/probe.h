// Probes and BUGGIFY: what a simulated run reached, and rare paths made common (docs/SIMULATOR.md
// "Probes" and "BUGGIFY").
//
//   NETLAYER_SOMETIMES(condition, "name")  somewhere in the runs, `condition` should be true here
//   NETLAYER_REACHABLE("name")             somewhere in the runs, this line should run
//   NETLAYER_UNREACHABLE("name")           no run may reach this line: in a simulated run,
//                                          reaching it fails the run (the world stops, naming it)
//   NETLAYER_BUGGIFY("name")               in a simulated run, sometimes true (below); else false
//
// A name is a string literal of [A-Za-z0-9._-], unique per probe, dotted by layer: "core.close.linger-expired",
// "rpc.server.idle-timeout". The same name may be used at several places (they count as one
// probe); one name used with two kinds is a programming error (asserted before main()).
//
// Registration: every probe registers itself during static initialisation, before main(), so a
// probe that no run ever reached is known (a sweep names it). Each macro odr-uses a static data
// member of a class template keyed by the name (a C++20 class-type template argument), so the
// member is instantiated wherever the macro is compiled; its dynamic initialiser adds the probe
// to the registry once, however many places use the name. A probe inside a template that is
// never instantiated, or in an object file the linker leaves out, is not registered (it cannot
// run either).
//
// Counting: while a simulated world runs (sim::World installs its ProbeSink for the current
// thread; one world per thread, worlds on other threads count their own), each probe counts its
// evaluations and the times it held. Outside the simulator a probe costs one branch on a null
// thread-local pointer: the condition of NETLAYER_SOMETIMES is not even evaluated, so it must
// have no side effects. Probes draw no randomness and record nothing in the trace: they never
// change a run.
//
// BUGGIFY (FoundationDB's rule): in a run whose sink has BUGGIFY on, a site is enabled with
// probability 1/4, decided the first time the run evaluates it; an enabled site is true with
// probability 1/4 at each evaluation. The draws come from the sink's own generator (seeded from
// the run's seed xor a salt), never from the world's: a run stays deterministic, and turning
// BUGGIFY off changes only what the sites do. Always false outside the simulator. A site must
// only choose among behaviours the code promises anyway (a shorter read, a later timer within
// its documented tolerance): it makes rare legal paths common, it never breaks a promise.
//
// Thread rules: the registry may be read from any thread (a mutex guards it). A ProbeSink is
// used by the thread that installed it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "netlayer/core/generator.h"

namespace netlayer {

enum class ProbeKind : uint8_t { kSometimes, kReachable, kUnreachable, kBuggify };
// "sometimes", "reachable", "unreachable", "buggify".
std::string_view ProbeKindName(ProbeKind kind);

// One registered probe.
struct ProbeInfo {
  std::string_view name;  // static storage: the template argument object
  ProbeKind kind;
};

// Every probe linked into the program, registered before main().
class ProbeRegistry {
 public:
  // Adds a probe (or finds the one of that name); returns its id (an index, stable for the
  // process, not across builds). Asserts if `name` is already registered with another kind, is
  // empty, or holds a character outside [A-Za-z0-9._-].
  static uint32_t Register(std::string_view name, ProbeKind kind);
  // Every probe, sorted by name (deterministic, whatever the link order).
  static std::vector<ProbeInfo> All();
  static ProbeInfo Get(uint32_t id);
  static size_t size();
};

// What a run saw of one probe.
struct ProbeHit {
  std::string name;
  ProbeKind kind = ProbeKind::kReachable;
  uint64_t evaluated = 0;  // times the run reached the probe (a BUGGIFY site: evaluated)
  uint64_t held = 0;       // times its condition was true (reachable: = evaluated; BUGGIFY: fired)
  friend bool operator==(const ProbeHit&, const ProbeHit&) = default;
};

// The probe counts of one run. sim::World owns one and installs it while it runs.
class ProbeSink {
 public:
  // `seed` seeds the BUGGIFY generator (xor kBuggifySalt). BUGGIFY starts off.
  explicit ProbeSink(uint64_t seed);
  ProbeSink(const ProbeSink&) = delete;
  ProbeSink& operator=(const ProbeSink&) = delete;

  static constexpr uint64_t kBuggifySalt = 0xb0661f7ba1c0ffeeULL;

  void Hit(uint32_t id, bool held);
  // An UNREACHABLE probe was reached: counted, and the handler runs (the world stops).
  void Unreachable(uint32_t id);
  bool Buggify(uint32_t id);

  void set_buggify(bool on) { buggify_ = on; }
  bool buggify() const { return buggify_; }
  // Runs when an UNREACHABLE probe is reached, with its name.
  void set_unreachable_handler(std::function<void(std::string_view)> handler) {
    on_unreachable_ = std::move(handler);
  }
  // The probes this run reached (evaluated at least once), sorted by name.
  std::vector<ProbeHit> Hits() const;
  // BUGGIFY sites this run enabled, sorted by name.
  std::vector<std::string> EnabledBuggifySites() const;

 private:
  struct Count {
    uint64_t evaluated = 0;
    uint64_t held = 0;
    int8_t buggify = -1;  // -1 undecided, 0 disabled, 1 enabled for this run
  };
  Count& At(uint32_t id);

  std::vector<Count> counts_;  // by probe id
  Xoshiro256 generator_;
  bool buggify_ = false;
  std::function<void(std::string_view)> on_unreachable_;
};

namespace probe_internal {

// The sink of the run on this thread, or null (not simulated).
extern constinit thread_local ProbeSink* current_sink;

template <size_t N>
struct FixedString {
  char data[N]{};
  // NOLINTNEXTLINE(google-explicit-constructor): a string literal as a template argument
  constexpr FixedString(const char (&s)[N]) { std::copy_n(s, N, data); }
  constexpr std::string_view view() const { return std::string_view(data, N - 1); }
};

template <FixedString Name, ProbeKind Kind>
struct Registrar {
  static_assert(Name.view().size() > 0, "a probe needs a name");
  // Initialised dynamically before main(): the probe is registered even if it never runs.
  static inline const uint32_t instance = ProbeRegistry::Register(Name.view(), Kind);
};

}  // namespace probe_internal

// Installs `sink` as this thread's probe sink for the scope (restores the previous one after).
class ScopedProbeSink {
 public:
  explicit ScopedProbeSink(ProbeSink* sink) : previous_(probe_internal::current_sink) {
    probe_internal::current_sink = sink;
  }
  ~ScopedProbeSink() { probe_internal::current_sink = previous_; }
  ScopedProbeSink(const ScopedProbeSink&) = delete;
  ScopedProbeSink& operator=(const ScopedProbeSink&) = delete;

 private:
  ProbeSink* previous_;
};

// The current thread's sink (null outside a simulated run).
inline ProbeSink* CurrentProbeSink() { return probe_internal::current_sink; }

}  // namespace netlayer

#define NETLAYER_SOMETIMES(condition, name)                                                     \
  do {                                                                                          \
    if (::netlayer::ProbeSink* netlayer_probe_sink_ = ::netlayer::probe_internal::current_sink; \
        netlayer_probe_sink_ != nullptr) [[unlikely]] {                                         \
      netlayer_probe_sink_->Hit(                                                                \
          ::netlayer::probe_internal::Registrar<name,                                           \
                                                ::netlayer::ProbeKind::kSometimes>::instance,   \
          static_cast<bool>(condition));                                                        \
    }                                                                                           \
  } while (false)

#define NETLAYER_REACHABLE(name)                                                                \
  do {                                                                                          \
    if (::netlayer::ProbeSink* netlayer_probe_sink_ = ::netlayer::probe_internal::current_sink; \
        netlayer_probe_sink_ != nullptr) [[unlikely]] {                                         \
      netlayer_probe_sink_->Hit(                                                                \
          ::netlayer::probe_internal::Registrar<name,                                           \
                                                ::netlayer::ProbeKind::kReachable>::instance,   \
          true);                                                                                \
    }                                                                                           \
  } while (false)

#define NETLAYER_UNREACHABLE(name)                                                               \
  do {                                                                                           \
    if (::netlayer::ProbeSink* netlayer_probe_sink_ = ::netlayer::probe_internal::current_sink;  \
        netlayer_probe_sink_ != nullptr) [[unlikely]] {                                          \
      netlayer_probe_sink_->Unreachable(                                                         \
          ::netlayer::probe_internal::Registrar<name,                                            \
                                                ::netlayer::ProbeKind::kUnreachable>::instance); \
    }                                                                                            \
  } while (false)

// An expression: true when the site fires in this simulated run (see above).
#define NETLAYER_BUGGIFY(name)                            \
  (::netlayer::probe_internal::current_sink != nullptr && \
   ::netlayer::probe_internal::current_sink->Buggify(     \
       ::netlayer::probe_internal::Registrar<name, ::netlayer::ProbeKind::kBuggify>::instance))
