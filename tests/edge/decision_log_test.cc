// The decision log line (edge/decision_log.h): fields per mode, and the
// line as written.
#include "edge/decision_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "common/address_hash.h"
#include "common/log.h"
#include "edge/config.h"
#include "tests/support/capture_stderr.h"

namespace doorman::edge {
namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef";

std::string capture(const std::function<void()>& f) { return test::capture_stderr(f); }

RcptDecision refused() {
  RcptDecision d;
  d.mailbox = "Nobody@Example.com";
  d.sender = "s@sender.example";
  d.verdict = RcptVerdict::kRejected;
  d.reply = smtp::Reply{550, "5.1.1", "<Nobody@Example.com>: Recipient address rejected: User unknown"};
  d.reason = RcptReason::kNotListed;
  d.source = RcptSource::kList;
  return d;
}

std::map<std::string, std::string> as_map(const std::vector<std::pair<std::string, std::string>>& f) {
  return {f.begin(), f.end()};
}

TEST(DecisionLog, ClearLineIsPostfixLike) {
  log::set_format(log::Format::kKeyValue);
  log::set_level(log::Level::kInfo);
  DecisionLog clear;
  std::string out = capture([&] { clear.write(refused(), DecisionContext{"1a2b", "192.0.2.1"}); });
  EXPECT_NE(out.find(" level=info event=rcpt session=1a2b client=192.0.2.1 from=<s@sender.example> "
                     "to=<Nobody@Example.com> verdict=rejected code=550 enhanced=5.1.1 reason=not_listed "
                     "source=list\n"),
            std::string::npos)
      << out;
  // Nothing at warn level.
  log::set_level(log::Level::kWarn);
  EXPECT_EQ(capture([&] { clear.write(refused(), DecisionContext{"1a2b", "192.0.2.1"}); }), "");
  log::set_level(log::Level::kInfo);
}

TEST(DecisionLog, ShadowCacheAgeAndSourceName) {
  RcptDecision d = refused();
  d.verdict = RcptVerdict::kAccepted;
  d.reply = smtp::Reply{250, "2.1.5", "OK"};
  d.reason = RcptReason::kShadow;
  d.source = RcptSource::kCache;
  d.would_reject = RcptReason::kCalloutUnknown;
  d.would_code = 550;
  d.cache_age = std::chrono::milliseconds(95500);
  d.source_name = "corp-ad";
  auto f = DecisionLog().fields(d, DecisionContext{"s", "192.0.2.1"});
  std::vector<std::string> keys;
  for (const auto& [k, v] : f) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"session", "client", "from", "to", "verdict", "code", "enhanced", "reason",
                                            "source", "would_reject", "would_code", "cache_age_seconds",
                                            "source_name"}));
  auto m = as_map(f);
  EXPECT_EQ(m["verdict"], "accepted");
  EXPECT_EQ(m["reason"], "shadow");
  EXPECT_EQ(m["would_reject"], "callout_unknown");
  EXPECT_EQ(m["would_code"], "550");
  EXPECT_EQ(m["cache_age_seconds"], "95");
  EXPECT_EQ(m["source"], "cache");
  EXPECT_EQ(m["source_name"], "corp-ad");
}

TEST(DecisionLog, HashModeShowsNoAddressButTheKeyedHash) {
  DecisionLog hash(RecipientLogMode::kHash, kKey);
  RcptDecision d = refused();
  auto m = as_map(hash.fields(d, DecisionContext{"s", "192.0.2.1"}));
  EXPECT_EQ(m.count("to"), 0u);
  EXPECT_EQ(m.count("from"), 0u);
  EXPECT_EQ(m["to_hash"], address_hash(kKey, "nobody@example.com"));  // case folded
  EXPECT_EQ(m["from_hash"], address_hash(kKey, "s@sender.example"));
  EXPECT_EQ(m["to_domain"], "example.com");
  std::string line = capture([&] { hash.write(d, DecisionContext{"s", "192.0.2.1"}); });
  EXPECT_EQ(line.find("obody"), std::string::npos) << line;
  EXPECT_EQ(line.find("sender.example"), std::string::npos) << line;
  // The null sender names nobody: shown as it is.
  d.sender.clear();
  m = as_map(hash.fields(d, DecisionContext{"s", "192.0.2.1"}));
  EXPECT_EQ(m["from"], "<>");
  EXPECT_EQ(m.count("from_hash"), 0u);
}

TEST(DecisionLog, NoneModeShowsTheDomainOnly) {
  DecisionLog none(RecipientLogMode::kNone, "");
  RcptDecision d = refused();
  std::string line = capture([&] { none.write(d, DecisionContext{"s", "192.0.2.1"}); });
  EXPECT_NE(line.find(" to_domain=example.com verdict=rejected code=550"), std::string::npos) << line;
  EXPECT_EQ(line.find("obody"), std::string::npos) << line;
  EXPECT_EQ(line.find("sender.example"), std::string::npos) << line;
  EXPECT_EQ(line.find("hash"), std::string::npos) << line;
}

TEST(DecisionLog, AnAddressCannotForgeALine) {
  RcptDecision d = refused();
  d.mailbox = "\"a\r\nts=0 level=info event=rcpt verdict=accepted x\"@example.com";
  std::string line = capture([&] { DecisionLog().write(d, DecisionContext{"s", "192.0.2.1"}); });
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // one line
  EXPECT_NE(line.find(" to=\"<\\\"a\\x0d\\x0ats=0 level=info"), std::string::npos) << line;  // quoted, escaped
  EXPECT_NE(line.find(" verdict=rejected "), std::string::npos) << line;
}

TEST(DecisionLog, ModeAndKeyAreValidatedAtStartUp) {
  auto parse = [](std::vector<std::string> args) {
    std::vector<const char*> argv = {"doorman-edge"};
    for (const auto& a : args) argv.push_back(a.c_str());
    EdgeConfig c;
    std::string help;
    std::string err = parse_config(static_cast<int>(argv.size()), argv.data(), &c, &help);
    return std::make_pair(err, c.decision_log.mode());
  };
  EXPECT_EQ(parse({}).first, "");
  EXPECT_EQ(parse({}).second, RecipientLogMode::kClear);
  EXPECT_NE(parse({"--log-recipients=plain"}).first.find("expected clear, hash or none"), std::string::npos);
  EXPECT_NE(parse({"--log-recipients=hash"}).first.find("needs log-recipients-key-file"), std::string::npos);
  char dir[] = "/tmp/doorman-dlog-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string key = std::string(dir) + "/key", weak = std::string(dir) + "/weak";
  FILE* f = fopen(key.c_str(), "w");
  fputs((kKey + "\n").c_str(), f);
  fclose(f);
  f = fopen(weak.c_str(), "w");
  fputs("short\n", f);
  fclose(f);
  auto ok = parse({"--log-recipients=hash", "--log-recipients-key-file=" + key});
  EXPECT_EQ(ok.first, "");
  EXPECT_EQ(ok.second, RecipientLogMode::kHash);
  EXPECT_NE(parse({"--log-recipients=hash", "--log-recipients-key-file=" + weak}).first.find("too short"),
            std::string::npos);
  EXPECT_EQ(parse({"--log-recipients=none"}).second, RecipientLogMode::kNone);
  std::remove(key.c_str());
  std::remove(weak.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace doorman::edge
