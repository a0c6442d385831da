// rpc over TLS over posix (real sockets, real threads): the client's verified identity in
// handlers and session hooks, and credentials replaced on a live server (TlsContext::
// ReplaceCredentials) while a client keeps calling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netlayer/posix/runtime.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/server.h"
#include "netlayer/tls/host.h"
#include "tls_test_util.h"

namespace netlayer::tls::testing {
namespace {

class PosixTlsRpcTest : public ::testing::Test {
 protected:
  PosixTlsRpcTest() : pki_(absl::Now(), nullptr) {}

  // Serves `server` over TLS on an ephemeral loopback port with `context`.
  void Serve(std::shared_ptr<TlsContext> context, rpc::ServerOptions options = {}) {
    server_context_ = std::move(context);
    server_host_ = *TlsHost::Create(runtime_, nullptr, server_context_);
    server_ = rpc::Server::Create(runtime_.env(), std::move(options));
    std::weak_ptr<rpc::Server> weak = server_;
    listener_ = *server_host_->server_factory().Listen(Address::IPv4("127.0.0.1", 0),
                                                       [weak](std::shared_ptr<Connection> c) {
                                                         if (auto s = weak.lock())
                                                           s->Serve(std::move(c));
                                                       });
  }

  std::shared_ptr<rpc::Client> Connect(const TestCertificate* cert,
                                       rpc::ClientOptions options = {}) {
    auto host = *TlsHost::Create(
        runtime_, MakeContext(Role::kClient, ClientOptions(pki_, nullptr, cert)), nullptr);
    auto client = *rpc::Client::CreateReconnecting(runtime_.env(), host->client_factory(),
                                                   {listener_->address()}, {}, std::move(options));
    client_hosts_.push_back(std::move(host));
    return client;
  }

  void TearDown() override {
    if (server_) server_->Close();
    if (listener_) listener_->Close();
  }

