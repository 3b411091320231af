// Session tests: the state machine driven without sockets. A fake directory
// answers checks from a table; input is fed whole, byte by byte and in random
// chunks, and the transcript of replies must be the same every time.
#include "edge/session/session.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace doorman::edge {
namespace {

using smtp::Reply;

Verdict verdict_for(const std::string& mailbox) {
  Verdict v;
  std::string domain = mailbox.substr(mailbox.rfind('@') + 1);
  if (domain != "example.com") {
    v.decision = Verdict::Decision::kReject;
    v.reply = Reply{550, "5.7.1", "<" + mailbox + ">: Relay access denied"};
  } else if (mailbox.rfind("alice@", 0) == 0 || mailbox.rfind("bob@", 0) == 0 ||
             mailbox.rfind("postmaster@", 0) == 0) {
    v.decision = Verdict::Decision::kAccept;
    v.reply = Reply{250, "2.1.5", "OK"};
    v.route = {"127.0.0.1:2526"};
  } else if (mailbox.rfind("slow@", 0) == 0) {
    v.decision = Verdict::Decision::kDefer;
    v.reply = Reply{450, "4.1.1", "<" + mailbox + ">: Recipient address verification in progress"};
  } else {
    v.decision = Verdict::Decision::kReject;
    v.reply = Reply{550, "5.1.1", "<" + mailbox + ">: Recipient address rejected: User unknown"};
  }
  return v;
}

// Drives a session like the Asio shell does.
struct Driver {
  explicit Driver(SessionConfig c = {}) : config(std::move(c)), session(config) {}

  void handle(Actions a) {
    while (true) {
      out += a.output;
      total_delay += a.delay;
      if (a.close) closed = true;
      if (!a.check) return;
      ++checks;
      group_sizes.push_back(a.check->recipients.size());
      if (directory_down) {
        a = session.on_check_failed();
        continue;
      }
      std::vector<Verdict> vs;
      for (const auto& r : a.check->recipients) vs.push_back(verdict_for(r.mailbox));
      a = session.on_verdicts(std::move(vs));
    }
  }
  void start() { handle(session.start()); }
  void feed(const std::string& in, const std::vector<size_t>& pieces = {1u << 30}) {
    size_t pos = 0, k = 0;
    while (pos < in.size() && !closed) {
      size_t n = std::min(pieces[k++ % pieces.size()], in.size() - pos);
      handle(session.feed(std::string_view(in).substr(pos, n)));
      pos += n;
    }
  }

  SessionConfig config;
  Session session;
  std::string out;
  bool closed = false;
  bool directory_down = false;
  int checks = 0;
  std::vector<size_t> group_sizes;
  std::chrono::milliseconds total_delay{0};
};

std::vector<std::string> reply_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
  }
  return lines;
}

std::vector<std::vector<size_t>> splittings() {
  std::mt19937 rng(42);
  std::vector<size_t> random;
  for (int i = 0; i < 100; ++i) random.push_back(1 + rng() % 11);
  return {{1u << 30}, {1}, random};
}

TEST(SessionTest, GreetingAndEhlo) {
  Driver d;
  d.start();
  d.feed("EHLO client.example\r\n");
  auto lines = reply_lines(d.out);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "220 doorman.localdomain ESMTP Doorman");
  EXPECT_EQ(lines[1], "250-doorman.localdomain");
  EXPECT_EQ(lines[2], "250-PIPELINING");
  EXPECT_EQ(lines[3], "250-SIZE 52428800");
  EXPECT_EQ(lines[4], "250-8BITMIME");
  EXPECT_EQ(lines[5], "250 ENHANCEDSTATUSCODES");
}

TEST(SessionTest, KnownUnknownAndForeignRecipients) {
  for (const auto& split : splittings()) {
    Driver d;
    d.start();
    d.feed("HELO c\r\nMAIL FROM:<s@sender.example>\r\n", split);
    d.out.clear();
    d.feed("RCPT TO:<alice@example.com>\r\n", split);
    d.feed("RCPT TO:<nobody@example.com>\r\n", split);
    d.feed("RCPT TO:<x@elsewhere.example>\r\n", split);
    auto lines = reply_lines(d.out);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "250 2.1.5 OK");
    EXPECT_EQ(lines[1], "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown");
    EXPECT_EQ(lines[2], "550 5.7.1 <x@elsewhere.example>: Relay access denied");
    EXPECT_FALSE(d.closed);
  }
}

