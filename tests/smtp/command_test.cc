#include "smtp/command.h"

#include <gtest/gtest.h>

namespace doorman::smtp {
namespace {

TEST(CommandTest, VerbsAreCaseInsensitive) {
  EXPECT_EQ(parse_command("ehlo client.example").verb, Verb::kEhlo);
  EXPECT_EQ(parse_command("EHLO client.example").arg, "client.example");
  EXPECT_EQ(parse_command("MaIl FROM:<a@b.example>").verb, Verb::kMail);
  EXPECT_EQ(parse_command("rcpt TO:<a@b.example>").verb, Verb::kRcpt);
  EXPECT_EQ(parse_command("DATA").verb, Verb::kData);
  EXPECT_EQ(parse_command("QUIT").arg, "");
  EXPECT_EQ(parse_command("STARTTLS").verb, Verb::kStartTls);
  EXPECT_EQ(parse_command("DATAX").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("NOOP   x  ").arg, "x");
}

TEST(CommandTest, PathArgument) {
  PathArg p = parse_path_arg("FROM:<a@b.example> SIZE=100 BODY=8BITMIME", "FROM:");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.path.mailbox.str(), "a@b.example");
  ASSERT_EQ(p.params.size(), 2u);
  EXPECT_EQ(p.params[0].keyword, "SIZE");
  EXPECT_EQ(p.params[0].value, "100");
  EXPECT_EQ(p.params[1].value, "8BITMIME");

  EXPECT_TRUE(parse_path_arg("from: <a@b.example>", "FROM:").ok());  // common client habit
  EXPECT_EQ(parse_path_arg("FROM <a@b.example>", "FROM:").error, ArgError::kBadPrefix);
  EXPECT_EQ(parse_path_arg("TO:a@b.example", "TO:").error, ArgError::kAddress);
  EXPECT_EQ(parse_path_arg("TO:<a@b.example>X", "TO:").error, ArgError::kBadParam);
  EXPECT_EQ(parse_path_arg("TO:<a@b.example> =x", "TO:").error, ArgError::kBadParam);
  EXPECT_EQ(parse_path_arg("TO:<a@b.example> NO_TIFY=x", "TO:").error, ArgError::kBadParam);
  PathArg n = parse_path_arg("FROM:<>", "FROM:");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n.path.null_path);
}

}  // namespace
}  // namespace doorman::smtp
