// The rpc suite on real sockets (socket_rpc_suite.cc), parametrised over backends: the Env the
// rpc client and server run on, and the factories that make their connections (they may be of
// two backends: an asio server with posix clients, and the reverse).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netlayer/core/env.h"
#include "netlayer/core/factory.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"

namespace netlayer::rpc::testing {

class RpcBackend {
 public:
  virtual ~RpcBackend() = default;
  virtual Env& env() = 0;
  virtual ClientConnectionFactory& client_factory() = 0;
  virtual ServerConnectionFactory& server_factory() = 0;
};

struct RpcBackendMaker {
  std::string name;  // gtest-safe: "posix", "asio_4_threads", ...
  std::function<std::unique_ptr<RpcBackend>()> make;
};

inline std::string RpcBackendName(const ::testing::TestParamInfo<RpcBackendMaker>& info) {
  return info.param.name;
}

inline ConnectOptions QuickRetry() {
  ConnectOptions o;
  o.min_delay = absl::Milliseconds(10);
  o.max_delay = absl::Milliseconds(100);
  o.delay_backoff = 2;
  o.attempt_timeout = absl::Seconds(5);
  return o;
}

class SocketRpcTest : public ::testing::TestWithParam<RpcBackendMaker> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    ASSERT_NE(backend_, nullptr);
    server_ = Server::Create(env(), server_options_);
    server_->Register("echo", [](const Request& r, Responder resp) {
      (void)resp.Reply(absl::StrCat("echo:", std::string(r.payload)));
    });
    auto listener = server_factory().Listen(
        *Address::Parse("127.0.0.1:0"),
        [this](std::shared_ptr<Connection> c) { server_->Serve(std::move(c)); });
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *listener;
  }
  void TearDown() override {
    if (listener_) listener_->Close();
    if (server_) server_->Close();
    listener_.reset();
    server_.reset();
  }
  std::shared_ptr<Client> Connect(ClientOptions options = {}) {
    auto conn = client_factory().ConnectBlocking({listener_->address()}, QuickRetry());
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return nullptr;
    return Client::Create(env(), *conn, std::move(options));
  }
  static absl::Time In(absl::Duration d) { return absl::Now() + d; }

  Env& env() { return backend_->env(); }
  ClientConnectionFactory& client_factory() { return backend_->client_factory(); }
  ServerConnectionFactory& server_factory() { return backend_->server_factory(); }

  // Declared first: outlives what is made with it (the server, listener and clients).
  std::unique_ptr<RpcBackend> backend_;
  ServerOptions server_options_;
  std::shared_ptr<Server> server_;
  std::shared_ptr<Listener> listener_;
};

}  // namespace netlayer::rpc::testing
