// PostfixServer (tests/support/postfix_server.h): a real Postfix back-end on
// loopback answers RCPT from its recipient table and delivers to maildirs.
#include "tests/support/postfix_server.h"

#include <gtest/gtest.h>

#include "tests/support/smtp_client.h"

namespace doorman::test {
namespace {

TEST(PostfixServer, KnownUserIsAcceptedUnknownIsRejectedAndMailIsDelivered) {
  std::string why;
  if (!PostfixServer::available(&why)) GTEST_SKIP() << why;
  PostfixServer pf;
  std::string error;
  ASSERT_TRUE(pf.start("example.test", {"alice", "bob"}, &error)) << error;
  SmtpClient c;
  ASSERT_TRUE(c.connect(pf.port()));
  EXPECT_EQ(c.reply(), "220 backend.test ESMTP");
  EXPECT_EQ(c.command("EHLO client.test").substr(0, 4), "250-");
  EXPECT_EQ(c.command("MAIL FROM:<>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.test>"), "250 2.1.5 Ok");
  EXPECT_EQ(c.command("RCPT TO:<nobody@example.test>").substr(0, 10), "550 5.1.1 ");
  EXPECT_EQ(c.command("RCPT TO:<x@other.test>").substr(0, 10), "554 5.7.1 ");
  EXPECT_EQ(c.command("RSET"), "250 2.0.0 Ok");
  EXPECT_EQ(c.command("MAIL FROM:<sender@client.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<bob@example.test>"), "250 2.1.5 Ok");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  EXPECT_EQ(c.command("Subject: hello\r\n\r\nbody line\r\n.").substr(0, 10), "250 2.0.0 ");
  EXPECT_EQ(c.command("QUIT").substr(0, 3), "221");
  ASSERT_TRUE(pf.wait_for_delivered(1, std::chrono::seconds(10))) << pf.log();
  auto msgs = pf.delivered_messages("bob");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].find("Subject: hello"), std::string::npos);
  EXPECT_NE(pf.log().find("User unknown in virtual mailbox table"), std::string::npos);

  // A new user, after a reload, is known to new sessions.
  ASSERT_TRUE(pf.set_users({"alice", "bob", "carol"}));
  SmtpClient c2;
  ASSERT_TRUE(c2.connect(pf.port()));
  c2.reply();
  c2.command("HELO client.test");
  c2.command("MAIL FROM:<>");
  EXPECT_EQ(c2.command("RCPT TO:<carol@example.test>"), "250 2.1.5 Ok");
  pf.stop();
  EXPECT_FALSE(pf.running());
}

}  // namespace
}  // namespace doorman::test
