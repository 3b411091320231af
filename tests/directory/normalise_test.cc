// Normalisation of domains, local parts, routes and modes (pure).
#include <gtest/gtest.h>

#include "directory/store/normalise.h"

namespace doorman::directory::store {
namespace {

TEST(DirectoryNormalise, LocalParts) {
  EXPECT_EQ(normalise_local("Alice", false, "+"), "alice");
  EXPECT_EQ(normalise_local("Alice", true, "+"), "Alice");
  EXPECT_EQ(normalise_local("Alice+Tag", false, "+"), "alice");
  EXPECT_EQ(normalise_local("alice+a+b", false, "+"), "alice");
  EXPECT_EQ(normalise_local("+tag", false, "+"), "+tag");
  EXPECT_EQ(normalise_local("alice+tag", false, ""), "alice+tag");
  EXPECT_EQ(normalise_local("alice-tag", false, "-"), "alice");
}

TEST(DirectoryNormalise, CandidatesCoverBothCaseModesAndDefaultSeparator) {
  auto c = lookup_candidates("Al+X");
  EXPECT_EQ(c, (std::vector<std::string>{"al", "al+x", "Al", "Al+X"}));
  EXPECT_EQ(lookup_candidates("bob").size(), 1u);
}

TEST(DirectoryNormalise, DomainsRoutesModes) {
  std::string out;
  EXPECT_EQ(normalise_domain_name("Example.COM", &out), "");
  EXPECT_EQ(out, "example.com");
  EXPECT_NE(normalise_domain_name("bad..com", &out), "");
  EXPECT_NE(normalise_domain_name("[1.2.3.4]", &out), "");
  EXPECT_NE(normalise_domain_name("", &out), "");
  EXPECT_EQ(validate_route("mx.example.com:25"), "");
  EXPECT_EQ(validate_route("127.0.0.1:2526"), "");
  EXPECT_EQ(validate_route("[::1]:25"), "");
  EXPECT_NE(validate_route("mx.example.com"), "");
  EXPECT_NE(validate_route("mx:0"), "");
  EXPECT_NE(validate_route("mx:65536"), "");
  EXPECT_NE(validate_route(":25"), "");
  EXPECT_NE(validate_route("bad host:25"), "");
  doorman::v1::DomainMode m;
  EXPECT_TRUE(parse_mode("accept-all", &m));
  EXPECT_EQ(mode_name(m), "accept-all");
  EXPECT_FALSE(parse_mode("open", &m));
}

}  // namespace
}  // namespace doorman::directory::store
