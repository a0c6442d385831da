#include <memory>
#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"
#include "netlayer/rpc/client.h"
#include "netlayer/rpc/handshake.h"
#include "netlayer/rpc/server.h"
#include "netlayer/smac/frame.h"
#include "sim_net.h"

namespace netlayer::fuzz {

int FuzzSession(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool target_server = data[0] & 1;
  const bool handshake_first = data[0] & 2;
  const size_t chunk = 1 + data[1] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  // Protocol errors are the point here: keep their warnings out of the fuzzer's output.
  static const bool quiet = [] {
    SetLogLevel(spdlog::level::off);
    return true;
  }();
  (void)quiet;

  // A calm simulated network: the seed and the segment sizes come from the input, so a run is a
  // function of the input alone.
  testing::SimNet world(/*seed=*/size, chunk);
  rpc::ServerOptions sopt;
  sopt.message_options.max_message_size = 1 << 16;
  auto server = rpc::Server::Create(world.server_env(), sopt);
  server->Register("echo",
                   [](const rpc::Request& r, rpc::Responder resp) { (void)resp.Reply(r.payload); });
  server->Register("later", [](const rpc::Request&, rpc::Responder resp) {
    (void)resp.Fail(absl::AbortedError("no"));
  });
  // A well-behaved client on its own connection.
  auto good = world.NewPair();
  server->Serve(good.server);
  auto good_client = rpc::Client::Create(world.client_env(), good.client);

  auto bad = world.NewPair();
  std::shared_ptr<rpc::Client> target_client;
  if (target_server) {
    server->Serve(bad.server);
    if (handshake_first) {
      (void)bad.client->Write(smac::EncodeFrame(rpc::EncodeClientHello({"netlayer-rpc", 1})));
    }
    (void)bad.client->Write(input);
  } else {
    rpc::ClientOptions copt;
    copt.message_options.max_message_size = 1 << 16;
    copt.on_push = [](std::string_view, std::string_view) {};
    target_client = rpc::Client::Create(world.client_env(), bad.client, copt);
    target_client->CallAsync("m", "p", world.Now() + absl::Seconds(5));
    if (handshake_first) {
      (void)bad.server->Write(smac::EncodeFrame(rpc::EncodeServerHello({"netlayer-rpc", 1, 1})));
    }
    (void)bad.server->Write(input);
  }
  world.Settle();
  auto r = good_client->Call("echo", "alive", world.Now() + absl::Seconds(10));
  NETLAYER_ASSERT(r.ok() && *r == "alive", "the other client keeps being served");
  if (target_client) target_client->Close();
  server->Close();
  world.Settle();
  return 0;
}

}  // namespace netlayer::fuzz
