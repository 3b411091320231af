#include "common/networks.h"

#include <gtest/gtest.h>

namespace doorman {
namespace {

TEST(NetworkList, MatchesIpv4AndIpv6Networks) {
  NetworkList n;
  ASSERT_EQ(n.parse("10.0.0.0/8, 192.168.1.7 2001:db8::/32,fd00::/8"), "");
  EXPECT_EQ(n.size(), 4u);
  EXPECT_TRUE(n.contains("10.1.2.3"));
  EXPECT_TRUE(n.contains("192.168.1.7"));
  EXPECT_FALSE(n.contains("192.168.1.8"));
  EXPECT_FALSE(n.contains("11.0.0.1"));
  EXPECT_TRUE(n.contains("2001:db8:ffff::1"));
  EXPECT_FALSE(n.contains("2001:db9::1"));
  EXPECT_TRUE(n.contains("fdab::1"));
  EXPECT_TRUE(n.contains("::ffff:10.9.9.9"));  // IPv4-mapped matches the IPv4 network
  EXPECT_FALSE(n.contains("unknown"));
  EXPECT_FALSE(n.contains(""));
}

TEST(NetworkList, OddPrefixesMatchBitExactly) {
  NetworkList n;
  ASSERT_EQ(n.parse("172.16.0.0/12"), "");
  EXPECT_TRUE(n.contains("172.16.0.1"));
  EXPECT_TRUE(n.contains("172.31.255.255"));
  EXPECT_FALSE(n.contains("172.32.0.0"));
  EXPECT_FALSE(n.contains("172.15.255.255"));
  ASSERT_EQ(n.parse("0.0.0.0/0"), "");
  EXPECT_TRUE(n.contains("203.0.113.9"));
  EXPECT_FALSE(n.contains("::1"));  // an IPv4 network never matches IPv6
}

TEST(NetworkList, RefusesMalformedNetworks) {
  NetworkList n;
  EXPECT_NE(n.parse("10.0.0.1/8"), "");  // host bits set: a typo
  EXPECT_NE(n.parse("10.0.0.0/33"), "");
  EXPECT_NE(n.parse("10.0.0.0/x"), "");
  EXPECT_NE(n.parse("10.0.0.0/-8"), "");  // from_chars takes a sign; a prefix has none
  EXPECT_NE(n.parse("10.0.0.0/+8"), "");
  EXPECT_NE(n.parse("10.0.0.0/"), "");
  EXPECT_NE(n.parse("example.com"), "");
  EXPECT_NE(n.parse("::/129"), "");
  EXPECT_EQ(n.parse(""), "");
  EXPECT_TRUE(n.empty());
}

}  // namespace
}  // namespace doorman
