// netlayer-bench: netlayer's figures next to their baselines, measured in one run (issue 7).
//
//   netlayer-bench            the full run (a few minutes)
//   netlayer-bench --quick    under a minute; what CI runs (it reports, it asserts no speed)
//   netlayer-bench --json results.json --filter pingpong
//   netlayer-bench compare OLD.json NEW.json
//
// Exit status: 0 if every figure was measured, 1 if any configuration failed (a real error:
// refused connection, wrong echo, timeout), 2 for bad arguments, 3 if the watchdog fired.
// Speed never changes the exit status. `compare`: 0 once compared (whatever changed), 1 if a
// file cannot be read or is not a netlayer-bench JSON document, 2 for bad arguments.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "baselines.h"
#include "compare.h"
#include "harness.h"
#ifdef NETLAYER_BENCH_HAVE_CORE
#include "netlayer/core/log.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_POSIX
#include "netlayer/posix/posix.h"
#include "netlayer_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_RPC
#include "rpc_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_GRPC
#include "grpc_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_SIM
#include "sim_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_SCALE
#include "netlayer/asio/asio.h"
#include "scale_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_TLS
#include "tls_figures.h"
#endif
#ifdef NETLAYER_BENCH_HAVE_OBJSTORE
#include "objstore_figures.h"
#endif

namespace netlayer::bench {
namespace {

std::string SizeName(size_t size) {
  if (size >= (1u << 20) && size % (1u << 20) == 0) return std::to_string(size >> 20) + "MiB";
  if (size >= 1024 && size % 1024 == 0) return std::to_string(size >> 10) + "KiB";
  return std::to_string(size) + "B";
}

// "10", "0.5": a rate for a title.
[[maybe_unused]] std::string FormatRate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", rate);
  return buf;
}

std::string SizeTitle(size_t size) {
  std::string n = SizeName(size);
  return n.substr(0, n.find_first_not_of("0123456789")) + " " +
         n.substr(n.find_first_not_of("0123456789"));
}

#ifdef NETLAYER_BENCH_HAVE_POSIX
// --posix-read-buffer: 0 keeps the library's default (what users get).
size_t posix_read_buffer_bytes = 0;

posix::PosixOptions BenchPosixOptions() {
  posix::PosixOptions options;
  if (posix_read_buffer_bytes > 0) options.read_buffer_bytes = posix_read_buffer_bytes;
  return options;
}

absl::StatusOr<Factories> PosixFactories() {
  posix::PosixOptions options = BenchPosixOptions();
  Factories f;
  f.client = std::make_shared<posix::PosixClientFactory>(options);
  f.server = std::make_shared<posix::PosixServerFactory>(options);
  return f;
}
#endif

#ifdef NETLAYER_BENCH_HAVE_SCALE
// The scale group's settings (--scale-rate, --scale-io-threads).
double scale_calls_per_second = 10;
int scale_io_threads = 2;
std::vector<int> scale_connections = {100, 1000, 10000};
// The attack group's well-behaved load (--attack-connections, --attack-rate).
int attack_connections = 16;
double attack_calls_per_second = 50;

// The attack group's mix: the full one (hundreds of hostile connections, 48 MiB partial
// frames), or a smaller one for --quick (the same kinds, a few seconds in all).
AttackMix AttackMixFor(bool quick) {
  AttackMix mix;
  if (quick) {
    mix.silent = 100;
    mix.partial_frames = 8;
    mix.partial_bytes = size_t{8} << 20;
    mix.slow_readers = 16;
  }
  return mix;
}

// Each backend's p99 under attack over its calm p99, and asio's growth over posix's (issue 29:
// no worse), as notes under the table.
void AttackSummary(Report& report) {
  auto p99 = [&report](const std::string& id) -> double {
    for (const FigureResult& f : report.figures) {
      if (f.spec.id == id && f.latency && f.error.empty()) return f.latency->p99_us;
    }
    return 0;
  };
  double growth[2] = {0, 0};
  int i = 0;
  for (const std::string backend : {"posix", "asio"}) {
    const double calm = p99("attack/" + backend + "/calm");
    const double attack = p99("attack/" + backend + "/attack");
    if (calm > 0 && attack > 0) {
      growth[i] = attack / calm;
      char buf[200];
      std::snprintf(buf, sizeof buf, "attack: %s p99 %.0f us calm -> %.0f us under attack: %.2fx",
                    backend.c_str(), calm, attack, growth[i]);
      report.notes.push_back(buf);
    }
    ++i;
  }
  if (growth[0] > 0 && growth[1] > 0) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "attack: asio's p99 growth over posix's %.2f (target <= 1.00: %s)",
                  growth[1] / growth[0], growth[1] <= growth[0] ? "met" : "MISSED");
    report.notes.push_back(buf);
  }
}
#endif

