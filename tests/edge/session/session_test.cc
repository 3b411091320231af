// Session tests: the state machine driven without sockets. A fake directory
// answers checks from a table; input is fed whole, byte by byte and in random
// chunks, and the transcript of replies must be the same every time.
#include "edge/session/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <optional>
#include <map>
#include <random>
#include <set>
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
  } else if (mailbox.rfind("other@", 0) == 0) {
    v.decision = Verdict::Decision::kAccept;
    v.reply = Reply{250, "2.1.5", "OK"};
    v.route = {"127.0.0.9:25"};
  } else if (mailbox.rfind("full@", 0) == 0 || mailbox.rfind("gone@", 0) == 0) {
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

// A fake back-end for the relay ops, recording what it was sent.
struct FakeBackend {
  bool unreachable = false;
  bool busy = false;  // every back-end of the route at its connection limit
  bool lose_on_chunk = false;
  std::function<Reply(const std::string&)> rcpt = [](const std::string&) { return Reply{250, "2.1.5", "Ok"}; };
  Reply mail{250, "2.1.0", "Ok"};
  Reply data{354, "", "go ahead"};
  Reply end{250, "2.0.0", "Ok: queued as ABC at backend.internal"};
  std::vector<std::string> opened_routes;
  std::vector<std::string> rcpts;
  std::string content;  // bytes of the current message
  std::vector<std::string> messages;  // completed messages
  int aborts = 0, releases = 0;

  std::optional<RelayResult> handle(const RelayOp& op) {
    RelayResult r;
    switch (op.kind) {
      case RelayOp::Kind::kRcpts:
        if (op.open) {
          if (unreachable) return RelayResult{RelayResult::Status::kUnreachable, {}, false};
          if (busy) return RelayResult{RelayResult::Status::kBusy, {}, false};
          opened_routes.push_back(op.route.at(0));
          content.clear();
        }
        for (const auto& m : op.rcpts) {
          rcpts.push_back(m);
          r.replies.push_back(mail.code >= 400 ? mail : rcpt(m));
        }
        r.mail_refused = mail.code >= 400;
        return r;
      case RelayOp::Kind::kData: r.replies.push_back(data); return r;
      case RelayOp::Kind::kChunk:
        if (lose_on_chunk) return RelayResult{RelayResult::Status::kLost, {}, false};
        content += op.bytes;
        return r;
      case RelayOp::Kind::kEnd:
        content += op.bytes;
        messages.push_back(content);
        content.clear();
        r.replies.push_back(end);
        return r;
      case RelayOp::Kind::kAbort: ++aborts; content.clear(); return std::nullopt;
      case RelayOp::Kind::kRelease: ++releases; return std::nullopt;
    }
    return std::nullopt;
  }
};

SessionConfig test_config() {
  SessionConfig c;
  c.now = [] { return std::string("Sat, 28 Nov 2026 02:00:00 +0000"); };
  return c;
}

// Drives a session like the Asio shell does.
struct Driver {
  explicit Driver(SessionConfig c = test_config()) : config(std::move(c)), session(config, SessionInfo{"S1", "192.0.2.1"}) {}

  void handle(Actions a) {
    while (true) {
      out += a.output;
      total_delay += a.delay;
      for (auto& dd : a.decisions) decisions.push_back(std::move(dd));
      if (a.close) {
        closed = true;
        end = a.end;
      }
      std::optional<RelayResult> relay_result;
      for (const auto& op : a.relay) {
        ops.push_back(op.kind);
        auto r = backend.handle(op);
        if (r) relay_result = r;
      }
      if (relay_result) {
        a = session.on_relay(*relay_result);
        continue;
      }
      if (a.start_tls) {
        ++tls_handshakes;
        a = tls_fails ? session.on_tls_failed() : session.on_tls("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
        continue;
      }
      if (!a.check) return;
      ++checks;
      group_sizes.push_back(a.check->recipients.size());
      if (directory_down) {
        a = session.on_check_failed();
        continue;
      }
      std::vector<Verdict> vs;
      for (const auto& r : a.check->recipients) {
        checked.push_back(r.mailbox);
        vs.push_back(directory(r.mailbox));
      }
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
  FakeBackend backend;
  std::vector<RelayOp::Kind> ops;
  std::string out;
  bool closed = false;
  SessionEnd end = SessionEnd::kServerClosed;  // with closed: why
  bool directory_down = false;
  bool tls_fails = false;
  int tls_handshakes = 0;
  int checks = 0;
  std::vector<size_t> group_sizes;
  std::vector<std::string> checked;  // every mailbox asked about, in order
  std::vector<RcptDecision> decisions;  // the decision log, in order
  std::function<Verdict(const std::string&)> directory = verdict_for;
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
    SessionConfig c = test_config();
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
  SessionConfig c = test_config();
  Session s(c, SessionInfo{"S1", "192.0.2.1"});
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

TEST(SessionTest, VerdictDelayHoldsTheReplyBack) {
  SessionConfig c = test_config();
  Session s(c, SessionInfo{"S1", "192.0.2.1"});
  s.start();
  Actions a = s.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@example.com>\r\n");
  ASSERT_TRUE(a.check);
  Verdict v = verdict_for("nobody@example.com");
  v.delay = std::chrono::milliseconds(2000);
  Actions b = s.on_verdicts({v});
  EXPECT_EQ(b.delay.count(), 2000);
  EXPECT_EQ(b.output.substr(0, 9), "550 5.1.1");
  Actions n = s.feed("NOOP\r\n");
  EXPECT_EQ(n.delay.count(), 0);  // only that reply
}

TEST(SessionTest, TransactionSummaries) {
  SessionConfig c = test_config();
  Session s(c, SessionInfo{"S1", "192.0.2.1"});
  s.start();
  Actions a = s.feed("EHLO c\r\nMAIL FROM:<s@x.example>\r\n");
  EXPECT_TRUE(a.transaction_started);
  EXPECT_FALSE(a.transaction);
  a = s.feed("RCPT TO:<alice@example.com>\r\nRCPT TO:<zed@example.com>\r\n");
  a = s.on_verdicts({verdict_for("alice@example.com"), verdict_for("zed@example.com")});
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{250, "2.1.5", "Ok"}}, false});
  a = s.feed("DATA\r\n");
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{354, "", "go"}}, false});
  a = s.feed("hello\r\n.\r\n");
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{250, "2.0.0", "queued"}}, false});
  ASSERT_TRUE(a.transaction);
  EXPECT_EQ(a.transaction->sender, "s@x.example");
  EXPECT_EQ(a.transaction->accepted, 1u);
  EXPECT_EQ(a.transaction->rejected, 1u);
  EXPECT_EQ(a.transaction->result, "delivered");
  EXPECT_EQ(a.transaction->code, 250);
  EXPECT_EQ(a.transaction->size, 7u);
  a = s.feed("MAIL FROM:<>\r\nRSET\r\n");
  ASSERT_TRUE(a.transaction);
  EXPECT_EQ(a.transaction->result, "reset");
  a = s.feed("MAIL FROM:<>\r\nQUIT\r\n");
  ASSERT_TRUE(a.transaction);
  EXPECT_EQ(a.transaction->result, "closed");
}

