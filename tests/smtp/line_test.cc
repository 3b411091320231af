#include "smtp/line.h"

#include <gtest/gtest.h>

#include <string>

namespace doorman::smtp {
namespace {

TEST(LineTest, CompleteLine) {
  LineResult r = next_line("NOOP\r\nQUIT\r\n", 512);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "NOOP");
  EXPECT_EQ(r.consumed, 6u);
}

TEST(LineTest, NeedsMore) {
  EXPECT_EQ(next_line("NOOP", 512).status, LineStatus::kNeedMore);
  EXPECT_EQ(next_line("NOOP\r", 512).status, LineStatus::kNeedMore);
  EXPECT_EQ(next_line("", 512).status, LineStatus::kNeedMore);
}

TEST(LineTest, Framing) {
  EXPECT_EQ(next_line("NOOP\n", 512).status, LineStatus::kBareLf);
  EXPECT_EQ(next_line("NOOP\n", 512).consumed, 5u);
  EXPECT_EQ(next_line("NO\rOP\r\n", 512).status, LineStatus::kBareCr);
  EXPECT_EQ(next_line(std::string("NO\0OP\r\n", 7), 512).status, LineStatus::kNul);
}

TEST(LineTest, LengthLimitCountsCrlf) {
  std::string ok(510, 'x');
  EXPECT_EQ(next_line(ok + "\r\n", 512).status, LineStatus::kLine);
  std::string over(511, 'x');
  LineResult r = next_line(over + "\r\n", 512);
  EXPECT_EQ(r.status, LineStatus::kTooLong);
  EXPECT_TRUE(r.complete);
  LineResult partial = next_line(std::string(600, 'x'), 512);
  EXPECT_EQ(partial.status, LineStatus::kTooLong);
  EXPECT_FALSE(partial.complete);
  EXPECT_EQ(partial.consumed, 600u);
}

}  // namespace
}  // namespace doorman::smtp
