#include "common/log.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tests/support/capture_stderr.h"

namespace doorman::log {
namespace {

std::string capture(const std::function<void()>& f) { return test::capture_stderr(f); }

TEST(LogTest, KeyValueQuotesWhatNeedsIt) {
  set_format(Format::kKeyValue);
  std::string out = capture([] { info("session_end").kv("session", "1a").kv("detail", "End of file").kv("n", 3); });
  EXPECT_NE(out.find(" level=info event=session_end session=1a detail=\"End of file\" n=3\n"), std::string::npos)
      << out;
}

TEST(LogTest, JsonIsOneObjectPerLine) {
  set_format(Format::kJson);
  std::string out =
      capture([] { info("transaction").kv("client", "192.0.2.1").kv("quote", "a\"b\n").kv("rcpt_accepted", 2); });
  set_format(Format::kKeyValue);
  EXPECT_EQ(out.rfind("{\"ts\":\"", 0), 0u) << out;
  EXPECT_NE(out.find("\"level\":\"info\",\"event\":\"transaction\",\"client\":\"192.0.2.1\","
                     "\"quote\":\"a\\\"b\\u000a\",\"rcpt_accepted\":2}\n"),
            std::string::npos)
      << out;
  Format f;
  EXPECT_TRUE(parse_format("json", &f));
  EXPECT_FALSE(parse_format("xml", &f));
}

TEST(LogTest, DebugIsOffAtInfo) {
  set_level(Level::kInfo);
  EXPECT_EQ(capture([] { debug("verdict").kv("rcpt", "alice@example.com"); }), "");
}

}  // namespace
}  // namespace doorman::log
