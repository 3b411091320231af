// Issue #3 end to end: live relay to a back-end in the same session.
// Back-ends: the recording FakeSmtpServer (failure matrix, smuggling), a
// real Postfix (its own RCPT and DATA rejections reach the sender) and
// Postfix's smtp-sink driven by swaks (a body arrives intact).
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/smtp_client.h"
#include "tests/integration/stack.h"
#include "tests/support/postfix_server.h"

namespace doorman::test {
namespace {

std::string domains_for(int port, const std::string& extra_route = "") {
  return "domains:\n"
         "  - name: example.com\n"
         "    mode: list\n"
         "    routes: [" + (extra_route.empty() ? "" : "\"" + extra_route + "\", ") +
         "\"127.0.0.1:" + std::to_string(port) + "\"]\n"
         "    addresses: [alice, bob, carol]\n";
}

class Relay : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.start()); }
  void start(const std::vector<std::string>& edge_args = {}, const std::string& extra_route = "") {
    std::string err = stack_.start(domains_for(backend_.port(), extra_route), edge_args);
    ASSERT_EQ(err, "");
  }
  void open(SmtpClient& c) {
    ASSERT_TRUE(c.connect(stack_.edge_port()));
    ASSERT_EQ(c.reply().substr(0, 4), "220 ");
    ASSERT_EQ(c.command("EHLO client.test").substr(0, 4), "250-");
  }
  // One transaction: returns the reply to the final dot (or the first failure).
  std::string send_message(SmtpClient& c, const std::string& rcpt, const std::string& body) {
    std::string r = c.command("MAIL FROM:<sender@remote.test>");
    if (r != "250 2.1.0 Ok") return r;
    r = c.command("RCPT TO:<" + rcpt + ">");
    if (r.substr(0, 3) != "250") return r;
    r = c.command("DATA");
    if (r.substr(0, 3) != "354") return r;
    c.send(body + ".\r\n");
    return c.reply();
  }

  FakeSmtpServer backend_;
  Stack stack_;
};

TEST_F(Relay, MessageArrivesByteForByteWithReceivedHeader) {
  start();
  SmtpClient c;
  open(c);
  const std::string body =
      "From: s@remote.test\r\nSubject: relay\r\n\r\n..a dot-stuffed line\r\n.\tdot tab\r\n"
      "a line of 8bit \xc3\xa9t\xc3\xa9\r\n" + std::string(20000, 'x') + "\r\nlast line\r\n";
  std::string r = send_message(c, "alice@example.com", body);
  EXPECT_EQ(r.substr(0, 9), "250 2.0.0") << r << stack_.logs();
  ASSERT_TRUE(backend_.wait_for_transactions(1, std::chrono::seconds(5)));
  auto t = backend_.transactions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(t[0].completed);
  EXPECT_EQ(t[0].mail_from, "<sender@remote.test>");
  ASSERT_EQ(t[0].rcpts.size(), 1u);
  EXPECT_EQ(t[0].rcpts[0], "<alice@example.com>");
  ASSERT_EQ(t[0].data.rfind("Received: from client.test ([127.0.0.1])\r\n\tby mx.test (Doorman) with ESMTP id ", 0),
            0u)
      << t[0].data.substr(0, 200);
  size_t header_end = t[0].data.find("\r\n", t[0].data.find("\tfor <alice@example.com>; ")) + 2;
  EXPECT_EQ(t[0].data.substr(header_end), body);  // dot-stuffing preserved exactly
}

TEST_F(Relay, BackendRecipientVerdictsAndParametersPassThrough) {
  backend_.set_responder([](const std::string& line) -> std::optional<FakeAction> {
    if (line.find("bob@") != std::string::npos) return FakeAction{"550 5.1.1 <bob@example.com>: no such user here (fake.test)\r\n"};
    if (line.find("carol@") != std::string::npos) return FakeAction{"451 4.3.0 try later (fake.test)\r\n"};
    return std::nullopt;
  });
  start();
  SmtpClient c;
  open(c);
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test> SIZE=1234 BODY=8BITMIME"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  std::string bob = c.command("RCPT TO:<bob@example.com>");
  EXPECT_EQ(bob, "550 5.1.1 <bob@example.com>: Recipient address rejected by the mail server");
  std::string carol = c.command("RCPT TO:<carol@example.com>");
  EXPECT_EQ(carol, "451 4.3.0 <carol@example.com>: Recipient temporarily refused, try again later");
  EXPECT_EQ(bob.find("fake.test"), std::string::npos);  // internal names never leak
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye");
  ASSERT_TRUE(backend_.wait_for_commands("MAIL", 1, std::chrono::seconds(5)));
  EXPECT_NE(backend_.raw(0).find("MAIL FROM:<s@remote.test> SIZE=1234 BODY=8BITMIME\r\n"), std::string::npos);
}

