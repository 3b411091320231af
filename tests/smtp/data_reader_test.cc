#include "smtp/data_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace doorman::smtp {
namespace {

struct Outcome {
  std::string content;
  size_t consumed = 0;
  bool done = false;
  DataReader::Problem problem = DataReader::Problem::kNone;
};

// Feeds `in` in pieces of the given sizes (cycled), the way TCP may split it.
Outcome run(const std::string& in, const std::vector<size_t>& pieces, uint64_t max = 1 << 20) {
  DataReader r(max);
  Outcome o;
  size_t pos = 0, k = 0;
  while (pos < in.size() && !r.done()) {
    size_t n = std::min(pieces[k++ % pieces.size()], in.size() - pos);
    size_t used = r.feed(std::string_view(in).substr(pos, n), o.content);
    pos += used;
    if (used < n) break;
  }
  o.consumed = pos;
  o.done = r.done();
  o.problem = r.problem();
  return o;
}

std::vector<std::vector<size_t>> splittings(size_t seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::vector<size_t> random;
  for (int i = 0; i < 64; ++i) random.push_back(1 + rng() % 7);
  return {{1 << 20}, {1}, {2}, {3}, random};
}

TEST(DataReaderTest, PassesContentVerbatimAndStopsAtEnd) {
  const std::string body = "Subject: hi\r\n\r\n..leading dot stuffed\r\n.x\r\nlast\r\n";
  const std::string in = body + ".\r\nQUIT\r\n";
  for (const auto& split : splittings(1)) {
    Outcome o = run(in, split);
    EXPECT_TRUE(o.done);
    EXPECT_EQ(o.problem, DataReader::Problem::kNone);
    EXPECT_EQ(o.content, body);  // still dot-stuffed: the back-end unstuffs
    EXPECT_EQ(o.consumed, body.size() + 3);
  }
}

TEST(DataReaderTest, EmptyMessage) {
  Outcome o = run(".\r\n", {1});
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.content, "");
}

TEST(DataReaderTest, NotDoneWithoutTerminator) {
  Outcome o = run("line\r\n.", {1 << 20});
  EXPECT_FALSE(o.done);
  EXPECT_EQ(o.content, "line\r\n");  // the held dot is not passed on yet
  Outcome o2 = run("line\r\n.\r", {1 << 20});
  EXPECT_FALSE(o2.done);
  EXPECT_EQ(o2.content, "line\r\n");
}

// Every public smuggling end-of-data variant must neither end the message nor
// let the forged transaction through: the reader consumes up to the real
// CRLF.CRLF and reports the message as bad.
TEST(DataReaderTest, SmugglingVariantsNeverEndTheMessage) {
  const std::vector<std::string> variants = {
      "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\n.\r", "\r.\n", "\r.\r", "\r\n.\r", std::string("\r\n\0.\r\n", 6),
      "\r\n.\r\r\n", "\r\r\n.\r\r\n"};
  const std::string forged = "MAIL FROM:<forged@victim.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nevil\r\n";
  for (const auto& v : variants) {
    const std::string in = "Subject: a\r\n\r\nbody" + v + forged + ".\r\nNEXT\r\n";
    for (const auto& split : splittings(v.size())) {
      Outcome o = run(in, split);
      ASSERT_TRUE(o.done) << testing::PrintToString(v);
      EXPECT_NE(o.problem, DataReader::Problem::kNone) << testing::PrintToString(v);
      // What was passed on before the bad octet is a prefix of the legitimate
      // part; the forged transaction never is (the relay abandons it all).
      EXPECT_EQ(o.content, in.substr(0, o.content.size())) << testing::PrintToString(v);
      EXPECT_EQ(o.content.find("forged"), std::string::npos) << testing::PrintToString(v);
      EXPECT_EQ(in.substr(o.consumed), "NEXT\r\n") << testing::PrintToString(v);
    }
  }
}

TEST(DataReaderTest, ReportsWhichProblem) {
  EXPECT_EQ(run("a\nb\r\n.\r\n", {1}).problem, DataReader::Problem::kBareLf);
  EXPECT_EQ(run("a\rb\r\n.\r\n", {1}).problem, DataReader::Problem::kBareCr);
  EXPECT_EQ(run(std::string("a\0b\r\n.\r\n", 8), {1}).problem, DataReader::Problem::kNul);
}

TEST(DataReaderTest, SizeLimit) {
  std::string body(100, 'x');
  body += "\r\n";
  Outcome ok = run(body + ".\r\n", {7}, 102);
  EXPECT_EQ(ok.problem, DataReader::Problem::kNone);
  Outcome big = run(body + body + ".\r\n", {7}, 102);
  EXPECT_TRUE(big.done);
  EXPECT_EQ(big.problem, DataReader::Problem::kTooBig);
}

}  // namespace
}  // namespace doorman::smtp
