// The TLS adapter's receive path allocates nothing per delivery: plaintext goes from OpenSSL
// into a buffer on the stack and from there to the application. It used to build each delivery
// in a fresh std::string grown record by record (16, 32, then 64 KiB, copying on each growth);
// freeing that next to the application's own 64 KiB message buffer made glibc trim the heap
// (madvise) and fault it back in on every message, so a 64 KiB ping-pong through TLS ran at
// about 0.1x of plain (netlayer-bench pingpong/netlayer-tls/64KiB). Counted here, without
// timing: the heap allocations (operator new) made while the server's adapter handles the
// ciphertext of a stream of 64 KiB messages: 4 per message before, none now. Its own binary:
// it replaces the global operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "absl/strings/str_cat.h"
#include "netlayer/tls/connection.h"
#include "tls_test_util.h"

namespace {

// Allocations made while `counting` is on: only inside the server adapter's handling of its
// transport's input (the simulator is single-threaded, so nothing else runs meanwhile).
std::atomic<bool> counting{false};
std::atomic<size_t> allocations{0};
std::atomic<size_t> allocated_bytes{0};

void* Allocate(size_t size) {
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(size_t size) { return Allocate(size); }
void* operator new[](size_t size) { return Allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace netlayer::tls::testing {
namespace {

constexpr uint16_t kPort = 8100;
const Address kServerAddress = Address::HostName("server", kPort);

// Counts the plaintext it is given; allocates nothing.
struct ByteCounter final : ConnectionHandler {
  void InputData(Connection&, std::string_view data) override { bytes += data.size(); }
  void ConnectionClosed(Connection&, const CloseReason&) override {}
  size_t bytes = 0;
};

TEST(TlsAllocTest, DecryptingLargeMessagesAllocatesNothingPerDelivery) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    sim::WorldOptions options;
    options.seed = seed;
    options.profile = sim::DrawNetworkProfile(seed);
    std::unique_ptr<sim::World> world = *sim::World::Create(options);
    const sim::HostId client_host = *world->AddHost("client");
    const sim::HostId server_host = *world->AddHost("server");
    Pki pki(world->Now(), &world->generator());
    auto server_context =
        MakeContext(Role::kServer, ServerOptions(pki, &world->generator(), ClientAuth::kNone));
    std::shared_ptr<WatchedTransport> transport;
    std::shared_ptr<TlsConnection> server;
    auto listener =
        *world->server_factory(server_host)
             .Listen(kServerAddress, [&](std::shared_ptr<Connection> c) {
               transport = std::make_shared<WatchedTransport>(std::move(c));
               server = TlsConnection::Create(server_context, world->env(server_host), transport);
               server->Start();
             });
    TlsClientFactory client_factory(
        world->client_factory(client_host), world->env(client_host),
        MakeContext(Role::kClient, ClientOptions(pki, &world->generator(), nullptr)));
    ConnectOptions connect;
    connect.max_attempts = 1;
    auto client = client_factory.ConnectBlocking({kServerAddress}, connect);
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE(world->RunUntil([&] { return server && server->handshake_complete(); },
                                world->Now() + absl::Seconds(10)));
    auto counter = std::make_shared<ByteCounter>();
    server->SetHandler(counter);

    constexpr size_t kMessage = size_t{64} << 10;
    constexpr size_t kMessages = 32;
    const std::string message(kMessage, 'm');
    for (size_t i = 0; i < kMessages; ++i) ASSERT_TRUE((*client)->Write(message).ok());
    allocations = 0;
    allocated_bytes = 0;
    // Counted only inside each delivery of ciphertext to the adapter (decrypting it and
    // delivering the plaintext to the application).
    transport->around_delivery = [](bool inside) { counting = inside; };
    const size_t deliveries_before = transport->deliveries;
    const bool all = world->RunUntil([&] { return counter->bytes == kMessages * kMessage; },
                                     world->Now() + absl::Seconds(60));
    transport->around_delivery = nullptr;
    const size_t deliveries = transport->deliveries - deliveries_before;
    ASSERT_TRUE(all) << counter->bytes << " of " << kMessages * kMessage << " bytes";
    ASSERT_GT(deliveries, kMessages);
    // Before the fix every delivery that decrypted a record allocated its plaintext string, and
    // grew it record by record (16, 32, 64 KiB, copying each time): over 2 MiB here.
    EXPECT_EQ(allocations.load(), 0u)
        << allocated_bytes.load() << " bytes allocated by the adapter in " << deliveries
        << " deliveries of ciphertext (" << kMessages * kMessage << " bytes of plaintext)";
    (*client)->Close();
    server->Close();
    world->RunFor(absl::Seconds(1)).IgnoreError();
  }
}

}  // namespace
}  // namespace netlayer::tls::testing
