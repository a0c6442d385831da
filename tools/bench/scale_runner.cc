// The scale group (issue 14): one rpc server, posix or asio, with many client connections each
// making echo calls at a steady rate.
//
// The server runs in a child process (this binary again, `--scale-server BACKEND`), so its
// threads and resident memory are its own: they are read from /proc/PID/status after each
// measurement. The clients run in this process on the asio backend (two io threads), one
// rpc::Client per connection; each connection has at most one call in flight and makes its next
// call one period after the previous one was due (never in a burst to catch up). Calls/s is the
// number of calls answered during the measured time over its length; latency is each call's.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "attack.h"
#include "netlayer/asio/asio.h"
#include "netlayer/posix/env.h"
#include "netlayer/posix/posix.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "scale_figures.h"

namespace netlayer::bench {
namespace {

constexpr absl::Duration kSetupTimeout = absl::Seconds(60);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);
constexpr int kClientIoThreads = 2;

// A field of /proc/PID/status ("Threads", "VmRSS"), as a number (kB for memory), or -1.
double ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") != 0) continue;
    std::string value = line.substr(field.size() + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value = value.substr(0, value.find_first_of(" \t"));
    double out = -1;
    return absl::SimpleAtod(value, &out) ? out : -1;
  }
  return -1;
}

// CPU seconds (user + system) the process has used, from /proc/PID/stat; -1 if unknown.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double utime = -1, stime = -1;
  // Fields 3.. of proc(5) follow the name; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 && !absl::SimpleAtod(field, &utime)) return -1;
    if (i == 15 && !absl::SimpleAtod(field, &stime)) return -1;
  }
  if (utime < 0 || stime < 0) return -1;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The server child: started by Start, ended by closing its stdin.
struct ServerProcess {
  pid_t pid = -1;
  int to_child = -1;    // its stdin
  int from_child = -1;  // its stdout: the port, one line

  // `max_sessions`: the server's rpc::ServerOptions::max_sessions (the figure's connections).
  // `quiet`: the server logs errors only (under attack, every hostile connection is a warning).
  absl::StatusOr<uint16_t> Spawn(const std::string& backend, int io_threads, int max_sessions,
                                 bool quiet = false) {
    int in_pipe[2], out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
      return absl::InternalError("pipe failed");
    }
    const std::string threads = std::to_string(io_threads);  // 1 for posix (not used)
    const std::string sessions = std::to_string(max_sessions);
    const char* argv[] = {"netlayer-bench", "--scale-server",
                          backend.c_str(),  "--scale-io-threads",
                          threads.c_str(),  "--scale-max-sessions",
                          sessions.c_str(), quiet ? "--scale-quiet" : nullptr,
                          nullptr};
    pid = ::fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {  // the child: only async-signal-safe calls until exec
      ::dup2(in_pipe[0], 0);
      ::dup2(out_pipe[1], 1);
      ::execv("/proc/self/exe", const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    to_child = in_pipe[1];
    from_child = out_pipe[0];
    std::string line;
    const absl::Time deadline = absl::Now() + kSetupTimeout;
    while (line.find('\n') == std::string::npos) {
      pollfd p{from_child, POLLIN, 0};
      const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (left <= 0 || ::poll(&p, 1, left) <= 0) return absl::DeadlineExceededError("no port");
      char buf[64];
      const ssize_t n = ::read(from_child, buf, sizeof buf);
      if (n <= 0) return absl::UnavailableError("the server process ended before listening");
      line.append(buf, static_cast<size_t>(n));
    }
    int port = 0;
    if (!absl::SimpleAtoi(line.substr(0, line.find('\n')), &port) || port <= 0 || port > 65535) {
      return absl::InternalError("the server process printed no port: " + line);
    }
    return static_cast<uint16_t>(port);
  }

  bool Alive() const { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }

  void End() {
    if (to_child >= 0) ::close(to_child);
    if (from_child >= 0) ::close(from_child);
    to_child = from_child = -1;
    if (pid > 0) {
      int status = 0;
      // It exits at once when its stdin closes; a server stuck for a minute is killed.
      for (int i = 0; i < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      }
    }
    pid = -1;
  }
};

class ScaleRunner : public Runner {
 public:
  ScaleRunner(std::string server_backend, int connections, double calls_per_second, int io_threads,
              std::optional<AttackMix> attack)
      : backend_(std::move(server_backend)),
        connections_(connections),
        period_(absl::Seconds(1.0 / calls_per_second)),
        io_threads_(io_threads),
        attack_(attack) {}