  posix::Runtime runtime_;
  Pki pki_;
  std::shared_ptr<TlsContext> server_context_;
  std::unique_ptr<TlsHost> server_host_;
  std::shared_ptr<rpc::Server> server_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::unique_ptr<TlsHost>> client_hosts_;
};

TEST_F(PosixTlsRpcTest, HandlersAndHooksSeeTheVerifiedIdentity) {
  std::mutex mu;
  std::vector<std::string> ready;  // guarded by mu
  rpc::ServerOptions options;
  options.on_session_ready = [&](rpc::Session& s) {
    std::lock_guard lock(mu);
    ready.push_back(s.peer_identity() ? s.peer_identity()->subject : "none");
  };
  Serve(MakeContext(Role::kServer, ServerOptions(pki_, nullptr)), options);
  server_->Register("whoami", [](const rpc::Request& r, rpc::Responder responder) {
    const auto& who = r.peer_identity();
    if (!who || who->common_name != "client-1") {
      (void)responder.Fail(absl::PermissionDeniedError("only client-1"));
      return;
    }
    (void)responder.Reply(absl::StrCat(who->common_name, " verified=", who->verified,
                                       " dns=", who->dns_names.empty() ? "" : who->dns_names[0]));
  });
  auto good = Connect(&pki_.client);
  auto reply = good->Call("whoami", "", absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "client-1 verified=1 dns=client-1.example");
  auto other = Connect(&pki_.wrong_name);
  EXPECT_EQ(other->Call("whoami", "", absl::Now() + absl::Seconds(20)).status().code(),
            absl::StatusCode::kPermissionDenied);
  good->Close();
  other->Close();
  std::lock_guard lock(mu);
  EXPECT_THAT(ready, ::testing::UnorderedElementsAre("CN=client-1,O=netlayer test",
                                                     "CN=elsewhere,O=netlayer test"));
}

// Rotates the server's certificate while a client keeps calling on one connection: no call
// fails, the connection is never replaced, a new connection sees the new certificate, and
// credentials that do not load (a key that does not match, a file that is not PEM) are refused
// with the old ones kept.
TEST_F(PosixTlsRpcTest, CredentialsReplacedWhileAClientKeepsCalling) {
  Serve(MakeContext(Role::kServer, ServerOptions(pki_, nullptr)));
  server_->Register("echo", [](const rpc::Request& r, rpc::Responder responder) {
    (void)responder.Reply(r.payload);
  });
  auto caller = Connect(&pki_.client);
  std::mutex mu;
  std::condition_variable progress;
  int calls = 0;        // guarded by mu
  int failures = 0;     // guarded by mu
  std::string failure;  // guarded by mu
  bool stop = false;    // guarded by mu
  std::thread loop([&] {
    for (int i = 0;; ++i) {
      {
        std::lock_guard lock(mu);
        if (stop) return;
      }
      auto r = caller->Call("echo", absl::StrCat(i), absl::Now() + absl::Seconds(20));
      std::lock_guard lock(mu);
      ++calls;
      if (!r.ok() || *r != absl::StrCat(i)) {
        ++failures;
        failure = r.ok() ? *r : r.status().ToString();
      }
      progress.notify_all();
    }
  });
  auto wait_for_calls = [&](int n) {
    std::unique_lock lock(mu);
    return progress.wait_for(lock, std::chrono::seconds(30), [&] { return calls >= n; });
  };
  // Which certificate a new connection is served.
  std::shared_ptr<TlsContext> probe_context =
      MakeContext(Role::kClient, ClientOptions(pki_, nullptr, &pki_.client));
  auto client_host = *TlsHost::Create(runtime_, probe_context, nullptr);
  auto served_name = [&]() -> std::string {
    auto c = client_host->client_factory().ConnectBlocking({listener_->address()}, {});
    if (!c.ok()) return c.status().ToString();
    std::optional<PeerIdentity> who = (*c)->peer_identity();
    (*c)->Close();
    return who ? who->common_name : "(none)";
  };

  ASSERT_TRUE(wait_for_calls(5));
  EXPECT_EQ(served_name(), "server");
  TestCertificate rotated =
      *pki_.ca.Issue(Pki::Named("server-2", {"server", "localhost"}, {"127.0.0.1"}));
  TlsCredentials next;
  next.certificate_chain_pem = rotated.certificate_pem;
  next.private_key_pem = rotated.private_key_pem;
  next.ca_pem = pki_.ca.ca_certificate_pem();
  ASSERT_TRUE(server_context_->ReplaceCredentials(next).ok());
  EXPECT_THAT(server_context_->certificate_summary(), ::testing::HasSubstr("CN=server-2"));
  int before = 0;
  {
    std::lock_guard lock(mu);
    before = calls;
  }
  ASSERT_TRUE(wait_for_calls(before + 5));
  EXPECT_EQ(served_name(), "server-2");

  // Refused: the new certificate with the old key; a certificate that is not PEM.
  TlsCredentials mismatched = next;
  mismatched.private_key_pem = pki_.server.private_key_pem;
  absl::Status refused = server_context_->ReplaceCredentials(mismatched);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("does not match the certificate"));
  TlsCredentials garbage = next;
  garbage.certificate_chain_pem = "not a certificate";
  refused = server_context_->ReplaceCredentials(garbage);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("no valid PEM certificate"));
  EXPECT_EQ(served_name(), "server-2");  // the old credentials stayed
  {
    std::lock_guard lock(mu);
    before = calls;
  }
  ASSERT_TRUE(wait_for_calls(before + 5));

  {
    std::lock_guard lock(mu);
    stop = true;
  }
  loop.join();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(failures, 0) << failure;
  }
  const rpc::ClientStats stats = caller->stats();
  EXPECT_EQ(stats.connections, 1u);  // the live connection was never dropped
  EXPECT_EQ(stats.disconnects, 0u);
  const TlsStats tls = server_context_->stats();
  EXPECT_EQ(tls.reloads, 1u);
  EXPECT_EQ(tls.reload_failures, 2u);
  EXPECT_GE(tls.handshakes, 1u);  // the caller's (the probes' may still be finishing here)
  EXPECT_EQ(probe_context->stats().handshakes, 3u);  // complete when ConnectBlocking returns
  // The host's reload: the same credentials again (in memory here), still served.
  EXPECT_TRUE(server_host_->Reload().ok());
  EXPECT_EQ(server_context_->stats().reloads, 2u);
  EXPECT_EQ(served_name(), "server-2");
  caller->Close();
  // Every session's teardown done before the test ends (the posix connections finish theirs
  // on their own threads): polled with a deadline, never a fixed sleep.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (!server_->Sessions().empty() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(server_->Sessions().empty());
}

}  // namespace
}  // namespace netlayer::tls::testing
