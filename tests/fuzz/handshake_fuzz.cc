#include <string>
#include <string_view>

#include "fuzz_targets.h"
#include "netlayer/core/assert.h"
#include "netlayer/rpc/handshake.h"

namespace netlayer::fuzz {

int FuzzHandshake(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto s = rpc::DecodeServerHello(input); s.ok()) {
    NETLAYER_ASSERT(rpc::EncodeServerHello(*s) == input, "server hello round-trip");
    auto v = rpc::ChooseVersion(*s, s->protocol, 0, 0xFFFF);
    NETLAYER_ASSERT(v.ok() && *v == s->max_version, "the highest common version");
    auto none = rpc::ChooseVersion(*s, s->protocol + "x", 0, 0xFFFF);
    NETLAYER_ASSERT(!none.ok(), "a name mismatch is refused");
    if (v.ok()) {
      NETLAYER_ASSERT(rpc::CheckClientHello({s->protocol, *v}, *s).ok(), "the choice is accepted");
    }
  }
  if (auto c = rpc::DecodeClientHello(input); c.ok()) {
    NETLAYER_ASSERT(rpc::EncodeClientHello(*c) == input, "client hello round-trip");
    (void)rpc::CheckClientHello(*c, rpc::ServerHello{"netlayer-rpc", 1, 3});
  }
  return 0;
}

}  // namespace netlayer::fuzz