TEST(SessionTest, RecipientLimit) {
  SessionConfig c = test_config();
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
  SessionConfig c = test_config();
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

TEST(SessionTest, MessageIsRelayedAndTheBackendVerdictReturned) {
  for (const auto& split : splittings()) {
    Driver d;
    d.start();
    d.feed("EHLO c\r\nMAIL FROM:<s@x.example> BODY=8BITMIME\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n", split);
    EXPECT_EQ(reply_lines(d.out).back(), "354 End data with <CR><LF>.<CR><LF>");
    d.out.clear();
    const std::string body = "Subject: x\r\n\r\n..dot stuffed\r\n.x\r\nend\r\n";
    d.feed(body + ".\r\nNOOP\r\n", split);
    auto lines = reply_lines(d.out);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "250 2.0.0 Ok: delivered to the mail server as S1.1");
    EXPECT_EQ(lines[1], "250 2.0.0 Ok");
    ASSERT_EQ(d.backend.messages.size(), 1u);
    EXPECT_EQ(d.backend.messages[0],
              "Received: from c ([192.0.2.1])\r\n\tby doorman.localdomain (Doorman) with ESMTP id S1.1\r\n"
              "\tfor <alice@example.com>; Sat, 28 Nov 2026 02:00:00 +0000\r\n" + body);
    EXPECT_EQ(d.backend.releases, 1);
    EXPECT_FALSE(d.session.in_transaction());
    EXPECT_EQ(d.session.stats().delivered, 1u);
  }
}

