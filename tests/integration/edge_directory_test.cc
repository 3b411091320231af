// Issue #2 end to end: real redis-server + doorman-directory + doorman-edge
// processes on loopback, driven by swaks and by raw sockets.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/http_get.h"
#include "tests/support/smtp_client.h"
#include "tests/integration/stack.h"

namespace doorman::test {
namespace {

// example.com, routed to the test's back-end.
std::string domains(int backend_port) {
  return "domains:\n"
         "  - name: example.com\n"
         "    mode: list\n"
         "    routes: [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
         "    addresses: [alice, bob, '\"john doe\"']\n";
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

class EdgeDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.start());
    ASSERT_EQ(stack_.start(domains(backend_.port()), extra_edge_args()), "");
  }
  virtual std::vector<std::string> extra_edge_args() { return {}; }

  // Connects, reads the greeting and says EHLO.
  void open(SmtpClient& c) {
    ASSERT_TRUE(c.connect(stack_.edge_port()));
    ASSERT_EQ(c.reply().substr(0, 4), "220 ");
    ASSERT_EQ(c.command("EHLO client.test").substr(0, 4), "250-");
  }
  // RCPT reply for one address in a fresh transaction.
  std::string rcpt(const std::string& address) {
    SmtpClient c;
    open(c);
    EXPECT_EQ(c.command("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok");
    return c.command("RCPT TO:<" + address + ">");
  }
  // Polls until the RCPT reply starts with `prefix` (recovery after an outage).
  bool eventually(const std::string& address, const std::string& prefix, std::string* last) {
    for (int i = 0; i < 100; ++i) {
      *last = rcpt(address);
      if (last->rfind(prefix, 0) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  FakeSmtpServer backend_;  // accepts everything: these tests are about the directory
  Stack stack_;
};

TEST_F(EdgeDirectory, ListedUnknownAndForeignRecipients) {
  EXPECT_EQ(rcpt("alice@example.com"), "250 2.1.5 OK");
  EXPECT_EQ(rcpt("Alice@EXAMPLE.com"), "250 2.1.5 OK");        // case-insensitive by default
  EXPECT_EQ(rcpt("bob+lists@example.com"), "250 2.1.5 OK");    // sub-address
  EXPECT_EQ(rcpt("\"john doe\"@example.com"), "250 2.1.5 OK");  // quoted local part
  EXPECT_EQ(rcpt("postmaster@example.com"), "250 2.1.5 OK");   // RFC 5321 4.5.1
  EXPECT_EQ(rcpt("nobody@example.com"), "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown");
  EXPECT_EQ(rcpt("alice@elsewhere.test"), "550 5.7.1 <alice@elsewhere.test>: Relay access denied");
}

TEST_F(EdgeDirectory, SwaksSeesTheVerdictInSession) {
  auto swaks = [&](const std::string& to) {
    return run({"swaks", "--server", "127.0.0.1:" + std::to_string(stack_.edge_port()), "--from",
                "sender@remote.test", "--to", to, "--quit-after", "RCPT", "--timeout", "10"},
               std::chrono::seconds(30));
  };
  RunResult ok = swaks("alice@example.com");
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("<-  250 2.1.5 OK"), std::string::npos) << ok.out;
  RunResult unknown = swaks("nobody@example.com");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.out.find("<** 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"),
            std::string::npos)
      << unknown.out;
}

TEST_F(EdgeDirectory, PipelinedGroupIsOneDirectoryCallWithRepliesInOrder) {
  SmtpClient c;
  open(c);
  ASSERT_TRUE(c.send(
      "MAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<zed@example.com>\r\n"
      "RCPT TO:<bob@example.com>\r\nRCPT TO:<x@other.test>\r\nRCPT TO:<carol@example.com>\r\n"));
  EXPECT_EQ(c.reply(), "250 2.1.0 Ok");
  EXPECT_EQ(c.reply(), "250 2.1.5 OK");
  EXPECT_EQ(c.reply().substr(0, 9), "550 5.1.1");
  EXPECT_EQ(c.reply(), "250 2.1.5 OK");
  EXPECT_EQ(c.reply().substr(0, 9), "550 5.7.1");
  EXPECT_EQ(c.reply().substr(0, 9), "550 5.1.1");
  EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye");
  ASSERT_TRUE(c.closed_by_peer());
  // The directory saw exactly one call, carrying all five recipients.
  std::string dlog = stack_.directory().read_log();
  EXPECT_EQ(count(dlog, "event=check "), 1u) << dlog;
  EXPECT_EQ(count(dlog, "recipients=5"), 1u) << dlog;
  // (The edge's first session_end is the harness's port probe.)
  for (int i = 0; i < 250 && count(stack_.edge().read_log(), "directory_calls=1") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(stack_.edge().read_log().find("directory_calls=1"), std::string::npos) << stack_.logs();
}

TEST_F(EdgeDirectory, DirectoryDownDefersThenRecovers) {
  EXPECT_EQ(rcpt("alice@example.com"), "250 2.1.5 OK");
  EXPECT_EQ(stack_.stop_directory(), 0);
  EXPECT_EQ(rcpt("alice@example.com"),
            "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later");
  EXPECT_EQ(rcpt("nobody@example.com").substr(0, 9), "451 4.4.3");  // never a 5xx for our trouble
  ASSERT_EQ(stack_.start_directory(), "");
  std::string last;
  EXPECT_TRUE(eventually("alice@example.com", "250 2.1.5", &last)) << last << stack_.logs();
  EXPECT_EQ(rcpt("nobody@example.com").substr(0, 9), "550 5.1.1");
}

TEST_F(EdgeDirectory, RedisDownDefersThenRecoversWithoutRestart) {
  EXPECT_EQ(rcpt("alice@example.com"), "250 2.1.5 OK");
  stack_.redis().stop();
  EXPECT_EQ(rcpt("alice@example.com"),
            "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later");
  EXPECT_EQ(rcpt("nobody@example.com").substr(0, 9), "451 4.4.3");
  ASSERT_TRUE(stack_.redis().start()) << stack_.redis().error();
  // The test Redis keeps no data across restarts: put the domain back.
  std::string path = stack_.dir() + "/domains.yaml";
  std::string last;
  for (int i = 0; i < 50; ++i) {
    if (stack_.ctl({"apply", "-f", path}).exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(eventually("alice@example.com", "250 2.1.5", &last)) << last << stack_.logs();
  EXPECT_TRUE(stack_.directory().running());
}

TEST_F(EdgeDirectory, MalformedInputGetsRepliesAndNeverKillsTheServer) {
  SmtpClient c;
  open(c);
  EXPECT_EQ(c.command(std::string(5000, 'A')), "500 5.5.2 Error: line too long");
  ASSERT_TRUE(c.send("NOOP\n"));
  EXPECT_EQ(c.reply(), "550 5.5.2 Error: bare <LF> received");
  ASSERT_TRUE(c.send(std::string("\x00\xff\xfe junk\r\n", 10)));
  EXPECT_EQ(c.reply(), "550 5.5.2 Error: NUL character received");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "503 5.5.1 Error: need MAIL command");
  EXPECT_EQ(c.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<not an address>"), "501 5.1.3 Error: bad recipient address syntax");
  EXPECT_EQ(c.command("RCPT TO:<j\xc3\xb6rg@example.com>").substr(0, 9), "553 5.6.7");
  EXPECT_EQ(c.command("VRFY alice"), c.command("VRFY nobody"));
  EXPECT_EQ(c.command("EXPN staff"), "502 5.5.1 Error: command not implemented");
  EXPECT_EQ(c.command("HELLO"), "500 5.5.2 Error: command not recognized");
  c.close();
  EXPECT_EQ(rcpt("alice@example.com"), "250 2.1.5 OK");
  EXPECT_TRUE(stack_.edge().running());
}

TEST_F(EdgeDirectory, SigtermDrainsGracefully) {
  SmtpClient idle, busy;
  open(idle);
  open(busy);
  EXPECT_EQ(busy.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Ok");
  ASSERT_TRUE(stack_.edge().signal(SIGTERM));
  EXPECT_EQ(idle.reply(), "421 4.3.2 mx.test Service shutting down");
  EXPECT_TRUE(idle.closed_by_peer());
  // The transaction in progress may finish; then the session is closed.
  EXPECT_EQ(busy.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  EXPECT_EQ(busy.command("RSET"), "250 2.0.0 Ok");
  EXPECT_EQ(busy.command("NOOP"), "421 4.3.2 mx.test Service shutting down");
  EXPECT_EQ(stack_.edge().wait(std::chrono::seconds(10)), 0) << stack_.logs();
  SmtpClient late;
  EXPECT_FALSE(late.connect(stack_.edge_port(), 300));
}

class EdgeLimits : public EdgeDirectory {
 protected:
  std::vector<std::string> extra_edge_args() override {
    return {"--max-sessions", "2", "--idle-timeout-seconds", "1", "--soft-error-limit", "1", "--hard-error-limit",
            "3", "--error-delay-ms", "200"};
  }
};

TEST_F(EdgeLimits, SessionLimitIdleTimeoutAndErrorLimit) {
  SmtpClient a, b, c;
  ASSERT_TRUE(a.connect(stack_.edge_port()));
  ASSERT_TRUE(b.connect(stack_.edge_port()));
  EXPECT_EQ(a.reply().substr(0, 4), "220 ");
  EXPECT_EQ(b.reply().substr(0, 4), "220 ");
  ASSERT_TRUE(c.connect(stack_.edge_port()));
  EXPECT_EQ(c.reply(), "421 4.7.0 mx.test Error: too many connections");
  // Errors: the second and third are delayed, the third closes.
  ASSERT_EQ(b.command("EHLO x").substr(0, 4), "250-");
  EXPECT_EQ(b.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(b.command("RCPT TO:<u1@example.com>").substr(0, 9), "550 5.1.1");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b.command("RCPT TO:<u2@example.com>").substr(0, 9), "550 5.1.1");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  EXPECT_EQ(b.command("RCPT TO:<u3@example.com>").substr(0, 9), "550 5.1.1");
  EXPECT_EQ(b.reply(), "421 4.7.0 mx.test Error: too many errors");
  EXPECT_TRUE(b.closed_by_peer());
  // Meanwhile `a` was idle for more than a second: 421 4.4.2.
  EXPECT_EQ(a.reply(3000), "421 4.4.2 mx.test Error: timeout exceeded");
  EXPECT_TRUE(a.closed_by_peer());
}

class EdgeEarlyTalkers : public EdgeDirectory {
 protected:
  std::vector<std::string> extra_edge_args() override {
    return {"--greet-pause-ms", "400", "--max-sessions-per-ip", "2"};
  }
};

TEST_F(EdgeEarlyTalkers, PregreetIsRefusedAndPerAddressLimitHolds) {
  SmtpClient early;
  ASSERT_TRUE(early.connect(stack_.edge_port()));
  ASSERT_TRUE(early.send("EHLO impatient.test\r\n"));
  EXPECT_EQ(early.reply(), "554 5.5.0 Error: SMTP protocol synchronization");
  EXPECT_TRUE(early.closed_by_peer());

  SmtpClient a, b, c;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a.connect(stack_.edge_port()));
  EXPECT_EQ(a.reply(), "220 mx.test ESMTP Doorman");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(350));  // the greet pause
  ASSERT_TRUE(b.connect(stack_.edge_port()));
  EXPECT_EQ(b.reply().substr(0, 4), "220 ");
  ASSERT_TRUE(c.connect(stack_.edge_port()));
  EXPECT_EQ(c.reply(), "421 4.7.0 mx.test Error: too many connections from your address");
  EXPECT_EQ(a.command("QUIT"), "221 2.0.0 Bye");
  EXPECT_TRUE(a.closed_by_peer());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  SmtpClient d;  // a slot is free again
  ASSERT_TRUE(d.connect(stack_.edge_port()));
  EXPECT_EQ(d.reply().substr(0, 4), "220 ");
}

// Issue #16: many sessions, each sending one RCPT at a time and waiting for
// its reply, through real processes. With one directory call in flight at
// most, the checks of the sessions queue up and go out in CheckBatch calls;
// every session must still get exactly its own verdicts.
class EdgeBatching : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.start());
    // All sessions come from 127.0.0.1 and half of the recipients are unknown on purpose: no harvest defence,
    // no per-session error limits here (they are tested on their own).
    stack_.set_directory_args({"--harvest=false"});
    http_ = free_tcp_port();
    ASSERT_EQ(stack_.start(domains(backend_.port()),
                           {"--directory-batch-in-flight", "1", "--soft-error-limit", "1000", "--hard-error-limit",
                            "1001", "--max-sessions-per-ip", "1000", "--http-listen",
                            "127.0.0.1:" + std::to_string(http_)}),
              "");
  }
  int http_ = 0;
  FakeSmtpServer backend_;
  Stack stack_;
};

TEST_F(EdgeBatching, ConcurrentOneRcptAtATimeSessionsEachGetTheirOwnVerdicts) {
  constexpr int kSessions = 24, kRcpts = 12;
  std::vector<std::string> failures(kSessions);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSessions; ++s) {
    threads.emplace_back([&, s] {
      SmtpClient c;
      if (!c.connect(stack_.edge_port()) || c.reply().substr(0, 4) != "220 " ||
          c.command("EHLO client" + std::to_string(s) + ".test").substr(0, 4) != "250-" ||
          c.command("MAIL FROM:<s" + std::to_string(s) + "@remote.test>") != "250 2.1.0 Ok") {
        failures[static_cast<size_t>(s)] = "session " + std::to_string(s) + " did not start";
        return;
      }
      for (int i = 0; i < kRcpts; ++i) {
        // Each session its own unknown names, so a verdict delivered to the wrong session shows.
        std::string to, want;
        switch ((s + i) % 4) {
          case 0: to = "alice@example.com", want = "250 2.1.5 OK"; break;
          case 1: to = "bob+s" + std::to_string(s) + "@example.com", want = "250 2.1.5 OK"; break;
          case 2:
            to = "nobody" + std::to_string(s) + "x" + std::to_string(i) + "@example.com";
            want = "550 5.1.1 <" + to + ">: Recipient address rejected: User unknown";
            break;
          default:
            to = "s" + std::to_string(s) + "@elsewhere.test";
            want = "550 5.7.1 <" + to + ">: Relay access denied";
        }
        std::string got = c.command("RCPT TO:<" + to + ">");
        if (got != want) {
          failures[static_cast<size_t>(s)] = "session " + std::to_string(s) + " RCPT " + to + ": " + got;
          return;
        }
      }
      c.command("QUIT");
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "") << stack_.logs().substr(0, 4000);
  // Every check went out, in fewer calls than checks: the sessions' checks shared calls.
  HttpResult m = http_get(http_, "/metrics");
  ASSERT_EQ(m.status, 200);
  const double checks = metric_value(m.body, "doorman_edge_directory_batch_size_sum");
  const double calls = metric_value(m.body, "doorman_edge_directory_batch_size_count");
  EXPECT_EQ(checks, kSessions * kRcpts);
  EXPECT_GT(calls, 0);
  EXPECT_LT(calls, checks);
}

}  // namespace
}  // namespace doorman::test