std::vector<Group> BuildGroups([[maybe_unused]] Report& report,
                               [[maybe_unused]] const Options& options) {
  std::vector<Group> groups;
  for (size_t size : {size_t{16}, size_t{1024}, size_t{64 * 1024}}) {
    Group g;
    g.title = "ping-pong, " + SizeTitle(size) + " messages (round trips/s)";
    const std::string raw = "pingpong/raw/" + SizeName(size);
    const std::string asio = "pingpong/asio/" + SizeName(size);
    g.figures.push_back(
        {raw, "raw blocking sockets", "rt/s", {}, [size] { return MakeRawPingPong(size); }});
    g.figures.push_back({asio, "asio, 1 io_context thread each side", "rt/s", {{raw, {}}}, [size] {
                           return MakeAsioPingPong(size);
                         }});
#ifdef NETLAYER_BENCH_HAVE_POSIX
    g.figures.push_back({"pingpong/netlayer/" + SizeName(size),
                         "netlayer posix + smac",
                         "rt/s",
                         {{raw, 0.90}, {asio, 1.0}},
                         [size] { return MakeSmacPingPong(PosixFactories, size); }});
#endif
#ifdef NETLAYER_BENCH_HAVE_TLS
    // TLS 1.3 with mutual authentication over the same posix backend: its ratio to plain is
    // the adapter's cost (issue 15).
    g.figures.push_back({"pingpong/netlayer-tls/" + SizeName(size),
                         "netlayer posix + TLS + smac",
                         "rt/s",
                         {{"pingpong/netlayer/" + SizeName(size), {}, "plain"}},
                         [size] { return MakeSmacPingPong(TlsOver(PosixFactories), size); }});
#endif
    groups.push_back(std::move(g));
  }
  for (size_t size : {size_t{64 * 1024}, size_t{1 << 20}}) {
    Group g;
    g.title = "bulk, one direction, " + SizeTitle(size) + " messages (MB/s of payload)";
    const std::string raw = "bulk/raw-writev/" + SizeName(size);
    g.figures.push_back(
        {raw, "raw writev, blocking", "MB/s", {}, [size] { return MakeRawBulk(size); }});
#ifdef NETLAYER_BENCH_HAVE_POSIX
    // Targets (issue 17) at 1 MiB: at least 0.90x raw writev, and steady: the slowest
    // repetition within 0.7x of the median.
    std::vector<Comparison> versus = {{raw, std::nullopt}};
    if (size == (size_t{1} << 20)) {
      versus = {{raw, 0.90}, {"", 0.70, "", false, false, std::nullopt, /*steadiness=*/true}};
    }
    g.figures.push_back({"bulk/netlayer/" + SizeName(size), "netlayer posix + smac", "MB/s", versus,
                         [size] { return MakeSmacBulk(PosixFactories, size); }});
#endif
#ifdef NETLAYER_BENCH_HAVE_TLS
    g.figures.push_back({"bulk/netlayer-tls/" + SizeName(size),
                         "netlayer posix + TLS + smac",
                         "MB/s",
                         {{"bulk/netlayer/" + SizeName(size), {}, "plain"}},
                         [size] { return MakeSmacBulk(TlsOver(PosixFactories), size); }});
#endif
    groups.push_back(std::move(g));
  }
#if defined(NETLAYER_BENCH_HAVE_RPC) || defined(NETLAYER_BENCH_HAVE_GRPC)
  // rpc: netlayer's rpc over posix next to gRPC doing the same (issue 17), 1 and 8 calling
  // threads on one connection / channel, every call timed.
  for (size_t size : {size_t{16}, size_t{64 * 1024}}) {
    Group g;
    g.title = "rpc: blocking echo calls, " + SizeTitle(size) +
              " payload, one connection, 127.0.0.1 (calls/s)";
    for (int threads : {1, 8}) {
      const std::string suffix =
          "/" + SizeName(size) +
          (threads == 1 ? "/1-thread" : "/" + std::to_string(threads) + "-threads");
      const std::string who = threads == 1 ? "1 thread" : std::to_string(threads) + " threads";
      const std::string grpc = "rpc/grpc" + suffix;
      [[maybe_unused]] std::vector<Comparison> versus;
#ifdef NETLAYER_BENCH_HAVE_GRPC
      g.figures.push_back({grpc, "gRPC sync C++, " + who, "calls/s", {}, [threads, size] {
                             return MakeGrpcCalls(threads, size);
                           }});
      // Targets (issue 17): at 16 B at least 1.5x gRPC's calls/s with a lower p99; at 64 KiB
      // at least even.
      versus.push_back(
          {grpc, size == 16 ? 1.5 : 1.0, "grpc", /*show_p99=*/true, /*lower_p99=*/size == 16});
#endif
#ifdef NETLAYER_BENCH_HAVE_RPC
      if (threads > 1) {
        // Target (issue 7): 8 threads on one connection at least twice one thread's calls/s.
        std::optional<double> target;
        if (size == 16) target = 2.0;
        versus.push_back({"rpc/netlayer/" + SizeName(size) + "/1-thread", target, "1 thread"});
      }
      g.figures.push_back(
          {"rpc/netlayer" + suffix, "netlayer rpc + posix, " + who, "calls/s", versus,
           [threads, size] { return MakeRpcCalls(threads, size, BenchPosixOptions()); }});
#endif
#if defined(NETLAYER_BENCH_HAVE_RPC) && defined(NETLAYER_BENCH_HAVE_SCALE)
      // The same rpc over the asio backend (one asio::Runtime, 2 io threads, for both ends).
      std::vector<Comparison> asio_versus;
#ifdef NETLAYER_BENCH_HAVE_GRPC
      asio_versus.push_back(
          {grpc, size == 16 ? 1.5 : 1.0, "grpc", /*show_p99=*/true, /*lower_p99=*/size == 16});
#endif
      asio_versus.push_back({"rpc/netlayer" + suffix, {}, "posix", /*show_p99=*/true});
      g.figures.push_back({"rpc/netlayer-asio" + suffix, "netlayer rpc + asio, " + who, "calls/s",
                           asio_versus, [threads, size] {
                             return MakeRpcCallsOn(threads, size, [] {
                               return std::unique_ptr<Host>(std::make_unique<asio::Runtime>(2));
                             });
                           }});
#endif
    }
    groups.push_back(std::move(g));
  }
#endif
#ifdef NETLAYER_BENCH_HAVE_OBJSTORE
  // The object store (issue 13, docs/OBJSTORE.md) on posix::Runtime: loads from the client's
  // cache and from the server, commits from 1 and 8 clients (each its own connection and
  // object), every operation timed.
  {
    Group g;
    g.title = "objstore: loads and commits, 64 B objects, posix, 127.0.0.1 (operations/s)";
    g.figures.push_back(
        {"objstore/load/server", "load from the server, 1 client", "loads/s", {}, [] {
           return MakeObjstoreRunner(ObjstoreFigure::kLoadFromServer);
         }});
    g.figures.push_back({"objstore/load/cache",
                         "load from the client cache",
                         "loads/s",
                         {{"objstore/load/server", {}, "server", /*show_p99=*/true}},
                         [] { return MakeObjstoreRunner(ObjstoreFigure::kLoadFromCache); }});
    g.figures.push_back({"objstore/commit/1-client", "commit, 1 client", "commits/s", {}, [] {
                           return MakeObjstoreRunner(ObjstoreFigure::kCommit, 1);
                         }});
    g.figures.push_back({"objstore/commit/8-clients",
                         "commit, 8 clients at once",
                         "commits/s",
                         {{"objstore/commit/1-client", {}, "1 client", /*show_p99=*/true}},
                         [] { return MakeObjstoreRunner(ObjstoreFigure::kCommit, 8); }});
    groups.push_back(std::move(g));
  }
  // Durable commits (issue 23): the server's log in a temporary directory ($TMPDIR, default
  // /tmp), acknowledged after fdatasync; next to one write + fdatasync per commit of the same
  // record (the limit without batching) and SQLite (WAL, synchronous=FULL). Targets: 8 clients
  // >= 4x 1 client (group commit), >= 1.0x SQLite's 8 threads, with a lower p99.
  {
    Group g;
    g.title = "objstore: durable commits (--data), 64 B objects, posix, 127.0.0.1 (commits/s)";
    g.figures.push_back(
        {"durable/fdatasync", "write + fdatasync per record, 1 thread", "commits/s", {}, [] {
           return MakeFdatasyncRunner();
         }});
#ifdef NETLAYER_BENCH_HAVE_SQLITE
    g.figures.push_back(
        {"durable/sqlite/1-thread", "SQLite WAL synchronous=FULL, 1 thread", "commits/s", {}, [] {
           return MakeSqliteCommitRunner(1);
         }});
    g.figures.push_back(
        {"durable/sqlite/8-threads", "SQLite WAL synchronous=FULL, 8 threads", "commits/s", {}, [] {
           return MakeSqliteCommitRunner(8);
         }});
#endif
    g.figures.push_back({"durable/objstore/1-client",
                         "objstore --data, 1 client",
                         "commits/s",
                         {{"durable/fdatasync", {}, "fdatasync", /*show_p99=*/true}},
                         [] { return MakeObjstoreRunner(ObjstoreFigure::kDurableCommit, 1); }});
    std::vector<Comparison> eight = {
        {"durable/objstore/1-client", 4.0, "1 client", /*show_p99=*/true},
        {"durable/fdatasync", {}, "fdatasync", /*show_p99=*/true}};
#ifdef NETLAYER_BENCH_HAVE_SQLITE
    eight.push_back({"durable/sqlite/8-threads", 1.0, "SQLite 8 threads", /*show_p99=*/true,
                     /*lower_p99=*/true});
#endif
    g.figures.push_back({"durable/objstore/8-clients", "objstore --data, 8 clients at once",
                         "commits/s", std::move(eight),
                         [] { return MakeObjstoreRunner(ObjstoreFigure::kDurableCommit, 8); }});
    groups.push_back(std::move(g));
  }
#ifndef NETLAYER_BENCH_HAVE_SQLITE
  report.notes.push_back("SQLite figures not built (libsqlite3-dev missing)");
#endif
#else
  report.notes.push_back("objstore figures not built (netlayer::objstore missing from this tree)");
#endif
#ifdef NETLAYER_BENCH_HAVE_SCALE
  // Scale (issue 14): one rpc echo server in a child process, posix (two threads and two
  // descriptors per connection) or asio (an io_context on a few threads), with many connections
  // each calling at a steady rate. --quick: 100 connections only. The clients of both figures
  // of a group are alive together in this process: with too few descriptors for both, each
  // figure gets a group of its own.
  const size_t descriptors = RaiseDescriptorLimit();
  for (int connections : scale_connections) {
    if (options.quick && connections > 100) break;
    const std::string n = std::to_string(connections);
    const std::string title = "scale: rpc echo server with " + n + " connections, each " +
                              FormatRate(scale_calls_per_second) +
                              " calls/s (clients: asio, this process; server: a child process)";
    Group g;
    g.title = title;
    // Target (issue 14): each server serves the load offered to it, N x the rate, within 1 %
    // (a server that falls behind gets fewer calls in: a late call's successor is not sent
    // early to catch up), with its p99 beside. asio's calls/s over posix's is shown, without a
    // target: both serve what is offered, so that ratio is ~1.00 and which side of it is noise.
    const double offered = connections * scale_calls_per_second;
    const Comparison serves_offered{"offered", 0.99, "offered", false, false, offered};
    const std::string posix_id = "scale/posix/" + n;
    // The posix server holds two descriptors per connection (the socket and its wake-up
    // eventfd): where the limit cannot hold them it is not run, and the report says so.
    const bool posix_fits = 2 * static_cast<size_t>(connections) + 64 <= descriptors;
    if (posix_fits) {
      g.figures.push_back({posix_id, "posix server", "calls/s", {serves_offered}, [connections] {
                             return MakeScaleRunner("posix", connections, scale_calls_per_second,
                                                    1);
                           }});
    } else {
      report.notes.push_back("scale/posix/" + n + " not run: a posix server with " + n +
                             " connections needs " + std::to_string(2 * connections + 64) +
                             " descriptors (2 per connection), RLIMIT_NOFILE here is " +
                             std::to_string(descriptors) + " and its hard limit cannot be raised");
    }
    if (!g.figures.empty() && 2 * static_cast<size_t>(connections) + 1000 > descriptors) {
      groups.push_back(std::move(g));
      g = Group{};
      g.title = title;
    }
    std::vector<Comparison> asio_versus = {serves_offered};
    if (posix_fits) asio_versus.push_back({posix_id, {}, "posix", /*show_p99=*/true});
    g.figures.push_back(
        {"scale/asio/" + n, "asio server, " + std::to_string(scale_io_threads) + " io threads",
         "calls/s", asio_versus, [connections] {
           return MakeScaleRunner("asio", connections, scale_calls_per_second, scale_io_threads);
         }});
    groups.push_back(std::move(g));
  }
  report.notes.push_back(
      "scale: the server's threads and RSS are read from /proc/PID/status of its own process; "
      "cpu us/u counts the clients' process only");
  // The mixed attack (issue 29): the same echo server (a child process, default protections)
  // with well-behaved connections calling at a steady rate, calm and beside hundreds of hostile
  // connections (attack.h), for posix and asio in turns; the figure that matters is each
  // backend's p99 under attack over its calm p99 (AttackSummary, under the table).
  {
    Group g;
    g.title = "attack: rpc echo, " + std::to_string(attack_connections) +
              " well-behaved connections x " + FormatRate(attack_calls_per_second) +
              " calls/s, calm and beside a mixed attack (server: a child process)";
    AttackMix mix = AttackMixFor(options.quick);
    for (const std::string backend : {"posix", "asio"}) {
      const std::string calm = "attack/" + backend + "/calm";
      const std::string label =
          backend == "asio" ? "asio server, " + std::to_string(scale_io_threads) + " io threads"
                            : "posix server";
      g.figures.push_back({calm, label + ", calm", "calls/s", {}, [backend] {
                             return MakeScaleRunner(backend, attack_connections,
                                                    attack_calls_per_second, scale_io_threads);
                           }});
      g.figures.push_back({"attack/" + backend + "/attack",
                           label + ", under attack",
                           "calls/s",
                           {{calm, {}, "calm", /*show_p99=*/true}},
                           [backend, mix] {
                             return MakeScaleRunner(backend, attack_connections,
                                                    attack_calls_per_second, scale_io_threads, mix);
                           }});
    }
    groups.push_back(std::move(g));
    const AttackMix& m = mix;
    report.notes.push_back(
        "attack mix (for as long as each attack figure measures): " + std::to_string(m.silent) +
        " silent connections, " + std::to_string(m.partial_frames) + " partial frames of " +
        std::to_string(m.partial_bytes >> 20) + " MiB (of " +
        std::to_string(m.partial_announced >> 20) + " MiB announced), " +
        std::to_string(m.slow_readers) + " slow readers (65 KiB calls, never reading), " +
        std::to_string(m.garbage_per_second) + " handshake-garbage connections/s, " +
        std::to_string(m.bursts_per_second) + " bursts/s of " + std::to_string(m.burst_size) +
        " connect+reset; partial frames and slow readers paced together at " +
        FormatRate(m.bulk_bytes_per_second / 1e6) + " MB/s");
  }
#endif
#ifdef NETLAYER_BENCH_HAVE_SCENARIOS
  {
    Group g;
    g.title = "simulator: rpc-faults scenario (issue 6), seeds 1, 2, ... back to back";
    g.figures.push_back(
        {"sim/rpc-faults/events-per-second", "events per wall second", "events/s", {}, [] {
           return MakeScenarioRunner("rpc-faults", SimFigure::kEventsPerSecond);
         }});
    g.figures.push_back(
        {"sim/rpc-faults/virtual-over-wall", "simulated time / wall time", "x", {}, [] {
           return MakeScenarioRunner("rpc-faults", SimFigure::kVirtualOverWall);
         }});
    g.figures.push_back(
        {"sim/rpc-faults/seeds-per-second", "sweep: seeds per second", "seeds/s", {}, [] {
           return MakeScenarioRunner("rpc-faults", SimFigure::kSeedsPerSecond);
         }});
    groups.push_back(std::move(g));
  }
#else
  report.notes.push_back(
      "rpc-faults figures not built (netlayer-sim's built-in scenarios missing from this tree)");
#endif
#ifdef NETLAYER_BENCH_HAVE_SIM
  {
    Group g;
    g.title = "simulator: busy smac echo, 1 server, 4 clients x 4 messages in flight";
    g.figures.push_back(
        {"sim/echo/events-per-second", "events per wall second", "events/s", {}, [] {
           return MakeSimRunner(SimFigure::kEventsPerSecond);
         }});
    g.figures.push_back({"sim/echo/virtual-over-wall", "simulated time / wall time", "x", {}, [] {
                           return MakeSimRunner(SimFigure::kVirtualOverWall);
                         }});
    g.figures.push_back(
        {"sim/echo/seeds-per-second", "sweep: seeds/s (fault mix, 1 sim s)", "seeds/s", {}, [] {
           return MakeSimRunner(SimFigure::kSeedsPerSecond);
         }});
    groups.push_back(std::move(g));
  }
#else
  report.notes.push_back("simulator figures not built (netlayer::sim missing from this tree)");
#endif
#ifndef NETLAYER_BENCH_HAVE_POSIX
  report.notes.push_back(
      "netlayer posix + smac figures not built (netlayer::posix or netlayer::smac missing)");
#endif
#ifndef NETLAYER_BENCH_HAVE_RPC
  report.notes.push_back("rpc figures not built (netlayer::rpc missing from this tree)");
#endif
#ifndef NETLAYER_BENCH_HAVE_GRPC
  report.notes.push_back(
      "gRPC figures not built (install libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev "
      "protobuf-compiler and reconfigure; see docs/PERFORMANCE.md)");
#endif
  return groups;
}

}  // namespace
}  // namespace netlayer::bench

