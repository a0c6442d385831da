#include "netlayer/core/address.h"

#include <gtest/gtest.h>

namespace netlayer {
namespace {

TEST(AddressTest, ParsesEveryFormAndRoundTrips) {
  struct Case {
    const char* text;
    Address::Kind kind;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:8080", Address::Kind::kIPv4, "127.0.0.1", 8080},
      {"[::1]:9", Address::Kind::kIPv6, "::1", 9},
      {"[fe80::1%lo]:0", Address::Kind::kIPv6, "fe80::1%lo", 0},
      {"unix:/tmp/zeo.sock", Address::Kind::kUnix, "/tmp/zeo.sock", 0},
      {"server1:8100", Address::Kind::kHostName, "server1", 8100},
      {"localhost:65535", Address::Kind::kHostName, "localhost", 65535},
  };
  for (const Case& c : cases) {
    auto a = Address::Parse(c.text);
    ASSERT_TRUE(a.ok()) << c.text << ": " << a.status();
    EXPECT_EQ(a->kind(), c.kind) << c.text;
    EXPECT_EQ(a->host(), c.host) << c.text;
    EXPECT_EQ(a->port(), c.port) << c.text;
    EXPECT_EQ(a->ToString(), c.text);
  }
}

TEST(AddressTest, RejectsBadInputWithClearError) {
  const char* bad[] = {"",        "nohostport", ":80",        "host:", "host:65536",
                       "host:-1", "host:8x",    "::1:80",     "[::1]", "[::1]80",
                       "[zz]:80", "unix:",      "bad host:1", "[]:80", "1.2.3.4:99999"};
  for (const char* text : bad) {
    auto a = Address::Parse(text);
    EXPECT_FALSE(a.ok()) << "accepted '" << text << "'";
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << text;
    }
  }
  EXPECT_FALSE(Address::Parse("unix:/" + std::string(200, 'x')).ok());
}

TEST(AddressTest, DottedNumbersThatAreNotIPv4AreHostNames) {
  auto a = Address::Parse("1.2.3.400:1");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind(), Address::Kind::kHostName);
}

}  // namespace
}  // namespace netlayer