TEST_F(Relay, BackendUnreachableIs451AtRcptTimeAndRoutesFailOver) {
  int dead = free_tcp_port();
  start({"--backend-connect-timeout-ms", "500"}, "127.0.0.1:" + std::to_string(dead));
  SmtpClient c;
  open(c);
  // First route is dead, second (the fake) works.
  EXPECT_EQ(send_message(c, "alice@example.com", "hi\r\n").substr(0, 9), "250 2.0.0");
  backend_.stop();
  SmtpClient d;
  open(d);
  EXPECT_EQ(d.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(d.command("RCPT TO:<alice@example.com>"),
            "451 4.4.1 <alice@example.com>: Temporary failure, try again later");
  EXPECT_EQ(d.command("DATA"), "554 5.5.1 Error: no valid recipients");
}

TEST_F(Relay, BackendRejectsAtEndOfData) {
  backend_.set_data_reply(FakeAction{"554 5.7.1 Message refused: virus found by scanner.internal\r\n"});
  start();
  SmtpClient c;
  open(c);
  EXPECT_EQ(send_message(c, "alice@example.com", "Subject: x\r\n\r\nhello\r\n"),
            "554 5.7.1 Error: message refused by the mail server");
  backend_.set_data_reply(FakeAction{"452 4.2.2 Mailbox full\r\n"});
  EXPECT_EQ(send_message(c, "alice@example.com", "again\r\n"),
            "452 4.2.2 Error: message temporarily refused by the mail server, try again later");
}

TEST_F(Relay, BackendDropsDuringDataOrTimesOutAfterTheDot) {
  backend_.set_close_during_data_after(10);
  start({"--backend-data-end-timeout-seconds", "1"});
  SmtpClient c;
  open(c);
  std::string r = send_message(c, "alice@example.com", "Subject: x\r\n\r\n" + std::string(100000, 'y') + "\r\n");
  EXPECT_EQ(r, "451 4.4.2 Error: connection to the mail server lost, try again later");
  EXPECT_EQ(backend_.transactions().at(0).completed, false);

  backend_.set_close_during_data_after(0);
  backend_.set_data_reply(FakeAction{"250 2.0.0 too late\r\n", std::chrono::milliseconds(3000)});
  SmtpClient d;
  open(d);
  EXPECT_EQ(send_message(d, "alice@example.com", "slow\r\n"),
            "451 4.4.2 Error: connection to the mail server lost, try again later");
}

TEST_F(Relay, SenderDisconnectMidDataAbandonsTheBackendTransaction) {
  start();
  {
    SmtpClient c;
    open(c);
    EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
    EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
    EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
    c.send("Subject: cut off\r\n\r\npartial body\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }  // client gone without the final dot
  for (int i = 0; i < 50 && backend_.open_connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(backend_.open_connections(), 0u);  // closed, not pooled
  auto t = backend_.transactions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(t[0].completed);
}

TEST_F(Relay, BackendConnectionsArePooledAndBrokenOnesReplaced) {
  start();
  for (int i = 0; i < 3; ++i) {
    SmtpClient c;
    open(c);
    EXPECT_EQ(send_message(c, "alice@example.com", "n" + std::to_string(i) + "\r\n").substr(0, 9), "250 2.0.0");
    EXPECT_EQ(send_message(c, "bob@example.com", "again\r\n").substr(0, 9), "250 2.0.0");
  }
  EXPECT_EQ(backend_.transactions().size(), 6u);
  EXPECT_LE(backend_.connections(), 2u);  // reused (one per edge I/O thread at most)
  // The back-end restarts: pooled connections are dead, mail still flows.
  int port = backend_.port();
  backend_.stop();
  ASSERT_TRUE(backend_.start(port));
  for (int i = 0; i < 2; ++i) {
    SmtpClient c;
    open(c);
    EXPECT_EQ(send_message(c, "alice@example.com", "after restart\r\n").substr(0, 9), "250 2.0.0") << stack_.logs();
  }
}

// shared/reference/smuggling.md: a lenient back-end behind the gateway must
// never see a transaction from the forged sender, whole or split.
TEST_F(Relay, SmugglingVariantsNeverReachALenientBackend) {
  backend_.set_lenient_end_of_data(true);
  start();
  const std::vector<std::string> variants = {
      "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\n.\r", "\r.\n", "\r.\r", "\r\n.\r", std::string("\r\n\0.\r\n", 6),
      "\r\n.\r\r\n", "\r\r\n.\r\r\n"};
  int completed_by_client = 0;
  for (bool split : {false, true}) {
    for (const auto& v : variants) {
      SmtpClient c;
      open(c);
      EXPECT_EQ(c.command("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok");
      EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
      EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
      std::string payload = "Subject: hi\r\n\r\nbody" + v +
                            "MAIL FROM:<forged@victim.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                            "Subject: forged\r\n\r\nevil\r\n.\r\n";
      if (split) {
        for (char ch : payload) {
          c.send(std::string(1, ch));
          if (ch == '\n' || ch == '\r') std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      } else {
        c.send(payload);
      }
      std::string r = c.reply();
      EXPECT_EQ(r.substr(0, 9), "550 5.5.2") << testing::PrintToString(v) << " " << r;
      if (r.substr(0, 3) == "250") ++completed_by_client;
      EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye");
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int completed_at_backend = 0;
  for (const auto& t : backend_.transactions()) {
    EXPECT_EQ(t.mail_from.find("forged"), std::string::npos);
    if (t.completed) ++completed_at_backend;
  }
  EXPECT_EQ(backend_.commands("MAIL"), variants.size() * 2);  // only the real senders
  EXPECT_LE(completed_at_backend, completed_by_client);
}

TEST(RelayToPostfix, RealPostfixVerdictsReachTheSender) {
  std::string why;
  if (!PostfixServer::available(&why)) GTEST_SKIP() << why;
  PostfixServer pf;
  std::string error;
  ASSERT_TRUE(pf.start("example.com", {"alice"}, &error, {"message_size_limit = 20000"})) << error;
  Stack stack;
  ASSERT_EQ(stack.start(domains_for(pf.port())), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply().substr(0, 4), "220 ");
  ASSERT_EQ(c.command("EHLO client.test").substr(0, 4), "250-");
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  // bob is in Doorman's list but not on the back-end: Postfix's 550 reaches the sender.
  EXPECT_EQ(c.command("RCPT TO:<bob@example.com>"), "550 5.1.1 <bob@example.com>: Recipient address rejected by the mail server");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: to postfix\r\n\r\n..stuffed\r\nbody\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 9), "250 2.0.0");
  ASSERT_TRUE(pf.wait_for_delivered(1, std::chrono::seconds(10))) << pf.log();
  std::string msg = pf.delivered_messages("alice").at(0);
  EXPECT_NE(msg.find("\n.stuffed\n"), std::string::npos) << msg;  // unstuffed once, by Postfix
  EXPECT_NE(msg.find("by mx.test (Doorman) with ESMTP"), std::string::npos) << msg;
  // Postfix's own end-of-data rejection (message too big for it) reaches the sender.
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: big\r\n\r\n" + std::string(30000, 'z') + "\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 9), "552 5.3.4");
}

TEST(RelayToSmtpSink, SwaksBodyArrivesIntact) {
  std::string dump = make_temp_dir("doorman-sink");
  chmod(dump.c_str(), 0777);
  int port = free_tcp_port();
  Process sink;
  ASSERT_TRUE(sink.start({"/usr/sbin/smtp-sink", "-u", "nobody", "-d", dump + "/%M.", "127.0.0.1:" + std::to_string(port), "10"},
                         dump + "/../sink-" + std::to_string(port) + ".log"));
  ASSERT_TRUE(wait_for_port(port, std::chrono::seconds(5)));
  Stack stack;
  ASSERT_EQ(stack.start(domains_for(port)), "");
  std::string body_file = stack.dir() + "/body.txt";
  const std::string body = "Subject: swaks\r\n\r\nfirst\r\n.leading dot\r\n..two dots\r\nlast\r\n";
  std::ofstream(body_file) << body;
  RunResult r = run({"swaks", "--server", "127.0.0.1:" + std::to_string(stack.edge_port()), "--from", "s@remote.test",
                     "--to", "alice@example.com", "--data", "@" + body_file, "--timeout", "10"},
                    std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("<-  250 2.0.0 Ok: delivered to the mail server"), std::string::npos) << r.out;
  std::string content;
  for (int i = 0; i < 50 && content.empty(); ++i) {
    if (DIR* d = opendir(dump.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream f(dump + "/" + e->d_name, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        content = ss.str();
      }
      closedir(d);
    }
    if (content.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // smtp-sink stores the message as the client wrote it (swaks stuffed the
  // dots, we passed them through, smtp-sink unstuffed them), with LF ends.
  EXPECT_NE(content.find("\nSubject: swaks\n\nfirst\n.leading dot\n..two dots\nlast\n"), std::string::npos) << content;
  EXPECT_NE(content.find("Received: from"), std::string::npos);
  sink.stop();
  remove_tree(dump);
}

}  // namespace
}  // namespace doorman::test
