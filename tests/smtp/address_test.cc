#include "smtp/address.h"

#include <gtest/gtest.h>

#include <string>

namespace doorman::smtp {
namespace {

struct PathCase {
  std::string in;
  AddressError error;
  std::string local;
  std::string domain;
  std::string rest;
};

class PathTest : public ::testing::TestWithParam<PathCase> {};

TEST_P(PathTest, Parses) {
  const PathCase& c = GetParam();
  PathResult r = parse_path(c.in);
  EXPECT_EQ(r.error, c.error) << c.in;
  if (c.error == AddressError::kNone) {
    EXPECT_EQ(r.mailbox.local, c.local) << c.in;
    EXPECT_EQ(r.mailbox.domain, c.domain) << c.in;
    EXPECT_EQ(std::string(r.rest), c.rest) << c.in;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rfc5321, PathTest,
    ::testing::Values(
        PathCase{"<alice@example.com>", AddressError::kNone, "alice", "example.com", ""},
        PathCase{"<Alice.B+tag@Example.COM> SIZE=10", AddressError::kNone, "Alice.B+tag", "Example.COM", " SIZE=10"},
        PathCase{"<\"john doe\"@example.com>", AddressError::kNone, "john doe", "example.com", ""},
        PathCase{"<\"a\\\"b>\"@example.com>", AddressError::kNone, "a\"b>", "example.com", ""},
        PathCase{"<@relay.example,@b.example:bob@example.org>", AddressError::kNone, "bob", "example.org", ""},
        PathCase{"<user@[192.0.2.1]>", AddressError::kNone, "user", "[192.0.2.1]", ""},
        PathCase{"<user@[IPv6:2001:db8::1]>", AddressError::kNone, "user", "[IPv6:2001:db8::1]", ""},
        PathCase{"<user@[300.0.2.1]>", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice>", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice@>", AddressError::kSyntax, "", "", ""},
        PathCase{"<@example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<.alice@example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<al..ice@example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice@-example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice@example..com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice@exa_mple.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<a b@example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"alice@example.com", AddressError::kSyntax, "", "", ""},
        PathCase{"<alice@example.com", AddressError::kSyntax, "", "", ""},
        PathCase{"<\"unterminated@example.com>", AddressError::kSyntax, "", "", ""},
        PathCase{"<j\xc3\xb6rg@example.com>", AddressError::kNonAscii, "", "", ""},
        PathCase{"<@a.example,:bob@example.org>", AddressError::kSyntax, "", "", ""}));

TEST(PathTest, NullPath) {
  PathResult r = parse_path("<> BODY=8BITMIME");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.null_path);
  EXPECT_EQ(r.rest, " BODY=8BITMIME");
}

TEST(PathTest, Limits) {
  std::string local64(64, 'a'), local65(65, 'a');
  EXPECT_TRUE(parse_path("<" + local64 + "@example.com>").ok());
  EXPECT_EQ(parse_path("<" + local65 + "@example.com>").error, AddressError::kTooLong);
  std::string label(63, 'b');
  std::string domain = label + "." + label + "." + label + "." + label;  // 255
  EXPECT_EQ(domain.size(), 255u);
  // Path limit 256 includes the brackets: this one is over it.
  EXPECT_EQ(parse_path("<a@" + domain + ">").error, AddressError::kTooLong);
  EXPECT_EQ(parse_path("<a@" + std::string(64, 'c') + ".com>").error, AddressError::kSyntax);
}

TEST(MailboxTest, CanonicalFormRoundTrips) {
  for (std::string in : {"alice@example.com", "\"john doe\"@example.com", "\"a\\\"b\"@example.com",
                         "\"x..y\"@example.com"}) {
    PathResult r = parse_mailbox(in);
    ASSERT_TRUE(r.ok()) << in;
    PathResult again = parse_mailbox(r.mailbox.str());
    ASSERT_TRUE(again.ok()) << r.mailbox.str();
    EXPECT_EQ(again.mailbox, r.mailbox);
  }
  // A quoted local part that is a valid dot-string loses its quotes.
  EXPECT_EQ(parse_mailbox("\"alice\"@example.com").mailbox.str(), "alice@example.com");
}

TEST(DomainTest, Validity) {
  EXPECT_TRUE(is_valid_domain("example.com"));
  EXPECT_TRUE(is_valid_domain("localhost"));
  EXPECT_TRUE(is_valid_domain("x-1.example"));
  EXPECT_FALSE(is_valid_domain(""));
  EXPECT_FALSE(is_valid_domain("example.com."));
  EXPECT_FALSE(is_valid_domain("-x.example"));
  EXPECT_EQ(ascii_lower("ExAmple.COM"), "example.com");
}

}  // namespace
}  // namespace doorman::smtp