TEST(SessionTest, PipelinedGroupIsOneCheckWithRepliesInOrder) {
  const std::string in =
      "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<zed@example.com>\r\n"
      "RCPT TO:<bad address>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<slow@example.com>\r\nNOOP\r\n";
  Driver d;
  d.start();
  d.feed(in);
  EXPECT_EQ(d.checks, 1);
  ASSERT_EQ(d.group_sizes.size(), 1u);
  EXPECT_EQ(d.group_sizes[0], 4u);
  auto lines = reply_lines(d.out);
  ASSERT_EQ(lines.size(), 1u + 5u + 1u + 5u + 1u);
  EXPECT_EQ(lines[6], "250 2.1.0 Ok");
  EXPECT_EQ(lines[7], "250 2.1.5 OK");
  EXPECT_EQ(lines[8], "550 5.1.1 <zed@example.com>: Recipient address rejected: User unknown");
  EXPECT_EQ(lines[9], "501 5.1.3 Error: bad recipient address syntax");
  EXPECT_EQ(lines[10], "250 2.1.5 OK");
  EXPECT_EQ(lines[11], "450 4.1.1 <slow@example.com>: Recipient address verification in progress");
  EXPECT_EQ(lines[12], "250 2.0.0 Ok");
}

TEST(SessionTest, RepliesAreTheSameWhateverTheSplitting) {
  const std::string in =
      "EHLO c\r\nMAIL FROM:<s@x.example> SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<alice@example.com>\r\n"
      "RCPT TO:<Postmaster>\r\nVRFY alice\r\nVRFY nobody\r\nEXPN staff\r\nFOO\r\nRSET\r\nQUIT\r\n";
  std::string reference;
  for (const auto& split : splittings()) {
    SessionConfig c;
    c.postmaster_domain = "example.com";
    Driver d(c);
    d.start();
    d.feed(in, split);
    EXPECT_TRUE(d.closed);
    if (reference.empty()) reference = d.out;
    EXPECT_EQ(d.out, reference);
  }
  auto lines = reply_lines(reference);
  EXPECT_EQ(lines[6], "250 2.1.0 Ok");
  EXPECT_EQ(lines[7], "250 2.1.5 OK");
  EXPECT_EQ(lines[8], "250 2.1.5 OK");  // bare postmaster
  EXPECT_EQ(lines[9], lines[10]);      // VRFY gives nothing away
  EXPECT_EQ(lines[9].substr(0, 9), "252 2.0.0");
  EXPECT_EQ(lines[11], "502 5.5.1 Error: command not implemented");
  EXPECT_EQ(lines[12], "500 5.5.2 Error: command not recognized");
  EXPECT_EQ(lines[13], "250 2.0.0 Ok");
  EXPECT_EQ(lines[14], "221 2.0.0 Bye");
}