  absl::Status Start() override {
    // Under attack, the server keeps its default max_sessions (1024): the hostile connections
    // count against it like anyone's.
    absl::StatusOr<uint16_t> port =
        server_.Spawn(backend_, io_threads_, attack_ ? 1024 : connections_, attack_.has_value());
    if (!port.ok()) return port.status();
    port_ = *port;
    runtime_ = std::make_unique<asio::Runtime>(kClientIoThreads);
    asio::AsioOptions options;
    options.limits.max_output_bytes = size_t{1} << 20;
    factory_ = std::make_unique<asio::AsioClientFactory>(*runtime_, options);
    ConnectOptions connect;
    connect.max_attempts = 3;
    connect.min_delay = absl::Milliseconds(50);
    connect.max_delay = absl::Milliseconds(50);
    connect.attempt_timeout = absl::Seconds(10);
    const Address address = Address::IPv4("127.0.0.1", *port);
    for (int i = 0; i < connections_; ++i) {
      absl::StatusOr<std::shared_ptr<Connection>> c = factory_->ConnectBlocking({address}, connect);
      if (!c.ok()) {
        return absl::UnavailableError(absl::StrCat(backend_, " server: connection ", i + 1, " of ",
                                                   connections_, ": ", c.status().ToString()));
      }
      clients_.push_back(rpc::Client::Create(runtime_->env(), std::move(*c)));
    }
    const absl::Time deadline = absl::Now() + kSetupTimeout;
    for (size_t i = 0; i < clients_.size(); ++i) {
      if (!clients_[i]->WaitReady(deadline)) {
        // Closed before its handshake (a refusal: the server's log says why), or too slow.
        const std::string what =
            absl::StrCat(backend_, " server: the rpc handshake of connection ", i + 1, " of ",
                         connections_, ": ", clients_[i]->last_error().ToString());
        return absl::Now() < deadline ? absl::UnavailableError(what)
                                      : absl::DeadlineExceededError(what);
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      latency_.Reset();
      first_error_ = absl::OkStatus();
    }
    answered_.store(0);
    running_.store(true);
    active_.store(connections_);
    std::unique_ptr<Attacker> attacker;
    if (attack_) {
      attacker = std::make_unique<Attacker>(port_, *attack_);
      attacker->Start();
    }
    const double server_cpu0 = ProcCpuSeconds(server_.pid);
    const absl::Time start = absl::Now();
    // The first calls are spread evenly over one period.
    for (int i = 0; i < connections_; ++i) {
      const absl::Time first = start + period_ * (static_cast<double>(i) / connections_);
      runtime_->env().RunAt(first, [this, i, first] { Call(i, first); });
    }
    std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
    running_.store(false);
    const uint64_t answered = answered_.load();
    const absl::Time end = absl::Now();
    const double server_cpu = ProcCpuSeconds(server_.pid) - server_cpu0;
    // Let the loops end (each finishes its call in flight).
    const absl::Time deadline = end + kCallTimeout + absl::Seconds(5);
    while (active_.load() > 0 && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    gauges_ = {{"server threads", ProcStatus(server_.pid, "Threads"), ""},
               {"server RSS", ProcStatus(server_.pid, "VmRSS") / 1024.0, "MiB"}};
    if (attacker != nullptr) {
      attacker->Stop();  // closes the hostile connections (resets)
      gauges_.push_back({"hostile connections", static_cast<double>(attacker->opened()), ""});
      gauges_.push_back(
          {"hostile ended by server", static_cast<double>(attacker->ended_by_server()), ""});
    }
    // The server's CPU per answered call (the cpu us/u column counts the clients' process): with
    // the clients, what the machine spends per call, so a figure short of its offered load can
    // be told apart from one whose machine is simply full.
    if (server_cpu0 >= 0 && server_cpu >= 0 && answered > 0) {
      gauges_.push_back(
          {"server cpu", server_cpu / static_cast<double>(answered) * 1e6, "us/call"});
    }
    if (!server_.Alive()) return absl::UnavailableError(backend_ + " server process ended");
    if (active_.load() > 0) return absl::DeadlineExceededError("calls still in flight");
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_error_.ok()) return first_error_;
    return static_cast<double>(answered) / absl::ToDoubleSeconds(end - start);
  }

  const LatencyHistogram* latency() const override { return &latency_; }
  std::vector<Gauge> gauges() const override { return gauges_; }

  absl::Status Stop() override {
    for (const auto& client : clients_) client->Close();
    clients_.clear();
    factory_.reset();
    runtime_.reset();
    server_.End();
    return absl::OkStatus();
  }

 private:
  // One call of connection `i`, due at `due`; on its answer the next is due one period later.
  void Call(int i, absl::Time due) {
    if (!running_.load()) {
      active_.fetch_sub(1);
      return;
    }
    const absl::Time sent = absl::Now();
    clients_[static_cast<size_t>(i)]->CallAsync(
        "echo", "scale", sent + kCallTimeout, [this, i, due, sent](rpc::CallResult result) {
          const absl::Time now = absl::Now();
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (!result.ok() && first_error_.ok()) first_error_ = result.status();
            if (result.ok() && *result != "scale") first_error_ = absl::DataLossError("wrong echo");
            latency_.Record(static_cast<uint64_t>(absl::ToInt64Nanoseconds(now - sent)));
          }
          if (running_.load()) answered_.fetch_add(1);
          const absl::Time next = std::max(due + period_, now);
          runtime_->env().RunAt(next, [this, i, next] { Call(i, next); });
        });
  }

