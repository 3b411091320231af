// Classic open-relay tricks (issue #7): every one is refused or resolved to a
// guarded mailbox; the back-end never receives a recipient outside the
// guarded domain.
#include <gtest/gtest.h>

#include "tests/fakes/fake_smtp_server.h"
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
      {"<victim%other.test@example.com>", "550 5.1.1"},  // percent hack
      {"<other.test!victim@example.com>", "550 5.1.1"},  // bang path
      {"<@example.com:victim@other.test>", "550 5.7.1"},  // source route: dropped, other.test not guarded
      {"<\"victim@other.test\"@example.com>", "550 5.1.1"},  // quoted @
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

}  // namespace
}  // namespace doorman::test