int main(int argc, char** argv) {
  using namespace netlayer::bench;
  CLI::App app{
      "netlayer-bench: netlayer's posix backend, smac and rpc against raw sockets and Asio on "
      "127.0.0.1, and the simulator's speed. Each figure: several repetitions (min / median / "
      "max) and the ratio of medians to its baseline, measured in turns in the same run. Exit "
      "status is non-zero only for real errors, never for speed."};
  Options options;
  std::string json_path;
  bool list = false;
  std::optional<int> reps;
  std::optional<double> seconds;
  app.add_flag("--quick", options.quick,
               "short run (3 repetitions of 0.25 s), under a minute; what CI runs");
  app.add_option("--json", json_path, "also write the results as JSON to FILE")->type_name("FILE");
  app.footer(
      "Exit status: 0 every figure measured; 1 a configuration failed (refused connection, "
      "wrong echo, timeout) or the JSON could not be written; 2 bad arguments; 3 the watchdog "
      "ended a hung run. Speed never changes the exit status.");
  app.add_option("--reps", reps, "repetitions per figure (default 7; quick 3)")
      ->check(CLI::Range(1, 100));
  app.add_option("--seconds", seconds, "seconds per repetition (default 0.7; quick 0.25)")
      ->check(CLI::Range(0.01, 60.0));
  app.add_option("--filter", options.filter,
                 "run only the figures whose id contains this text (see --list)");
  app.add_flag("--list", list, "list the figure ids and exit");
  std::string old_json, new_json;
  CLI::App* compare = app.add_subcommand(
      "compare",
      "compare two --json results: each figure's ratio NEW/OLD, flagged when beyond the runs' "
      "own spread (their min..max over repetitions do not overlap). Exit status 0 once "
      "compared, whatever changed; 1 if a file cannot be read");
  compare->add_option("OLD", old_json, "the earlier run's JSON (e.g. tools/bench/baselines/...)")
      ->required();
  compare->add_option("NEW", new_json, "the later run's JSON")->required();
#ifdef NETLAYER_BENCH_HAVE_POSIX
  app.add_option("--posix-read-buffer", posix_read_buffer_bytes,
                 "posix::PosixOptions::read_buffer_bytes for the netlayer figures (tuning "
                 "experiments; default: the library's)")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
#endif
#ifdef NETLAYER_BENCH_HAVE_SCALE
  std::string scale_server;
  app.add_option("--scale-server", scale_server,
                 "internal: serve rpc echo on BACKEND (posix|asio) for the scale group")
      ->group("");  // hidden
  bool scale_quiet = false;
  app.add_flag("--scale-quiet", scale_quiet, "internal: the scale server logs errors only")
      ->group("");  // hidden
  int scale_max_sessions = 1024;
  app.add_option("--scale-max-sessions", scale_max_sessions,
                 "internal: the scale server's rpc::ServerOptions::max_sessions")
      ->check(CLI::Range(1, 1000000))
      ->group("");  // hidden
  app.add_option("--scale-rate", scale_calls_per_second,
                 "scale group: calls per second each connection makes (default 10)")
      ->check(CLI::Range(0.01, 100000.0));
  app.add_option("--scale-connections", scale_connections,
                 "scale group: the connection counts, one group each (default 100 1000 10000)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--attack-connections", attack_connections,
                 "attack group: well-behaved connections (default 16)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--attack-rate", attack_calls_per_second,
                 "attack group: calls per second each well-behaved connection makes (default 50)")
      ->check(CLI::Range(0.01, 100000.0));
  app.add_option("--scale-io-threads", scale_io_threads,
                 "scale group: the asio server's io threads (default 2)")
      ->check(CLI::Range(1, 64));
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? 0 : 2;
  }
  if (*compare) return RunCompare(old_json, new_json, stdout);