  const std::string backend_;
  const int connections_;
  const absl::Duration period_;
  const int io_threads_;
  const std::optional<AttackMix> attack_;
  uint16_t port_ = 0;
  ServerProcess server_;
  std::unique_ptr<asio::Runtime> runtime_;
  std::unique_ptr<asio::AsioClientFactory> factory_;
  std::vector<std::shared_ptr<rpc::Client>> clients_;
  std::atomic<bool> running_{false};
  std::atomic<int> active_{0};  // call loops not yet ended
  std::atomic<uint64_t> answered_{0};
  std::mutex mu_;
  LatencyHistogram latency_;  // guarded by mu_ during a measurement
  absl::Status first_error_;  // guarded by mu_
  std::vector<Gauge> gauges_;
};

}  // namespace

size_t RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  rlimit wanted{1 << 20, 1 << 20};  // raising the hard limit needs privilege; else soft = hard
  if (limit.rlim_max >= wanted.rlim_max || ::setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<size_t>(limit.rlim_cur);
}

std::unique_ptr<Runner> MakeScaleRunner(const std::string& server_backend, int connections,
                                        double calls_per_second, int server_io_threads,
                                        std::optional<AttackMix> attack) {
  return std::make_unique<ScaleRunner>(server_backend, connections, calls_per_second,
                                       server_io_threads, attack);
}

int RunScaleServer(const std::string& backend, int io_threads, int max_sessions) {
  RaiseDescriptorLimit();
  // Configured for the figure's load: the default max_sessions (1024, a protection) would
  // refuse every connection past the 1024th. Exactly the figure's connections, so a session
  // the server failed to release would still show as a refusal.
  rpc::ServerOptions server_options;
  server_options.max_sessions = static_cast<size_t>(max_sessions);
  const auto serve = [&server_options](Env& env, ServerConnectionFactory& factory) {
    std::shared_ptr<rpc::Server> server = rpc::Server::Create(env, server_options);
    server->Register("echo", [](const rpc::Request& request, rpc::Responder responder) {
      (void)responder.Reply(request.payload);
    });
    absl::StatusOr<std::shared_ptr<Listener>> listener =
        factory.Listen(Address::IPv4("127.0.0.1", 0),
                       [server](std::shared_ptr<Connection> c) { server->Serve(std::move(c)); });
    if (!listener.ok()) {
      std::fprintf(stderr, "scale server: %s\n", listener.status().ToString().c_str());
      return 1;
    }
    std::printf("%d\n", (*listener)->address().port());
    std::fflush(stdout);
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    std::_Exit(0);  // no orderly teardown of thousands of connections: the parent is done
  };
  if (backend == "asio") {
    asio::Runtime runtime(io_threads);
    asio::AsioOptions options;
    options.listen_backlog = 4096;
    asio::AsioServerFactory factory(runtime, options);
    return serve(runtime.env(), factory);
  }
  if (backend == "posix") {
    posix::PosixEnv env;
    posix::PosixOptions options;
    options.listen_backlog = 4096;
    posix::PosixServerFactory factory(options);
    return serve(env, factory);
  }
  std::fprintf(stderr, "scale server: unknown backend %s\n", backend.c_str());
  return 2;
}

}  // namespace netlayer::bench