TEST(SessionTest, OnlyABackend250BecomesA250) {
  Driver d;
  d.backend.end = Reply{554, "5.7.1", "Rejected by content filter on backend.internal"};
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.feed("hello\r\n.\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "554 5.7.1 Error: message refused by the mail server");
  d.out.clear();
  d.backend.end = Reply{452, "", "mailbox full"};
  d.feed("MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.feed("hello\r\n.\r\n");
  EXPECT_EQ(reply_lines(d.out).back(),
            "452 4.0.0 Error: message temporarily refused by the mail server, try again later");
  d.out.clear();
  d.backend.end = Reply{251, "2.1.5", "odd"};
  d.feed("MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.feed("hello\r\n.\r\n");
  EXPECT_EQ(reply_lines(d.out).back().substr(0, 9), "451 4.4.2");
  EXPECT_EQ(d.out.find("backend.internal"), std::string::npos);
}

TEST(SessionTest, BackendRefusalsOfRecipientsReachTheClient) {
  Driver d;
  d.backend.rcpt = [](const std::string& m) {
    if (m.rfind("full@", 0) == 0) return Reply{452, "4.2.2", "Mailbox full on backend.internal"};
    if (m.rfind("gone@", 0) == 0) return Reply{550, "5.1.1", "No such user on backend.internal"};
    return Reply{250, "2.1.5", "Ok"};
  };
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<full@example.com>\r\n"
         "RCPT TO:<gone@example.com>\r\nRCPT TO:<other@example.com>\r\n");
  auto lines = reply_lines(d.out);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[lines.size() - 4], "250 2.1.5 OK");
  EXPECT_EQ(lines[lines.size() - 3], "452 4.2.2 <full@example.com>: Recipient temporarily refused, try again later");
  EXPECT_EQ(lines[lines.size() - 2], "550 5.1.1 <gone@example.com>: Recipient address rejected by the mail server");
  EXPECT_EQ(lines[lines.size() - 1], "452 4.5.3 <other@example.com>: Try this recipient in a new transaction");
  EXPECT_EQ(d.out.find("backend.internal"), std::string::npos);
  ASSERT_EQ(d.backend.opened_routes.size(), 1u);  // one MAIL FROM for the transaction
  d.out.clear();
  d.feed("RSET\r\n");
  EXPECT_EQ(d.backend.releases, 1);
}

TEST(SessionTest, BackendUnreachableOrLost) {
  Driver d;
  d.backend.unreachable = true;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "451 4.4.1 <alice@example.com>: Temporary failure, try again later");
  d.out.clear();
  d.feed("DATA\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "554 5.5.1 Error: no valid recipients");

  Driver lost;
  lost.backend.lose_on_chunk = true;
  lost.start();
  lost.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  lost.out.clear();
  lost.feed("line one\r\n");
  lost.feed("line two\r\n.\r\n");
  EXPECT_EQ(reply_lines(lost.out).back(), "451 4.4.2 Error: connection to the mail server lost, try again later");
  EXPECT_TRUE(lost.backend.messages.empty());
}

TEST(SessionTest, ChunksWaitForTheBackend) {
  SessionConfig c = test_config();
  Session s(c, SessionInfo{"S1", "192.0.2.1"});
  s.start();
  Actions a = s.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  Verdict v = verdict_for("alice@example.com");
  a = s.on_verdicts({v});
  ASSERT_EQ(a.relay.size(), 1u);
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{250, "2.1.5", "Ok"}}, false});
  a = s.feed("DATA\r\n");
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{354, "", "go"}}, false});
  a = s.feed("first\r\n");
  ASSERT_EQ(a.relay.size(), 1u);
  EXPECT_EQ(a.relay[0].kind, RelayOp::Kind::kChunk);
  EXPECT_TRUE(s.waiting());
  // More input while the chunk is being written is buffered, not processed.
  a = s.feed("second\r\n");
  EXPECT_TRUE(a.relay.empty());
  EXPECT_EQ(s.buffered(), 8u);
  a = s.on_relay(RelayResult{});
  ASSERT_EQ(a.relay.size(), 1u);
  EXPECT_EQ(a.relay[0].bytes, "second\r\n");
  // The client goes idle mid-DATA: the back-end transaction is abandoned.
  a = s.on_relay(RelayResult{});
  a = s.on_timeout();
  ASSERT_EQ(a.relay.size(), 1u);
  EXPECT_EQ(a.relay[0].kind, RelayOp::Kind::kAbort);
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
  EXPECT_TRUE(d.backend.messages.empty());
  EXPECT_EQ(d.backend.rcpts.size(), 1u);
}

TEST(SessionTest, DataPipelinedBefore354IsASyncError) {
  Driver d;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: early\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "554 5.5.0 Error: SMTP protocol synchronization");
  EXPECT_TRUE(d.closed);
}

