// FakeSmtpServer: defaults, pipelining, scripting, recording, lenient
// end-of-data and drop-during-DATA.
#include "tests/fakes/fake_smtp_server.h"

#include <gtest/gtest.h>

#include "tests/support/smtp_client.h"

namespace doorman::test {
namespace {

using namespace std::chrono_literals;

TEST(FakeSmtpServer, DefaultTransactionIsRecorded) {
  FakeSmtpServer s;
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  EXPECT_EQ(c.reply().substr(0, 3), "220");
  std::string ehlo = c.command("EHLO client.test");
  EXPECT_NE(ehlo.find("250-PIPELINING"), std::string::npos) << ehlo;
  EXPECT_NE(ehlo.find("250 ENHANCEDSTATUSCODES"), std::string::npos) << ehlo;
  EXPECT_EQ(c.command("MAIL FROM:<a@x.test> SIZE=10"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<b@y.test>"), "250 2.1.5 Ok");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  EXPECT_EQ(c.command("Subject: x\r\n\r\n..dot\r\n."), "250 2.0.0 Ok: queued");
  EXPECT_EQ(c.command("QUIT").substr(0, 3), "221");
  EXPECT_TRUE(c.closed_by_peer());
  ASSERT_TRUE(s.wait_for_transactions(1, 2s));
  auto t = s.transactions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].helo, "client.test");
  EXPECT_EQ(t[0].mail_from, "<a@x.test> SIZE=10");
  EXPECT_EQ(t[0].rcpts, std::vector<std::string>{"<b@y.test>"});
  EXPECT_EQ(t[0].data, "Subject: x\r\n\r\n..dot\r\n");
  EXPECT_TRUE(t[0].completed);
  EXPECT_EQ(s.connections(), 1u);
  EXPECT_EQ(s.rcpt_commands(), 1u);
  EXPECT_EQ(s.commands("MAIL"), 1u);
  EXPECT_NE(s.raw(0).find("RCPT TO:<b@y.test>\r\n"), std::string::npos);
}

TEST(FakeSmtpServer, PipelinedInputIsHandledInOrder) {
  FakeSmtpServer s;
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  c.reply();
  ASSERT_TRUE(c.send("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"));
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 Ok");
  EXPECT_EQ(c.reply().substr(0, 3), "354");
  // End of data and the next transaction in one segment.
  ASSERT_TRUE(c.send("hello\r\n.\r\nMAIL FROM:<z@x>\r\nRSET\r\n"));
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok: queued");
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.0.0 Ok");
  auto t = s.transactions();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].data, "hello\r\n");
  EXPECT_EQ(t[0].rcpts.size(), 2u);
  EXPECT_FALSE(t[1].completed);
  EXPECT_EQ(t[1].mail_from, "<z@x>");
}

TEST(FakeSmtpServer, ResponderScriptsRepliesDelaysAndClose) {
  FakeSmtpServer s;
  s.set_responder([](const std::string& line) -> std::optional<FakeAction> {
    if (line == "RCPT TO:<unknown@x>") return FakeAction{"550 5.1.1 User unknown\r\n", 0ms, false};
    if (line == "RCPT TO:<grey@x>") return FakeAction{"450 4.7.1 Greylisted\r\n", 0ms, false};
    if (line == "RCPT TO:<slow@x>") return FakeAction{std::nullopt, 300ms, false};
    if (line == "RCPT TO:<drop@x>") return FakeAction{std::nullopt, 0ms, true};
    return std::nullopt;
  });
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  c.reply();
  c.command("HELO c");
  c.command("MAIL FROM:<>");
  EXPECT_EQ(c.command("RCPT TO:<unknown@x>"), "550 5.1.1 User unknown");
  EXPECT_EQ(c.command("RCPT TO:<grey@x>"), "450 4.7.1 Greylisted");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.command("RCPT TO:<slow@x>"), "250 2.1.5 Ok");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");  // slow@x was accepted
  c.send(".\r\n");
  c.reply();
  c.command("MAIL FROM:<>");
  c.send("RCPT TO:<drop@x>\r\n");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(s.rcpt_commands(), 4u);
  EXPECT_EQ(s.transactions()[0].rcpts, std::vector<std::string>{"<slow@x>"});
}

TEST(FakeSmtpServer, GreetingAndDataReplyAreScriptable) {
  FakeSmtpServer s;
  s.set_greeting("220-first\r\n220 second\r\n");
  s.set_data_reply({"554 5.7.1 Rejected by content filter\r\n", 0ms, false});
  s.set_extensions({"SIZE 1000"});
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  EXPECT_EQ(c.reply(), "220-first\n220 second");
  EXPECT_EQ(c.command("EHLO c"), "250-fake.test\n250 SIZE 1000");
  c.command("MAIL FROM:<>");
  c.command("RCPT TO:<a@x>");
  c.command("DATA");
  EXPECT_EQ(c.command("x\r\n."), "554 5.7.1 Rejected by content filter");
}

TEST(FakeSmtpServer, StrictEndOfDataIgnoresSmugglingVariants) {
  FakeSmtpServer s;
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  c.reply();
  c.command("HELO c");
  c.command("MAIL FROM:<a@x>");
  c.command("RCPT TO:<b@x>");
  c.command("DATA");
  std::string body = "one\n.\nMAIL FROM:<forged@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nforged\r\n";
  // Split across segments.
  for (char ch : body) c.send(std::string(1, ch));
  EXPECT_EQ(c.command("."), "250 2.0.0 Ok: queued");
  auto t = s.transactions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].data, body);
}

TEST(FakeSmtpServer, LenientEndOfDataActsLikeAVulnerableServer) {
  for (std::string eod : {"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r.\n"}) {
    FakeSmtpServer s;
    s.set_lenient_end_of_data(true);
    ASSERT_TRUE(s.start());
    SmtpClient c;
    ASSERT_TRUE(c.connect(s.port()));
    c.reply();
    c.command("HELO c");
    c.command("MAIL FROM:<a@x>");
    c.command("RCPT TO:<b@x>");
    c.command("DATA");
    c.send("one" + eod + "MAIL FROM:<forged@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nforged\r\n.\r\n");
    ASSERT_TRUE(s.wait_for_transactions(2, 2s)) << "variant " << eod.size();
    auto t = s.transactions();
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t[1].mail_from, "<forged@x>");
    EXPECT_EQ(t[1].data, "forged\r\n");
  }
}

TEST(FakeSmtpServer, CloseDuringDataLeavesAnIncompleteTransaction) {
  FakeSmtpServer s;
  s.set_close_during_data_after(10);
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  c.reply();
  c.command("HELO c");
  c.command("MAIL FROM:<a@x>");
  c.command("RCPT TO:<b@x>");
  c.command("DATA");
  c.send("0123456789abcdef\r\n");
  EXPECT_TRUE(c.closed_by_peer());
  auto t = s.transactions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(t[0].completed);
  EXPECT_EQ(t[0].data, "0123456789");
}

TEST(FakeSmtpServer, StopClosesOpenConnections) {
  FakeSmtpServer s;
  ASSERT_TRUE(s.start());
  SmtpClient c;
  ASSERT_TRUE(c.connect(s.port()));
  c.reply();
  s.stop();
  EXPECT_TRUE(c.closed_by_peer(2000));
  EXPECT_EQ(s.open_connections(), 0u);
}

}  // namespace
}  // namespace doorman::test
