#include "smtp/reply_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace doorman::smtp {
namespace {

std::vector<ParsedReply> parse_all(const std::string& in, size_t piece, bool* error) {
  ReplyParser p;
  std::vector<ParsedReply> out;
  size_t pos = 0;
  while (pos < in.size() && !p.error()) {
    std::string_view chunk = std::string_view(in).substr(pos, std::min(piece, in.size() - pos));
    size_t used = p.feed(chunk);
    pos += used;
    if (p.has_reply()) out.push_back(p.take());
  }
  *error = p.error();
  return out;
}

TEST(ReplyParserTest, SingleAndMultiLineInAnySplitting) {
  const std::string in =
      "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.1.1 <a@b>: no such user\r\n";
  for (size_t piece : {1u, 2u, 5u, 1000u}) {
    bool error = false;
    auto r = parse_all(in, piece, &error);
    ASSERT_FALSE(error);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].code, 220);
    EXPECT_EQ(r[1].code, 250);
    ASSERT_EQ(r[1].lines.size(), 3u);
    EXPECT_EQ(r[1].lines[1], "PIPELINING");
    EXPECT_EQ(r[2].reply().code, 550);
    EXPECT_EQ(r[2].reply().enhanced, "5.1.1");
    EXPECT_EQ(r[2].reply().text, "<a@b>: no such user");
  }
}

TEST(ReplyParserTest, Malformed) {
  bool error = false;
  parse_all("hello\r\n", 100, &error);
  EXPECT_TRUE(error);
  parse_all("250-a\r\n251 b\r\n", 100, &error);
  EXPECT_TRUE(error);
  parse_all("250" + std::string(5000, 'x'), 100, &error);
  EXPECT_TRUE(error);
  parse_all("650 x\r\n", 100, &error);
  EXPECT_TRUE(error);
}

TEST(ReplyParserTest, EnhancedCodeOnlyWhenWellFormed) {
  bool error = false;
  auto r = parse_all("250 2.0.0 Ok\r\n250 Ok\r\n452 4.5.3x\r\n", 100, &error);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].enhanced, "2.0.0");
  EXPECT_EQ(r[1].enhanced, "");
  EXPECT_EQ(r[2].enhanced, "");
}

}  // namespace
}  // namespace doorman::smtp