TEST(SessionTest, SequenceAndSyntaxErrors) {
  Driver d;
  d.start();
  d.feed("MAIL FROM:<a@b.example>\r\n");  // before EHLO
  d.feed("EHLO\r\n");
  d.feed("EHLO c\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.feed("MAIL FROM:a@b.example\r\nMAIL TO:<a@b.example>\r\n");
  d.feed("MAIL FROM:<a@b.example> SIZE=99999999999\r\nMAIL FROM:<a@b.example> FOO=1\r\n");
  d.feed("MAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nRCPT TO:<>\r\n");
  d.feed("RCPT TO:<j\xc3\xb6rg@example.com>\r\nRCPT TO:<alice@example.com> NOTIFY=NEVER\r\n");
  auto lines = reply_lines(d.out);
  std::vector<std::string> codes;
  for (const auto& l : lines) codes.push_back(l.substr(0, 9));
  EXPECT_EQ(codes[1], "503 5.5.1");
  EXPECT_EQ(codes[2], "501 5.5.4");
  size_t i = 3 + 5;  // greeting, 503, 501, then the five EHLO lines
  EXPECT_EQ(codes[i++], "503 5.5.1");  // RCPT without MAIL
  EXPECT_EQ(codes[i++], "503 5.5.1");  // DATA without MAIL
  EXPECT_EQ(codes[i++], "501 5.1.7");  // MAIL FROM without brackets
  EXPECT_EQ(codes[i++], "501 5.5.4");  // MAIL TO:
  EXPECT_EQ(codes[i++], "552 5.3.4");  // SIZE over the limit
  EXPECT_EQ(codes[i++], "555 5.5.4");  // unknown parameter
  EXPECT_EQ(codes[i++], "250 2.1.0");
  EXPECT_EQ(codes[i++], "503 5.5.1");  // nested MAIL
  EXPECT_EQ(codes[i++], "554 5.5.1");  // DATA without valid recipients
  EXPECT_EQ(codes[i++], "501 5.1.3");  // RCPT TO:<>
  EXPECT_EQ(codes[i++], "553 5.6.7");  // non-ASCII without SMTPUTF8
  EXPECT_EQ(codes[i++], "555 5.5.4");  // unknown RCPT parameter
  EXPECT_EQ(i, lines.size());
  EXPECT_FALSE(d.closed);
}

TEST(SessionTest, LongLinesAndBareLineEnds) {
  for (const auto& split : splittings()) {
    Driver d;
    d.start();
    d.out.clear();
    d.feed(std::string(2000, 'A') + "\r\nNOOP\r\nNOOP\nNO\rOP\r\n" + std::string("NO\0OP\r\n", 7) + "NOOP\r\n", split);
    auto lines = reply_lines(d.out);
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[0], "500 5.5.2 Error: line too long");
    EXPECT_EQ(lines[1], "250 2.0.0 Ok");
    EXPECT_EQ(lines[2], "550 5.5.2 Error: bare <LF> received");
    EXPECT_EQ(lines[3], "550 5.5.2 Error: bare <CR> received");
    EXPECT_EQ(lines[4], "550 5.5.2 Error: NUL character received");
    EXPECT_EQ(lines[5], "250 2.0.0 Ok");
    EXPECT_LT(d.session.buffered(), 600u);
  }
}

TEST(SessionTest, DirectoryDownDefersAndSessionStaysUsable) {
  Driver d;
  d.start();
  d.directory_down = true;
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n");
  auto lines = reply_lines(d.out);
  EXPECT_EQ(lines[lines.size() - 2], "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later");
  EXPECT_EQ(lines.back(), "451 4.4.3 <bob@example.com>: Temporary lookup failure, try again later");
  d.directory_down = false;
  d.out.clear();
  d.feed("RCPT TO:<alice@example.com>\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "250 2.1.5 OK");
}

TEST(SessionTest, InconsistentVerdictNeverAccepts) {
  SessionConfig c;
  Session s(c);
  s.start();
  Actions a = s.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  ASSERT_TRUE(a.check);
  Verdict v;
  v.decision = Verdict::Decision::kAccept;
  v.reply = Reply{550, "5.1.1", "confused"};
  Actions b = s.on_verdicts({v});
  EXPECT_EQ(b.output, "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later\r\n");
  Actions c2 = s.feed("RCPT TO:<bob@example.com>\r\n");
  ASSERT_TRUE(c2.check);
  EXPECT_EQ(s.on_verdicts({}).output.substr(0, 9), "451 4.4.3");  // wrong count
}

TEST(SessionTest, RecipientLimit) {
  SessionConfig c;
  c.max_recipients = 100;
  Driver d(c);
  d.start();
  std::string in = "EHLO c\r\nMAIL FROM:<>\r\n";
  for (int i = 0; i < 101; ++i) in += "RCPT TO:<alice@example.com>\r\n";
  d.feed(in);
  auto lines = reply_lines(d.out);
  EXPECT_EQ(lines[lines.size() - 2], "250 2.1.5 OK");
  EXPECT_EQ(lines.back(), "452 4.5.3 Error: too many recipients");
}

TEST(SessionTest, ErrorLimitsDelayThenClose) {
  SessionConfig c;
  c.soft_error_limit = 2;
  c.hard_error_limit = 4;
  Driver d(c);
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\n");
  EXPECT_EQ(d.total_delay.count(), 0);
  d.feed("RCPT TO:<u1@example.com>\r\n");
  d.feed("RCPT TO:<u2@example.com>\r\n");
  EXPECT_EQ(d.total_delay.count(), 0);
  d.feed("RCPT TO:<u3@example.com>\r\n");
  EXPECT_GT(d.total_delay.count(), 0);
  EXPECT_FALSE(d.closed);
  d.feed("RCPT TO:<u4@example.com>\r\n");
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(reply_lines(d.out).back(), "421 4.7.0 doorman.localdomain Error: too many errors");
}

TEST(SessionTest, DataWithoutRelayIsATemporaryFailure) {
  for (const auto& split : splittings()) {
    Driver d;
    d.start();
    d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n", split);
    EXPECT_EQ(reply_lines(d.out).back(), "354 End data with <CR><LF>.<CR><LF>");
    d.out.clear();
    d.feed("Subject: x\r\n\r\n..dot\r\n.\r\nNOOP\r\n", split);
    auto lines = reply_lines(d.out);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].substr(0, 9), "451 4.3.0");
    EXPECT_EQ(lines[1], "250 2.0.0 Ok");
    EXPECT_FALSE(d.session.in_transaction());
  }
}

