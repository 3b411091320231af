#include "edge/proxy/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace doorman::edge::proxy {
namespace {

using Status = Result::Status;

// Feeds `in` one byte at a time until the parser decides.
Result incremental(const std::string& in, Version v) {
  for (size_t n = 1; n <= in.size(); ++n) {
    Result r = parse(std::string_view(in).substr(0, n), v);
    if (r.status != Status::kNeedMore) return r;
  }
  return Result{};
}

std::string v2(unsigned char cmd, unsigned char fam, const std::string& payload) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(payload.size() >> 8));
  h.push_back(static_cast<char>(payload.size() & 0xff));
  return h + payload;
}

TEST(ProxyProtocolTest, V1) {
  const std::string h = "PROXY TCP4 203.0.113.7 192.0.2.1 51000 25\r\n";
  for (Version v : {Version::kV1, Version::kAny}) {
    Result r = incremental(h + "EHLO x\r\n", v);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, h.size());
    EXPECT_EQ(r.source_ip, "203.0.113.7");
  }
  EXPECT_EQ(incremental("PROXY TCP6 2001:db8::7 2001:db8::1 51000 25\r\n", Version::kV1).source_ip, "2001:db8::7");
  Result unknown = incremental("PROXY UNKNOWN whatever\r\n", Version::kV1);
  EXPECT_EQ(unknown.status, Status::kDone);
  EXPECT_EQ(unknown.source_ip, "");
}

TEST(ProxyProtocolTest, V1Invalid) {
  for (std::string bad : std::vector<std::string>{"EHLO x\r\n", "PROXY TCP4 1.2.3 192.0.2.1 1 2\r\n", "PROXY TCP4 1.2.3.4 192.0.2.1 1\r\n",
                          "PROXY TCP5 1.2.3.4 192.0.2.1 1 2\r\n", "PROXY TCP4 1.2.3.4 192.0.2.1 1 99999\r\n",
                          "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n", "PROXY " + std::string(200, 'x')}) {
    EXPECT_EQ(incremental(bad, Version::kV1).status, Status::kInvalid) << bad;
  }
  EXPECT_EQ(incremental("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Version::kV2).status, Status::kInvalid);
}

TEST(ProxyProtocolTest, V2) {
  std::string ipv4 = std::string("\xcb\x00\x71\x09", 4) + std::string("\xc0\x00\x02\x01", 4) + std::string("\xc7\x38\x00\x19", 4);
  std::string h = v2(0x21, 0x11, ipv4);
  for (Version v : {Version::kV2, Version::kAny}) {
    Result r = incremental(h + "EHLO", v);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, h.size());
    EXPECT_EQ(r.source_ip, "203.0.113.9");
  }
  std::string ipv6(36, '\0');
  ipv6[0] = '\x20';
  ipv6[1] = '\x01';
  ipv6[2] = '\x0d';
  ipv6[3] = '\xb8';
  ipv6[15] = '\x05';
  EXPECT_EQ(incremental(v2(0x21, 0x21, ipv6), Version::kV2).source_ip, "2001:db8::5");
  Result local = incremental(v2(0x20, 0x00, ""), Version::kV2);
  EXPECT_EQ(local.status, Status::kDone);
  EXPECT_EQ(local.source_ip, "");
  EXPECT_EQ(incremental(v2(0x31, 0x11, ipv4), Version::kV2).status, Status::kInvalid);  // version 3
  EXPECT_EQ(incremental(v2(0x21, 0x11, "short"), Version::kV2).status, Status::kInvalid);
  EXPECT_EQ(incremental(v2(0x21, 0x11, std::string(600, 'x')), Version::kV2).status, Status::kInvalid);
  EXPECT_EQ(incremental(h, Version::kV1).status, Status::kInvalid);
}

TEST(ProxyProtocolTest, Modes) {
  bool on = true;
  Version v = Version::kAny;
  EXPECT_TRUE(parse_mode("off", &on, &v));
  EXPECT_FALSE(on);
  EXPECT_TRUE(parse_mode("v2", &on, &v));
  EXPECT_TRUE(on);
  EXPECT_EQ(v, Version::kV2);
  EXPECT_FALSE(parse_mode("v3", &on, &v));
}

}  // namespace
}  // namespace doorman::edge::proxy
