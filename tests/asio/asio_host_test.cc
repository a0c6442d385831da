// asio::Runtime is a netlayer::Host: the application code written against Host (the echo example,
// the object store) runs on it unchanged, as on posix::Runtime and sim::SimHost.
#include <atomic>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "echo.h"
#include "gtest/gtest.h"
#include "netlayer/asio/asio.h"
#include "netlayer/posix/runtime.h"
#ifdef NETLAYER_TEST_HAVE_OBJSTORE
#include "netlayer/objstore/client.h"
#include "netlayer/objstore/server.h"
#endif

namespace netlayer {
namespace {

const Address kLoopback = Address::IPv4("127.0.0.1", 0);

TEST(AsioHostTest, IsAHostNamedAsio) {
  asio::Runtime runtime(2);
  Host& host = runtime;
  EXPECT_EQ(host.name(), "asio");
  EXPECT_EQ(&host.env(), &runtime.env());
  // The same factories every time: they belong to the Runtime.
  EXPECT_EQ(&host.client_factory(), &runtime.client_factory());
  EXPECT_EQ(&host.server_factory(), &runtime.server_factory());
}

TEST(AsioHostTest, TheEchoExampleRunsOnAsio) {
  asio::Runtime runtime(2);
  auto server = echo::StartEchoServer(runtime, kLoopback);
  ASSERT_TRUE(server.ok()) << server.status();
  const Address address = server->listener->address();
  for (const char* text : {"hello", "", "a longer line of text"}) {
    absl::StatusOr<std::string> reply = echo::Echo(runtime, address, text, absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(*reply, text);
  }
  server->listener->Close();
  EXPECT_TRUE(server->rpc->Shutdown(absl::Now() + absl::Seconds(5)).ok());
  // Once the server is shut down, the example's client fails cleanly (three refused rounds).
  absl::StatusOr<std::string> refused = echo::Echo(runtime, address, "late", absl::Seconds(5));
  EXPECT_FALSE(refused.ok());
}

TEST(AsioHostTest, EchoBetweenAnAsioServerAndAPosixClient) {
  asio::Runtime asio_runtime(1);
  posix::Runtime posix_runtime;
  auto server = echo::StartEchoServer(asio_runtime, kLoopback);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::string> reply =
      echo::Echo(posix_runtime, server->listener->address(), "across", absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "across");
  server->listener->Close();
  server->rpc->Close();
}

#ifdef NETLAYER_TEST_HAVE_OBJSTORE
TEST(AsioHostTest, TheObjectStoreRunsOnAsio) {
  asio::Runtime runtime(2);
  auto server = objstore::ObjectServer::Start(runtime, kLoopback);
  ASSERT_TRUE(server.ok()) << server.status();
  auto invalidations = std::make_shared<std::atomic<int>>(0);
  objstore::ClientOptions watching;
  watching.on_invalidation = [invalidations](const objstore::Invalidation&) { ++*invalidations; };
  auto writer = objstore::Client::Create(runtime, {(*server)->address()});
  auto watcher = objstore::Client::Create(runtime, {(*server)->address()}, watching);
  ASSERT_TRUE(writer.ok() && watcher.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  ASSERT_TRUE((*writer)->WaitSynced(deadline));
  ASSERT_TRUE((*watcher)->WaitSynced(deadline));
  absl::StatusOr<uint64_t> tid = (*writer)->Commit({{"greeting", 0, "hello"}}, deadline);
  ASSERT_TRUE(tid.ok()) << tid.status();
  EXPECT_EQ(*tid, 1u);
  absl::StatusOr<objstore::Loaded> loaded = (*watcher)->Load("greeting", deadline);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->data, "hello");
  EXPECT_EQ(loaded->serial, 1u);
  // A second commit invalidates the watcher's cached copy; its next load sees the new data.
  ASSERT_TRUE((*writer)->Commit({{"greeting", 1, "bonjour"}}, deadline).ok());
  while (*invalidations < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(*invalidations, 2);
  loaded = (*watcher)->Load("greeting", deadline);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->data, "bonjour");
  (*watcher)->Close();
  (*writer)->Close();
  EXPECT_TRUE((*server)->Shutdown(absl::Now() + absl::Seconds(5)).ok());
}

// A client's connection may be ready (on an io thread) before Client::Create has returned: the
// sync must still go out, once (the client used to call into a null rpc client then).
TEST(AsioHostTest, ObjectStoreClientsSyncWhenReadyBeforeCreateReturns) {
  asio::Runtime runtime(2);
  auto server = objstore::ObjectServer::Start(runtime, kLoopback);
  ASSERT_TRUE(server.ok()) << server.status();
  for (int i = 0; i < 30; ++i) {
    auto client = objstore::Client::Create(runtime, {(*server)->address()});
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->WaitSynced(absl::Now() + absl::Seconds(10))) << "client " << i;
    EXPECT_EQ((*client)->stats().syncs, 1u);
    (*client)->Close();
  }
  (*server)->Close();
}
#endif

}  // namespace
}  // namespace netlayer