TEST(SessionTest, SmuggledEndOfDataIsRejectedWhole) {
  Driver d;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.out.clear();
  d.feed("body\n.\nMAIL FROM:<forged@x.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nevil\r\n.\r\nNOOP\r\n");
  auto lines = reply_lines(d.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "550 5.5.2 Error: bare <LF> received");
  EXPECT_EQ(lines[1], "250 2.0.0 Ok");
  EXPECT_EQ(d.checks, 1);  // the forged RCPT was never looked at
}

TEST(SessionTest, DataPipelinedBefore354IsASyncError) {
  Driver d;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: early\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "554 5.5.0 Error: SMTP protocol synchronization");
  EXPECT_TRUE(d.closed);
}

TEST(SessionTest, MessageTooBig) {
  SessionConfig c;
  c.max_message_size = 10;
  Driver d(c);
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.out.clear();
  d.feed("0123456789abcdef\r\n.\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "552 5.3.4 Message size exceeds fixed limit");
}

TEST(SessionTest, ShutdownWaitsForTheTransaction) {
  Driver idle;
  idle.start();
  idle.feed("EHLO c\r\n");
  idle.handle(idle.session.on_shutdown());
  EXPECT_TRUE(idle.closed);
  EXPECT_EQ(reply_lines(idle.out).back(), "421 4.3.2 doorman.localdomain Service shutting down");

  Driver busy;
  busy.start();
  busy.feed("EHLO c\r\nMAIL FROM:<>\r\n");
  busy.handle(busy.session.on_shutdown());
  EXPECT_FALSE(busy.closed);
  busy.feed("RCPT TO:<alice@example.com>\r\n");
  EXPECT_EQ(reply_lines(busy.out).back(), "250 2.1.5 OK");
  busy.feed("RSET\r\nNOOP\r\n");
  EXPECT_TRUE(busy.closed);
  EXPECT_EQ(reply_lines(busy.out).back(), "421 4.3.2 doorman.localdomain Service shutting down");
}

TEST(SessionTest, Timeout) {
  Driver d;
  d.start();
  d.handle(d.session.on_timeout());
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(reply_lines(d.out).back(), "421 4.4.2 doorman.localdomain Error: timeout exceeded");
}

// Transcript replay: tests/testdata/session/*.txt hold "C: " client lines and
// "S: " expected reply lines. Consecutive client lines are one pipelined
// batch, sent before the replies that follow them are awaited.
TEST(SessionTest, Transcripts) {
  for (std::string name : {"basic", "pipelining"}) {
    std::ifstream f(std::string(DOORMAN_TESTDATA) + "/session/" + name + ".txt");
    ASSERT_TRUE(f) << name;
    std::vector<std::string> batches;
    std::string expected, line;
    bool in_batch = false;
    while (std::getline(f, line)) {
      bool client = line.rfind("C: ", 0) == 0;
      if (client) {
        if (!in_batch) batches.emplace_back();
        batches.back() += line.substr(3) + "\r\n";
      }
      if (line.rfind("S: ", 0) == 0) expected += line.substr(3) + "\r\n";
      in_batch = client;
    }
    for (const auto& split : splittings()) {
      Driver d;
      d.start();
      for (const auto& b : batches) d.feed(b, split);
      EXPECT_EQ(d.out, expected) << name;
    }
  }
}

}  // namespace
}  // namespace doorman::edge
