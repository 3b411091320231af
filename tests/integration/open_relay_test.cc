// Classic open-relay tricks (issue #7): every one is refused or resolved to a
// guarded mailbox; the back-end never receives a recipient outside the
// guarded domain. Routing local parts (issue #12) against a real Postfix
// that would relay them.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/postfix_server.h"
#include "tests/support/smtp_client.h"
#include "tests/integration/stack.h"

namespace doorman::test {
namespace {

TEST(OpenRelay, TricksAreRefusedOrStayInTheGuardedDomain) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start("domains:\n  - name: example.com\n    mode: list\n    routes: [\"127.0.0.1:" +
                        std::to_string(backend.port()) + "\"]\n    addresses: [alice]\n",
                        {"--soft-error-limit", "50", "--hard-error-limit", "60"}),  // no tarpit here
            "");
  struct Case {
    std::string rcpt;
    std::string expect;  // reply prefix
  };
  const std::vector<Case> cases = {
      // Routing local parts (issue #12): refused by the directory's routing check.
      {"<victim%other.test@example.com>", "550 5.7.1"},  // percent hack
      {"<other.test!victim@example.com>", "550 5.7.1"},  // bang path
      {"<@example.com:victim@other.test>", "550 5.7.1"},  // source route: dropped, other.test not guarded
      {"<\"victim@other.test\"@example.com>", "550 5.7.1"},  // quoted @
      {"<\"victim%other.test\"@example.com>", "550 5.7.1"},  // quoted %
      {"<victim@[127.0.0.1]>", "550 5.7.1"},                 // IP literal
      {"<victim@[IPv6:::1]>", "550 5.7.1"},
      {"<alice@example.com.>", "501 5.1.3"},   // trailing dot
      {"<alice@example.com..>", "501 5.1.3"},
      {"<victim@other.test.>", "501 5.1.3"},
      {"<victim@OTHER.test>", "550 5.7.1"},
      {"<>", "501 5.1.3"},                                      // null recipient
      {"<" + std::string(300, 'a') + "@example.com>", "501"},  // very long
      {"<alice@example.com@other.test>", "501 5.1.3"},
      {"<alice@sub.example.com>", "550 5.7.1"},  // subdomain is not the guarded domain
      {"<ALICE@EXAMPLE.COM>", "250 2.1.5"},      // mixed case: the guarded mailbox
      {"<alice@example.com>", "250 2.1.5"},
  };
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  c.reply();
  c.command("EHLO client.test");
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  for (const auto& k : cases) {
    std::string r = c.command("RCPT TO:" + k.rcpt);
    EXPECT_EQ(r.substr(0, k.expect.size()), k.expect) << k.rcpt << " -> " << r;
  }
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: x\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  ASSERT_TRUE(backend.wait_for_transactions(1, std::chrono::seconds(5)));
  for (const auto& t : backend.transactions()) {
    for (const auto& r : t.rcpts) {
      std::string lower = r;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_EQ(lower.size() >= 13 ? lower.substr(lower.size() - 13) : lower, "@example.com>") << r;
    }
  }
}

// Issue #12: a back-end that honours the percent hack and trusts the gateway
// (permit_mynetworks) relays "victim%other.test@example.com" to other.test.
// Through an accept-all domain Doorman refuses it (550 5.7.1) and Postfix
// never sees the RCPT; with allow_routing_local_parts it reaches Postfix,
// which accepts it and tries to deliver to other.test.
TEST(OpenRelay, RoutingLocalPartsNeverReachAPercentHackBackend) {
  std::string why;
  if (!PostfixServer::available(&why)) GTEST_SKIP() << why;
  PostfixServer pf;
  std::string error;
  ASSERT_TRUE(pf.start("example.com", {}, &error,
                       {"virtual_mailbox_domains =", "mydestination = example.com", "local_recipient_maps =",
                        "allow_percent_hack = yes", "swap_bangpath = yes",
                        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
                        // Log every permitted RCPT too: the log is the record of what Postfix saw.
                        "smtpd_log_access_permit_actions = static:all"}))
      << error;
  auto yaml = [&](bool allow) {
    return "domains:\n  - name: example.com\n    mode: accept-all\n    routes: [\"127.0.0.1:" +
           std::to_string(pf.port()) + "\"]\n" + (allow ? "    allow_routing_local_parts: true\n" : "");
  };
  Stack stack;
  ASSERT_EQ(stack.start(yaml(false)), "");
  {
    SmtpClient c;
    ASSERT_TRUE(c.connect(stack.edge_port()));
    c.reply();
    c.command("EHLO client.test");
    EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
    for (const char* rcpt : {"<victim%other.test@example.com>", "<other.test!victim@example.com>",
                             "<\"victim@other.test\"@example.com>"}) {
      std::string r = c.command(std::string("RCPT TO:") + rcpt);
      EXPECT_EQ(r.substr(0, 9), "550 5.7.1") << rcpt << " -> " << r;
      EXPECT_NE(r.find("routing in the local part is not allowed"), std::string::npos) << r;
    }
    // A plain recipient of the same transaction does reach Postfix (so its
    // log would show the others, had they been sent).
    EXPECT_EQ(c.command("RCPT TO:<someone@example.com>").substr(0, 3), "250") << pf.log() << stack.logs();
    c.command("QUIT");
  }
  std::string log;
  for (int i = 0; i < 50 && log.find("someone@example.com") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = pf.log();
  }
  EXPECT_NE(log.find("to=<someone@example.com>"), std::string::npos) << log;
  EXPECT_EQ(log.find("victim"), std::string::npos) << log;

  // The opt-out: the same RCPT goes to Postfix, which relays it.
  std::string path = stack.dir() + "/allow.yaml";
  std::ofstream(path) << yaml(true);
  RunResult r = stack.ctl({"apply", "-f", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  c.reply();
  c.command("EHLO client.test");
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<victim%other.test@example.com>").substr(0, 3), "250") << pf.log();
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: relayed\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  for (int i = 0; i < 100 && log.find("to=<victim@other.test>") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = pf.log();
  }
  EXPECT_NE(log.find("to=<victim%other.test@example.com>"), std::string::npos) << log;
  // Postfix rewrote it to other.test and tried to deliver there: the relay.
  EXPECT_NE(log.find("to=<victim@other.test>"), std::string::npos) << log;
}

}  // namespace
}  // namespace doorman::test