#ifdef NETLAYER_BENCH_HAVE_CORE
  // Tools read NETLAYER_LOG_LEVEL (core/log.h); the library's default is warnings and up.
  if (const char* level = std::getenv("NETLAYER_LOG_LEVEL"); level != nullptr) {
    netlayer::SetLogLevel(spdlog::level::from_str(level));
  }
#endif
#ifdef NETLAYER_BENCH_HAVE_SCALE
  if (!scale_server.empty()) {
#ifdef NETLAYER_BENCH_HAVE_CORE
    if (scale_quiet) netlayer::SetLogLevel(spdlog::level::err);
#endif
    return RunScaleServer(scale_server, scale_io_threads, scale_max_sessions);
  }
#endif

  if (options.quick) {
    options.repetitions = 3;
    options.rep_duration = Seconds(0.25);
    options.warmup = Seconds(0.1);
  }
  if (reps) options.repetitions = *reps;
  if (seconds) options.rep_duration = Seconds(*seconds);

  Report report;
  std::vector<Group> groups = BuildGroups(report, options);
  if (list) {
    for (const Group& g : groups) {
      std::printf("%s\n", g.title.c_str());
      for (const FigureSpec& f : g.figures) std::printf("  %s\n", f.id.c_str());
    }
    return 0;
  }
#ifdef NETLAYER_BENCH_HAVE_POSIX
  if (posix_read_buffer_bytes > 0) {
    report.notes.push_back("netlayer figures use --posix-read-buffer " +
                           std::to_string(posix_read_buffer_bytes) +
                           " (not the library's default)");
  }
#endif
#ifndef NDEBUG
  report.notes.push_back("this is a build without NDEBUG (" NETLAYER_BENCH_BUILD_TYPE
                         "): figures are not representative; use a Release build");
#endif
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  report.load_at_start = LoadAverage();
  RunGroups(groups, options, report);
  report.load_at_end = LoadAverage();
  Summarise(report);
#ifdef NETLAYER_BENCH_HAVE_SCALE
  AttackSummary(report);
#endif
  PrintTable(report, options, stdout);
  std::fflush(stdout);
  if (!json_path.empty() && !WriteJson(report, options, command_line, json_path)) return 1;
  return report.errors > 0 ? 1 : 0;
}