TEST(SessionTest, MessageTooBig) {
  SessionConfig c = test_config();
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

namespace doorman::edge {
namespace {

SessionConfig tls_config() {
  SessionConfig c = test_config();
  c.starttls = true;
  return c;
}

TEST(SessionStartTls, AdvertisedOnlyWhenConfiguredAndUntilActive) {
  Driver plain;
  plain.start();
  plain.feed("EHLO c\r\nSTARTTLS\r\n");
  EXPECT_EQ(plain.out.find("STARTTLS\r\n"), std::string::npos);
  EXPECT_EQ(reply_lines(plain.out).back(), "502 5.5.1 Error: command not implemented");
  EXPECT_EQ(plain.tls_handshakes, 0);

  Driver d(tls_config());
  d.start();
  d.feed("EHLO c\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "250 STARTTLS");
  d.out.clear();
  d.feed("STARTTLS\r\n");
  EXPECT_EQ(d.out, "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.tls_handshakes, 1);
  EXPECT_TRUE(d.session.tls_active());
  d.out.clear();
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.out.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(reply_lines(d.out).back(), "250 ENHANCEDSTATUSCODES");
  d.out.clear();
  d.feed("STARTTLS\r\n");
  EXPECT_EQ(d.out, "554 5.5.1 Error: TLS already active\r\n");
  EXPECT_EQ(d.tls_handshakes, 1);
}

TEST(SessionStartTls, PlaintextPipelinedAfterStartTlsIsDiscarded) {
  // The injection of CVE-2011-0411: commands sent with STARTTLS in one
  // plaintext packet must not run inside the TLS session. The shell reads
  // nothing more until the handshake, so what counts is one read holding
  // STARTTLS and more; bytes still in the socket then break the handshake.
  const std::string in = "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<alice@example.com>\r\n";
  for (size_t first : {in.size(), size_t{12}}) {  // one read; STARTTLS split over two reads
    Driver d(tls_config());
    d.start();
    d.feed(in, {first, in.size()});
    auto lines = reply_lines(d.out);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back(), "220 2.0.0 Ready to start TLS");
    EXPECT_EQ(d.tls_handshakes, 1);
    EXPECT_EQ(d.checks, 0);
    EXPECT_FALSE(d.session.in_transaction());
    EXPECT_EQ(d.session.buffered(), 0u);
    // The session starts over: MAIL before the new EHLO is out of sequence.
    d.out.clear();
    d.feed("MAIL FROM:<s@x.example>\r\n");
    EXPECT_EQ(d.out, "503 5.5.1 Error: send HELO/EHLO first\r\n");
  }
}

TEST(SessionStartTls, RefusalsAreFivexx) {
  Driver d(tls_config());
  d.start();
  d.out.clear();
  d.feed("STARTTLS\r\n");
  EXPECT_EQ(d.out, "503 5.5.1 Error: send EHLO first\r\n");
  d.out.clear();
  d.feed("EHLO c\r\nSTARTTLS foo\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "501 5.5.4 Syntax: STARTTLS");
  d.out.clear();
  d.feed("MAIL FROM:<>\r\nSTARTTLS\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "503 5.5.1 Error: MAIL transaction in progress");
  EXPECT_EQ(d.tls_handshakes, 0);
  EXPECT_EQ(d.session.stats().errors, 3u);
}

TEST(SessionStartTls, FailedHandshakeCloses) {
  Driver d(tls_config());
  d.tls_fails = true;
  d.start();
  d.feed("EHLO c\r\nSTARTTLS\r\nNOOP\r\n");
  EXPECT_TRUE(d.closed);
  EXPECT_TRUE(d.session.closed());
  EXPECT_EQ(reply_lines(d.out).back(), "220 2.0.0 Ready to start TLS");
}

TEST(SessionStartTls, ReceivedHeaderRecordsEsmtpsAndCipher) {
  Driver d(tls_config());
  d.start();
  d.feed("EHLO c\r\nSTARTTLS\r\n");
  d.feed("EHLO c2\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  d.feed("hi\r\n.\r\n");
  ASSERT_EQ(d.backend.messages.size(), 1u) << d.out;
  EXPECT_EQ(d.backend.messages[0],
            "Received: from c2 ([192.0.2.1])\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
            "\tby doorman.localdomain (Doorman) with ESMTPS id S1.1\r\n"
            "\tfor <alice@example.com>; Sat, 28 Nov 2026 02:00:00 +0000\r\nhi\r\n");
}


// ---- Issue #12: abuse and failure holes ----

namespace issue12 {

std::string batch(const std::vector<std::string>& rcpts) {
  std::string in = "EHLO c\r\nMAIL FROM:<s@remote.test>\r\n";
  for (const auto& r : rcpts) in += "RCPT TO:<" + r + ">\r\n";
  return in;
}

// MAIL + 200 RCPTs, unknown names with alice, bob and postmaster at 50, 120
// and 199: once the hard error limit is reached nothing more is answered, so
// the transcript is the same as for 200 unknown names.
TEST(SessionHardening, PipelinedBatchPastTheHardLimitRevealsNoMailbox) {
  for (const auto& split : splittings()) {
    std::vector<std::string> with_valid, all_unknown;
    for (int i = 1; i <= 200; ++i) {
      std::string u = "u" + std::to_string(i) + "@example.com";
      all_unknown.push_back(u);
      with_valid.push_back(i == 50 ? "alice@example.com" : i == 120 ? "bob@example.com" : i == 199 ? "postmaster@example.com" : u);
    }
    Driver a, b;
    a.start();
    b.start();
    a.feed(batch(with_valid), split);
    b.feed(batch(all_unknown), split);
    EXPECT_EQ(a.out, b.out);
    EXPECT_TRUE(a.closed);
    auto lines = reply_lines(a.out);
    // greeting, 5 EHLO lines, MAIL, 20 x 550, 421
    ASSERT_EQ(lines.size(), 1u + 5u + 1u + 20u + 1u);
    for (size_t i = 7; i < 27; ++i) EXPECT_EQ(lines[i].substr(0, 9), "550 5.1.1") << i;
    EXPECT_EQ(lines.back(), "421 4.7.0 doorman.localdomain Error: too many errors");
    EXPECT_EQ(a.out.find("alice"), std::string::npos);
    EXPECT_TRUE(a.backend.rcpts.empty());  // nothing reached the back-end
    EXPECT_EQ(a.checked.size(), 20u);      // nor the directory, past the limit
  }
}

// Property: whatever the verdicts after the recipient that reaches the hard
// limit, the replies are identical (random verdicts, random splittings).
TEST(SessionHardening, RepliesAfterTheHardLimitNeverDependOnVerdicts) {
  std::mt19937 rng(12);
  for (int round = 0; round < 300; ++round) {
    const int n = 30 + static_cast<int>(rng() % 60);
    std::vector<int> kinds(static_cast<size_t>(n));  // 0 unknown, 1 valid, 2 deferred
    for (auto& k : kinds) k = rng() % 3 == 0 ? static_cast<int>(rng() % 3) : 0;
    // Where the limit is reached: the 20th unknown (if any).
    int unknown = 0, limit_at = -1;
    for (int i = 0; i < n && limit_at < 0; ++i)
      if (kinds[static_cast<size_t>(i)] == 0 && ++unknown == 20) limit_at = i;
    std::vector<int> other = kinds;
    if (limit_at >= 0)
      for (int i = limit_at + 1; i < n; ++i) other[static_cast<size_t>(i)] = static_cast<int>(rng() % 3);
    std::vector<size_t> split;
    for (int i = 0; i < 20; ++i) split.push_back(1 + rng() % 200);
    auto run = [&](const std::vector<int>& k) {
      std::vector<std::string> rcpts;
      for (int i = 0; i < n; ++i) {
        int kind = k[static_cast<size_t>(i)];
        // The same name at each position: only the verdict differs.
        rcpts.push_back("r" + std::to_string(i) + "@example.com");
        (void)kind;
      }
      Driver d;
      d.directory = [k](const std::string& m) {
        int i = std::stoi(m.substr(1, m.find('@') - 1));
        switch (k[static_cast<size_t>(i)]) {
          case 1: return verdict_for("alice@example.com");
          case 2: return verdict_for("slow@example.com");
          default: return verdict_for(m);
        }
      };
      d.start();
      d.feed(batch(rcpts), split);
      return d.out;
    };
    std::string a = run(kinds), b = run(other);
    if (limit_at < 0) continue;
    // The output up to and including the limit reply may differ (verdicts
    // before the limit are answered); everything after it must not. Cut
    // both at the reply of the limit recipient: its text names r<limit_at>.
    const std::string marker = "<r" + std::to_string(limit_at) + "@example.com>";
    size_t pa = a.find(marker), pb = b.find(marker);
    ASSERT_NE(pa, std::string::npos) << "round " << round;
    ASSERT_NE(pb, std::string::npos) << "round " << round;
    EXPECT_EQ(a.substr(a.find('\n', pa)), b.substr(b.find('\n', pb))) << "round " << round;
    EXPECT_EQ(a.substr(a.find('\n', pa) + 1).rfind("421 4.7.0", 0), 0u) << "round " << round;
  }
}

// Framing errors after a pipelined RCPT reach the hard limit before the group
// was asked about: the session must still answer and close (it used to wait
// for a check that never started, forever).
TEST(SessionHardening, HardLimitWhileAGroupIsCollectedStillClosesTheSession) {
  for (const auto& split : splittings()) {
    Driver d;
    d.start();
    std::string in = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n";
    for (int i = 0; i < 20; ++i) in += "NOOP\n";  // bare LF: an error before any command is parsed
    d.feed(in, split);
    EXPECT_TRUE(d.closed);
    auto lines = reply_lines(d.out);
    EXPECT_EQ(lines.back(), "421 4.7.0 doorman.localdomain Error: too many errors");
    // In one write alice's verdict is never told; in pieces her group may
    // have been answered before the errors arrived.
    if (split.size() == 1 && split[0] > in.size()) {
      EXPECT_EQ(d.out.find("250 2.1.5"), std::string::npos);
    }
  }
}

// accept-all: the back-end's refusals are the harvest signal and count as
// errors too, pipelined or one at a time.
TEST(SessionHardening, BackendRefusalsCountTowardsTheHardLimit) {
  auto accept_all = [](const std::string& m) {
    Verdict v;
    v.decision = Verdict::Decision::kAccept;
    v.reply = Reply{250, "2.1.5", "OK"};
    v.route = {"127.0.0.1:2526"};
    (void)m;
    return v;
  };
  auto backend_knows_alice = [](const std::string& m) {
    return m.rfind("alice@", 0) == 0 ? Reply{250, "2.1.5", "Ok"} : Reply{550, "5.1.1", "User unknown"};
  };
  std::vector<std::string> rcpts;
  for (int i = 1; i <= 40; ++i) rcpts.push_back(i == 30 ? "alice@example.com" : "u" + std::to_string(i) + "@example.com");
  for (const auto& split : splittings()) {
    Driver d;
    d.directory = accept_all;
    d.backend.rcpt = backend_knows_alice;
    d.start();
    d.feed(batch(rcpts), split);
    EXPECT_TRUE(d.closed);
    auto lines = reply_lines(d.out);
    EXPECT_EQ(lines.back(), "421 4.7.0 doorman.localdomain Error: too many errors");
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("550", 0) == 0; }), 20);
    EXPECT_EQ(d.out.find("250 2.1.5"), std::string::npos);
  }
}

// Errors count in command order, the directory's and the back-end's alike:
// where the limit falls must not depend on a later recipient's verdict (a
// directory rejection after a relayed recipient used to be counted first).
TEST(SessionHardening, ErrorsCountInCommandOrderAcrossDirectoryAndBackend) {
  auto run = [](bool z_exists) {
    SessionConfig c = test_config();
    c.soft_error_limit = 100;
    c.hard_error_limit = 3;
    Driver d(c);
    d.directory = [z_exists](const std::string& m) {
      if (m.rfind("x@", 0) == 0 || (z_exists && m.rfind("z@", 0) == 0)) return verdict_for("alice@example.com");
      return verdict_for(m);
    };
    d.backend.rcpt = [](const std::string& m) {
      return m.rfind("x@", 0) == 0 ? Reply{550, "5.1.1", "User unknown"} : Reply{250, "2.1.5", "Ok"};
    };
    d.start();
    d.feed("EHLO c\r\nMAIL FROM:<>\r\n");
    d.feed("RCPT TO:<u1@example.com>\r\n");
    d.feed("RCPT TO:<u2@example.com>\r\n");
    d.feed("RCPT TO:<x@example.com>\r\nRCPT TO:<z@example.com>\r\n");
    EXPECT_TRUE(d.closed);
    return d.out;
  };
  const std::string unknown_z = run(false), existing_z = run(true);
  EXPECT_EQ(unknown_z, existing_z);
  EXPECT_EQ(reply_lines(unknown_z).back(), "421 4.7.0 doorman.localdomain Error: too many errors");
}

// With --max-recipients above the directory's 1000 per call, a long
// pipelined run of RCPTs is asked about in calls of at most 1000.
TEST(SessionHardening, LongRcptRunsAreSplitIntoCallsTheDirectoryTakes) {
  SessionConfig c = test_config();
  c.max_recipients = 5000;
  c.soft_error_limit = 100000;
  c.hard_error_limit = 100001;
  c.error_delay = std::chrono::milliseconds(0);
  Driver d(c);
  d.start();
  std::vector<std::string> rcpts(2500, "alice@example.com");
  d.feed(batch(rcpts));
  ASSERT_FALSE(d.group_sizes.empty());
  for (size_t n : d.group_sizes) EXPECT_LE(n, kMaxCheckGroup);
  EXPECT_EQ(d.checked.size(), 2500u);
  EXPECT_EQ(reply_lines(d.out).back(), "250 2.1.5 OK");
}

// A directory call never carries more recipients than the session has
// errors left.
TEST(SessionHardening, GroupsAreCappedByTheErrorsLeft) {
  Driver d;  // hard limit 20
  d.start();
  std::vector<std::string> rcpts(50, "alice@example.com");
  d.feed(batch(rcpts));
  for (size_t n : d.group_sizes) EXPECT_LE(n, 20u);
  Driver e;
  e.start();
  std::string in = "EHLO c\r\nMAIL FROM:<>\r\n";
  for (int i = 0; i < 15; ++i) in += "RCPT TO:<<bad\r\n";  // 15 errors
  for (int i = 0; i < 30; ++i) in += "RCPT TO:<alice@example.com>\r\n";
  e.feed(in);
  ASSERT_FALSE(e.group_sizes.empty());
  EXPECT_EQ(e.group_sizes[0], 5u);
}

// Past --junk-command-limit (100) each NOOP, RSET, VRFY or HELP counts as an
// error, so they cannot hold a session (or its back-end connection) forever.
TEST(SessionHardening, JunkCommandsCountPastTheirLimit) {
  Driver d;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster@example.com>\r\n");
  for (int i = 0; i < 100; ++i) d.feed("NOOP\r\n");
  EXPECT_FALSE(d.closed);
  for (int i = 0; i < 19; ++i) d.feed(i % 2 ? "VRFY x\r\n" : "NOOP\r\n");
  EXPECT_FALSE(d.closed);
  d.feed("NOOP\r\n");
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(label(d.end), "too_many_errors");
  EXPECT_EQ(d.backend.aborts, 1);  // the back-end transaction is given up
}

// As Postfix: the junk count starts over after a delivered message, so a
// legitimate sender with RSET between many transactions is never cut off.
TEST(SessionHardening, JunkCountStartsOverAfterADeliveredMessage) {
  Driver d;
  d.start();
  d.feed("EHLO c\r\n");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) d.feed("RSET\r\n");
    d.feed("MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
    d.feed("DATA\r\n");
    d.feed("Subject: x\r\n\r\nhi\r\n.\r\n");
  }
  EXPECT_FALSE(d.closed);
  EXPECT_EQ(d.backend.messages.size(), 3u);
}

// Accepted recipients whose back-end transaction was lost are never dropped
// silently by opening a new transaction for later ones.
TEST(SessionHardening, NoNewTransactionAfterTheBackendLostAcceptedRecipients) {
  SessionConfig c = test_config();
  Session s(c, SessionInfo{"S1", "192.0.2.1"});
  s.start();
  Actions a = s.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  a = s.on_verdicts({verdict_for("alice@example.com")});
  ASSERT_EQ(a.relay.size(), 1u);
  a = s.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{250, "2.1.5", "Ok"}}, false});
  EXPECT_NE(a.output.find("250 2.1.5"), std::string::npos);
  a = s.feed("DATA\r\n");  // the back-end is lost at DATA... no: lose it on the next RCPTs instead
  ASSERT_EQ(a.relay.size(), 1u);
  a = s.on_relay(RelayResult{RelayResult::Status::kLost, {}, false});
  EXPECT_NE(a.output.find("451 4.4.2"), std::string::npos);  // DATA: lost, transaction over
  // Same story with a second RCPT group after the loss:
  Session t(c, SessionInfo{"S2", "192.0.2.1"});
  t.start();
  a = t.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  a = t.on_verdicts({verdict_for("alice@example.com")});
  a = t.on_relay(RelayResult{RelayResult::Status::kOk, {Reply{250, "2.1.5", "Ok"}}, false});
  a = t.feed("RCPT TO:<bob@example.com>\r\n");
  a = t.on_verdicts({verdict_for("bob@example.com")});
  ASSERT_EQ(a.relay.size(), 1u);
  a = t.on_relay(RelayResult{RelayResult::Status::kLost, {}, false});  // bob's RCPT lost the connection
  EXPECT_NE(a.output.find("451 4.4.2 <bob@example.com>"), std::string::npos);
  a = t.feed("RCPT TO:<postmaster@example.com>\r\n");
  a = t.on_verdicts({verdict_for("postmaster@example.com")});
  for (const auto& op : a.relay) EXPECT_FALSE(op.kind == RelayOp::Kind::kRcpts && op.open) << "reopened";
  EXPECT_NE(a.output.find("451 4.4.2 <postmaster@example.com>"), std::string::npos) << a.output;
  a = t.feed("DATA\r\n");
  EXPECT_NE(a.output.find("451 4.4.2"), std::string::npos);
}

// The back-end went away mid-DATA: the rest of a 40 MB message is read and
// dropped; the session holds no more than one chunk.
TEST(SessionHardening, MemoryStaysBoundedAfterTheBackendDropsMidData) {
  Driver d;
  d.backend.lose_on_chunk = true;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  const std::string chunk = std::string(16382, 'x') + "\r\n";
  size_t most = 0;
  for (int i = 0; i < 40 * 64; ++i) {  // 40 MiB
    d.feed(chunk);
    most = std::max(most, d.session.held_bytes());
  }
  d.feed(".\r\n");
  EXPECT_LE(most, 2 * chunk.size());
  EXPECT_EQ(reply_lines(d.out).back(), "451 4.4.2 Error: connection to the mail server lost, try again later");
}

// RFC 5321 §4.5.1: a bare <Postmaster> is accepted without any
// configuration: the directory is asked about "postmaster" and resolves it.
TEST(SessionHardening, BarePostmasterGoesToTheDirectoryWithoutAConfiguredDomain) {
  Driver d;  // postmaster_domain is empty by default
  d.directory = [](const std::string& m) {
    return m == "postmaster" ? verdict_for("postmaster@example.com") : verdict_for(m);
  };
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n");
  EXPECT_EQ(reply_lines(d.out).back(), "250 2.1.5 OK");
  ASSERT_EQ(d.checked.size(), 1u);
  EXPECT_EQ(d.checked[0], "postmaster");
  ASSERT_EQ(d.backend.rcpts.size(), 1u);
  EXPECT_EQ(d.backend.rcpts[0], "postmaster");  // RCPT TO:<postmaster> to the back-end
}

TEST(SessionHardening, FullBackendsGive451_4_4_5) {
  Driver d;
  d.backend.busy = true;
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\n");
  EXPECT_EQ(reply_lines(d.out).back(),
            "451 4.4.5 <alice@example.com>: Too many connections to the mail server, try again later");
  EXPECT_FALSE(d.closed);
}

// Issue #17: the session says why it closed; nobody reads it from reply text.
TEST(SessionOutcomes, EveryCloseCarriesItsTypedReason) {
  struct Case {
    std::string input;
    SessionEnd end;
  };
  std::string errors = "EHLO c\r\n";
  for (int i = 0; i < 20; ++i) errors += "FOO\r\n";
  for (const Case& c : std::vector<Case>{
           {"EHLO c\r\nQUIT\r\n", SessionEnd::kClientQuit},
           {errors, SessionEnd::kTooManyErrors},
           {"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n", SessionEnd::kSyncError},
       }) {
    Driver d;
    d.start();
    d.feed(c.input);
    EXPECT_TRUE(d.closed) << c.input;
    EXPECT_EQ(label(d.end), label(c.end)) << c.input;
  }
  Driver idle;
  idle.start();
  idle.handle(idle.session.on_shutdown());
  EXPECT_EQ(label(idle.end), "shutdown");
  Driver slow;
  slow.start();
  slow.handle(slow.session.on_timeout());
  EXPECT_EQ(label(slow.end), "timeout");
}

// Issue #14, shadow mode: the directory passes a would-be refusal as an
// accept; the back-end's answer then decides and counts, as for any relayed
// recipient. The would-be refusal itself counts no error.
TEST(SessionShadow, WouldRejectGoesToTheBackendWhichDecides) {
  SessionConfig c = test_config();
  c.soft_error_limit = 1;
  c.hard_error_limit = 3;
  Driver d(c);
  d.directory = [](const std::string& mailbox) {
    Verdict v = verdict_for(mailbox);
    if (v.decision == Verdict::Decision::kReject && v.reply.enhanced == "5.1.1") {
      v = Verdict{};
      v.decision = Verdict::Decision::kAccept;
      v.reply = Reply{250, "2.1.5", "OK"};
      v.route = {"127.0.0.1:2526"};
      v.source = RcptSource::kList;
      v.why = RcptReason::kNotListed;
      v.would_reject = RcptReason::kNotListed;
      v.would_code = 550;
    }
    return v;
  };
  // The back-end knows ghost1..ghost5 (the list is incomplete) but not nobody.
  d.backend.rcpt = [](const std::string& m) {
    return m.rfind("nobody@", 0) == 0 ? Reply{550, "5.1.1", "no such user here"} : Reply{250, "2.1.5", "Ok"};
  };
  d.start();
  std::string in = "EHLO c\r\nMAIL FROM:<s@sender.example>\r\n";
  for (int i = 1; i <= 5; ++i) in += "RCPT TO:<ghost" + std::to_string(i) + "@example.com>\r\n";
  d.feed(in);
  EXPECT_FALSE(d.closed);  // five would-be refusals, no error counted
  EXPECT_EQ(d.session.stats().errors, 0u);
  EXPECT_EQ(d.total_delay.count(), 0);  // nor past the soft limit
  EXPECT_EQ(d.backend.rcpts.size(), 5u);
  ASSERT_EQ(d.decisions.size(), 5u);
  for (const auto& x : d.decisions) {
    EXPECT_EQ(x.verdict, RcptVerdict::kAccepted);
    EXPECT_EQ(x.reply.code, 250);
    EXPECT_EQ(label(x.reason), "shadow");
    ASSERT_TRUE(x.would_reject);
    EXPECT_EQ(label(*x.would_reject), "not_listed");
    EXPECT_EQ(x.would_code, 550);
    EXPECT_EQ(x.source, RcptSource::kList);
    EXPECT_EQ(x.sender, "s@sender.example");
  }
  // The back-end refuses this one: its 550 reaches the client and counts.
  d.feed("RCPT TO:<nobody@example.com>\r\n");
  EXPECT_NE(d.out.find("550 5.1.1 <nobody@example.com>: Recipient address rejected by the mail server"),
            std::string::npos)
      << d.out;
  EXPECT_EQ(d.session.stats().errors, 1u);
  ASSERT_EQ(d.decisions.size(), 6u);
  EXPECT_EQ(d.decisions.back().verdict, RcptVerdict::kRejected);
  EXPECT_EQ(label(d.decisions.back().reason), "backend_refused");
  EXPECT_EQ(d.decisions.back().source, RcptSource::kBackend);
  ASSERT_TRUE(d.decisions.back().would_reject);  // enforcement would have agreed
}

// Issue #14, the decision log: one decision per recipient, as the client
// got it, with the directory's reason and source.
TEST(SessionDecisionLog, OneDecisionPerRecipientWithReasonAndSource) {
  Driver d;
  d.directory = [](const std::string& mailbox) {
    Verdict v = verdict_for(mailbox);
    if (v.reply.enhanced == "5.1.1") {
      v.source = RcptSource::kCache;
      v.why = RcptReason::kCalloutUnknown;
      v.cache_age = std::chrono::milliseconds(95000);
    } else if (v.decision == Verdict::Decision::kAccept) {
      v.source = RcptSource::kList;
      v.why = RcptReason::kListed;
      v.source_name = "corp-ad";
    } else if (v.reply.enhanced == "5.7.1") {
      v.source = RcptSource::kPolicy;
      v.why = RcptReason::kRelayDenied;
    }
    return v;
  };
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
         "RCPT TO:<x@other.org>\r\n");
  ASSERT_EQ(d.decisions.size(), 3u);
  std::map<std::string, const RcptDecision*> by;
  for (const auto& x : d.decisions) by[x.mailbox] = &x;
  const RcptDecision& alice = *by.at("alice@example.com");
  EXPECT_EQ(alice.verdict, RcptVerdict::kAccepted);
  EXPECT_EQ(label(alice.reason), "listed");
  EXPECT_EQ(alice.source_name, "corp-ad");
  EXPECT_EQ(alice.sender, "");
  const RcptDecision& nobody = *by.at("nobody@example.com");
  EXPECT_EQ(nobody.verdict, RcptVerdict::kRejected);
  EXPECT_EQ(nobody.reply.code, 550);
  EXPECT_EQ(nobody.reply.enhanced, "5.1.1");
  EXPECT_EQ(label(nobody.reason), "callout_unknown");
  EXPECT_EQ(nobody.source, RcptSource::kCache);
  ASSERT_TRUE(nobody.cache_age);
  EXPECT_EQ(nobody.cache_age->count(), 95000);
  EXPECT_FALSE(nobody.would_reject);
  EXPECT_EQ(label(by.at("x@other.org")->reason), "relay_denied");
  // The directory unreachable: lookup_error, source error.
  Driver down;
  down.directory_down = true;
  down.start();
  down.feed("EHLO c\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.com>\r\n");
  ASSERT_EQ(down.decisions.size(), 1u);
  EXPECT_EQ(down.decisions[0].verdict, RcptVerdict::kDeferred);
  EXPECT_EQ(label(down.decisions[0].reason), "lookup_error");
  EXPECT_EQ(down.decisions[0].source, RcptSource::kError);
  EXPECT_EQ(down.decisions[0].sender, "s@x.example");
}

