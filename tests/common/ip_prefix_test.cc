// client_identity (common/ip_prefix.h): IPv4 and IPv4-mapped per address,
// IPv6 by prefix, everything else refused; the result is always a safe key.
#include "common/ip_prefix.h"

#include <gtest/gtest.h>

namespace doorman {
namespace {

TEST(ClientIdentity, Ipv4IsOneAddress) {
  EXPECT_EQ(client_identity("192.0.2.1", 64), "192.0.2.1");
  EXPECT_EQ(client_identity("192.0.2.1", 0), "192.0.2.1");
  EXPECT_EQ(client_identity("255.255.255.255", 128), "255.255.255.255");
}

TEST(ClientIdentity, Ipv4MappedIsTheIpv4Address) {
  EXPECT_EQ(client_identity("::ffff:192.0.2.1", 64), "192.0.2.1");
  EXPECT_EQ(client_identity("::FFFF:c000:0201", 64), "192.0.2.1");
  EXPECT_EQ(client_identity("0:0:0:0:0:ffff:192.0.2.1", 0), "192.0.2.1");
}

TEST(ClientIdentity, Ipv6IsAggregatedByPrefix) {
  EXPECT_EQ(client_identity("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", 64), "2001:db8:1:2::/64");
  // Every address of the /64 is the same identity.
  EXPECT_EQ(client_identity("2001:db8:1:2::1", 64), client_identity("2001:db8:1:2:ffff:ffff:ffff:ffff", 64));
  EXPECT_NE(client_identity("2001:db8:1:2::1", 64), client_identity("2001:db8:1:3::1", 64));
  EXPECT_EQ(client_identity("2001:db8:1:2::1", 48), "2001:db8:1::/48");
  EXPECT_EQ(client_identity("2001:db8:1:2::1", 56), "2001:db8:1::/56");
  EXPECT_EQ(client_identity("2001:db8:1:2ff::1", 56), "2001:db8:1:200::/56");
  EXPECT_EQ(client_identity("2001:db8:1:2::1", 63), "2001:db8:1:2::/63");
  EXPECT_EQ(client_identity("2001:db8:1:3::1", 63), "2001:db8:1:2::/63");
  // 128: the address itself, canonical (RFC 5952), without a suffix.
  EXPECT_EQ(client_identity("2001:0DB8:0000:0000:0000:0000:0000:0001", 128), "2001:db8::1");
  EXPECT_EQ(client_identity("::1", 128), "::1");
  EXPECT_EQ(client_identity("::1", 64), "::/64");
  EXPECT_EQ(client_identity("2001:db8::1", 0), "::/0");
  // Out of range prefixes are clamped.
  EXPECT_EQ(client_identity("2001:db8::1", 200), "2001:db8::1");
  EXPECT_EQ(client_identity("2001:db8::1", -5), "::/0");
}

TEST(ClientIdentity, AnythingElseIsRefused) {
  for (const char* bad : {"", " ", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4 x", "1.2.3", "1.2.3.4.5", "256.1.1.1",
                          "01.2.3.4", "fe80::1%eth0", "[::1]", "::1]:25", "1.2.3.4:25", "a:b:*", "localhost",
                          "doorman:v1:domains", "2001:db8::1/64", "::ffff:1.2.3.4x", "1:2:3:4:5:6:7:8:9",
                          "0000000000000000000000000000000000000000000000000001.2.3.4"}) {
    EXPECT_EQ(client_identity(bad, 64), "") << "'" << bad << "'";
  }
  EXPECT_EQ(client_identity(std::string_view("1.2.3.4\0x", 9), 64), "");
}

TEST(ClientIdentity, ResultIsASafeKeyComponent) {
  for (const char* ip : {"192.0.2.1", "::ffff:10.0.0.1", "2001:db8:85a3:8d3:1319:8a2e:370:7348", "::1.2.3.4", "::",
                         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    for (int p : {0, 1, 63, 64, 127, 128}) {
      std::string id = client_identity(ip, p);
      ASSERT_FALSE(id.empty()) << ip;
      EXPECT_LE(id.size(), 43u) << id;
      EXPECT_EQ(id.find_first_not_of("0123456789abcdef.:/"), std::string::npos) << id;
    }
  }
}

}  // namespace
}  // namespace doorman
