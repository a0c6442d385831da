// Helpers shared by the simulator's tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "netlayer/core/connection.h"
#include "netlayer/core/generator.h"
#include "netlayer/sim/world.h"

namespace netlayer::sim::testing_util {

// Records what a connection delivered.
class Recorder : public ConnectionHandler {
 public:
  void InputData(Connection&, std::string_view data) override {
    EXPECT_FALSE(data.empty());
    received.append(data);
    chunks.push_back(data.size());
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    closes.push_back(reason);
  }
  std::string received;
  std::vector<size_t> chunks;
  std::vector<CloseReason> closes;
};

inline std::string Pattern(size_t size, uint64_t seed) {
  Xoshiro256 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(gen.Next() & 0xff);
  return out;
}

struct Pair {
  std::shared_ptr<Connection> client;
  std::shared_ptr<Connection> server;
};

// Connects `client` to a listener on `server`:port (listening first if `listener` is null).
inline Pair ConnectPair(World& w, HostId client, std::shared_ptr<Listener>& listener, HostId server,
                        uint16_t port = 8100) {
  const Address address = Address::HostName(w.HostName(server), port);
  if (listener == nullptr) {
    auto l = w.server_factory(server).Listen(address);
    EXPECT_TRUE(l.ok()) << l.status();
    if (!l.ok()) return {};
    listener = *l;
  }
  auto c = w.client_factory(client).ConnectBlocking({address}, ConnectOptions{});
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  auto s = listener->Accept(w.Now() + absl::Seconds(10));
  EXPECT_NE(s, nullptr);
  return {*c, s};
}

// Two hosts "a" (client) and "b" (server) with one connected pair whose ends record what they
// are told: the fixture of the host-death and reset tests.
struct RecordedPair {
  explicit RecordedPair(WorldOptions o = {}) : w(o), a(*w.AddHost("a")), b(*w.AddHost("b")) {
    auto [c, s] = ConnectPair(w, a, listener, b);
    client = c;
    server = s;
    client->SetHandler(rc);
    server->SetHandler(rs);
  }
  // How many trace events (of those kept) contain `text`.
  int TraceHas(const std::string& text) const {
    int n = 0;
    for (const TraceEvent& e : w.trace().Recent()) n += e.detail.find(text) != std::string::npos;
    return n;
  }
  World w;
  HostId a, b;
  std::shared_ptr<Listener> listener;
  std::shared_ptr<Connection> client, server;
  std::shared_ptr<Recorder> rc = std::make_shared<Recorder>();
  std::shared_ptr<Recorder> rs = std::make_shared<Recorder>();
};

// Every trace event still in memory of `kind` whose detail contains `needle`.
inline std::vector<TraceEvent> Find(const World& w, TraceKind kind, std::string_view needle) {
  std::vector<TraceEvent> out;
  for (const TraceEvent& e : w.trace().Recent()) {
    if (e.kind == kind && e.detail.find(needle) != std::string::npos) out.push_back(e);
  }
  return out;
}

}  // namespace netlayer::sim::testing_util