// The decision log follows the replies in command order: a directory
// refusal behind a relayed recipient is logged when it counts, after the
// back-end's answer for the one before it; past the hard limit nothing more
// is asked or logged.
TEST(SessionDecisionLog, DecisionsFollowCommandOrderAcrossDirectoryAndBackend) {
  SessionConfig c = test_config();
  c.soft_error_limit = 0;
  c.hard_error_limit = 2;
  Driver d(c);
  d.backend.rcpt = [](const std::string&) { return Reply{550, "5.1.1", "no"}; };
  d.start();
  d.feed("EHLO c\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
         "RCPT TO:<nobody2@example.com>\r\n");
  EXPECT_TRUE(d.closed);
  ASSERT_EQ(d.decisions.size(), 2u);
  EXPECT_EQ(d.decisions[0].mailbox, "alice@example.com");
  EXPECT_EQ(label(d.decisions[0].reason), "backend_refused");
  EXPECT_EQ(d.decisions[1].mailbox, "nobody@example.com");
  EXPECT_EQ(d.decisions[1].verdict, RcptVerdict::kRejected);
  EXPECT_EQ(d.decisions[1].sender, "s@x.example");
}

TEST(SessionOutcomes, LabelTablesAreComplete) {
  EXPECT_EQ(label(RcptSource::kLimit), "limit");
  EXPECT_EQ(label(RcptVerdict::kDeferred), "deferred");
  EXPECT_EQ(label(RelayOutcome::kAborted), "aborted");
  EXPECT_EQ(label(SessionEnd::kTlsFailed), "tls_failed");
  std::set<std::string_view> ends(kSessionEndLabels.begin(), kSessionEndLabels.end());
  EXPECT_EQ(ends.size(), kSessionEndLabels.size());  // no label twice
  EXPECT_EQ(label(RcptReason::kTooManyErrors), "too_many_errors");
  std::set<std::string_view> reasons(kRcptReasonLabels.begin(), kRcptReasonLabels.end());
  EXPECT_EQ(reasons.size(), kRcptReasonLabels.size());
}

}  // namespace issue12

}  // namespace
}  // namespace doorman::edge
