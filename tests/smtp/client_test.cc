#include "smtp/client.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace doorman::smtp {
namespace {

using Kind = Client::Event::Kind;
using Failure = Client::Failure;

// How the server's bytes of one step reach the client.
enum class Split { kWhole, kBytes, kRandom };

class Feeder {
 public:
  explicit Feeder(Split split, unsigned seed = 1) : split_(split), rng_(seed) {}
  // Feeds `bytes` to `c` in this feeder's chunks; stops early when the client produced an event.
  void feed(Client& c, const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      size_t n = bytes.size() - off;
      if (split_ == Split::kBytes) n = 1;
      if (split_ == Split::kRandom) n = std::uniform_int_distribution<size_t>(1, n)(rng_);
      c.feed(std::string_view(bytes).substr(off, n));
      off += n;
    }
  }

 private:
  Split split_;
  std::mt19937 rng_;
};

const std::string kEhloPipelining = "250-backend.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";
const std::string kEhloTls = "250-backend.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";

class ClientTest : public ::testing::TestWithParam<Split> {
 protected:
  Feeder feeder_{GetParam(), 42};

  // Greeting and EHLO; returns the event that ends the opening.
  Client::Event open(Client& c, const std::string& ehlo_reply) {
    c.start();
    EXPECT_TRUE(c.wants_input());
    EXPECT_EQ(c.take_output(), "");
    feeder_.feed(c, "220 backend.test ESMTP\r\n");
    EXPECT_EQ(c.take_output(), "EHLO edge.test\r\n");
    feeder_.feed(c, ehlo_reply);
    return c.take_event();
  }
};

TEST_P(ClientTest, OpensAndLearnsTheExtensions) {
  Client c("edge.test", ClientTls::kNone);
  EXPECT_EQ(open(c, kEhloPipelining).kind, Kind::kOpen);
  EXPECT_TRUE(c.idle());
  EXPECT_TRUE(c.extensions().pipelining);
  EXPECT_TRUE(c.extensions().size);
  EXPECT_TRUE(c.extensions().eightbitmime);
  EXPECT_FALSE(c.extensions().starttls);
  EXPECT_FALSE(c.wants_input());
}

TEST_P(ClientTest, PipelinesATransactionWhenOffered) {
  Client c("edge.test", ClientTls::kNone);
  ASSERT_EQ(open(c, kEhloPipelining).kind, Kind::kOpen);
  c.transact({"MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>"});
  EXPECT_EQ(c.take_output(), "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n");
  feeder_.feed(c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 no such\r\n550 5.1.1 user\r\n");
  auto e = c.take_event();
  ASSERT_EQ(e.kind, Kind::kReplies);
  ASSERT_EQ(e.replies.size(), 3u);
  EXPECT_EQ(e.replies[0].code, 250);
  EXPECT_EQ(e.replies[1].enhanced, "2.1.5");
  EXPECT_EQ(e.replies[2].code, 550);
  EXPECT_EQ(e.replies[2].lines.size(), 2u);
  EXPECT_TRUE(c.idle());
}

TEST_P(ClientTest, SendsOneCommandAtATimeWithoutPipelining) {
  Client c("edge.test", ClientTls::kNone);
  ASSERT_EQ(open(c, "250 backend.test\r\n").kind, Kind::kOpen);
  c.transact({"MAIL FROM:<>", "RCPT TO:<b@y.test>"});
  EXPECT_EQ(c.take_output(), "MAIL FROM:<>\r\n");
  feeder_.feed(c, "250 Ok\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kNone);
  EXPECT_EQ(c.take_output(), "RCPT TO:<b@y.test>\r\n");
  feeder_.feed(c, "451 4.3.0 later\r\n");
  auto e = c.take_event();
  ASSERT_EQ(e.kind, Kind::kReplies);
  ASSERT_EQ(e.replies.size(), 2u);
  EXPECT_EQ(e.replies[1].code, 451);
}

TEST_P(ClientTest, FallsBackToHeloWhenEhloIsUnknown) {
  Client c("edge.test", ClientTls::kOpportunistic);
  c.start();
  feeder_.feed(c, "220 old.test\r\n");
  EXPECT_EQ(c.take_output(), "EHLO edge.test\r\n");
  feeder_.feed(c, "502 5.5.2 what?\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kNone);
  EXPECT_EQ(c.take_output(), "HELO edge.test\r\n");
  feeder_.feed(c, "250 old.test\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kOpen);
  EXPECT_TRUE(c.said_helo());
  EXPECT_FALSE(c.extensions().pipelining);
}

TEST_P(ClientTest, HeloOnlyServerFailsRequiredTls) {
  Client c("edge.test", ClientTls::kRequired);
  c.start();
  feeder_.feed(c, "220 old.test\r\n");
  (void)c.take_output();
  feeder_.feed(c, "500 unknown command\r\n");
  (void)c.take_output();
  feeder_.feed(c, "250 old.test\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kTls);
}

TEST_P(ClientTest, TemporaryEhloRefusalIsNotRetriedWithHelo) {
  Client c("edge.test", ClientTls::kNone);
  auto e = open(c, "421 4.3.2 going down\r\n");
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kRefused);
  EXPECT_EQ(e.detail, "EHLO 421");
  EXPECT_EQ(c.take_output(), "");
}

TEST_P(ClientTest, RefusedGreetingFails) {
  Client c("edge.test", ClientTls::kNone);
  c.start();
  feeder_.feed(c, "554 5.7.1 go away\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kRefused);
  EXPECT_EQ(c.take_output(), "");  // not even an EHLO
  EXPECT_TRUE(c.failed());
}

TEST_P(ClientTest, StartTlsThenEhloAgainForgettingThePlaintextExtensions) {
  Client c("edge.test", ClientTls::kRequired);
  c.start();
  feeder_.feed(c, "220 backend.test\r\n");
  (void)c.take_output();
  feeder_.feed(c, kEhloTls);
  EXPECT_EQ(c.take_event().kind, Kind::kNone);
  EXPECT_EQ(c.take_output(), "STARTTLS\r\n");
  feeder_.feed(c, "220 2.0.0 go ahead\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kStartTls);
  EXPECT_FALSE(c.wants_input());  // the handshake is the shell's
  c.tls_done(true);
  EXPECT_TRUE(c.tls_active());
  EXPECT_EQ(c.take_output(), "EHLO edge.test\r\n");
  EXPECT_FALSE(c.extensions().pipelining);
  feeder_.feed(c, "250-backend.test\r\n250 SIZE 10\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kOpen);
  EXPECT_FALSE(c.extensions().pipelining);  // offered only in plaintext
  EXPECT_TRUE(c.extensions().size);
}

TEST_P(ClientTest, PlaintextAfterTheStartTlsReplyIsRefused) {
  // CVE-2011-0411: a man in the middle appends a reply to the 220; it must
  // never be read as the server's answer to the EHLO sent inside TLS.
  Client c("edge.test", ClientTls::kOpportunistic);
  c.start();
  feeder_.feed(c, "220 backend.test\r\n");
  (void)c.take_output();
  feeder_.feed(c, kEhloTls);
  (void)c.take_output();
  c.feed("220 go ahead\r\n250-injected\r\n250 PIPELINING\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kProtocol);
}

TEST_P(ClientTest, RequiredTlsNotOfferedFails) {
  Client c("edge.test", ClientTls::kRequired);
  auto e = open(c, kEhloPipelining);
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kTls);
  EXPECT_EQ(e.detail, "STARTTLS not offered");
}

TEST_P(ClientTest, OpportunisticTlsCarriesOnWhenStartTlsIsRefused) {
  Client c("edge.test", ClientTls::kOpportunistic);
  c.start();
  feeder_.feed(c, "220 backend.test\r\n");
  (void)c.take_output();
  feeder_.feed(c, kEhloTls);
  EXPECT_EQ(c.take_output(), "STARTTLS\r\n");
  feeder_.feed(c, "454 4.7.0 TLS not available\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kOpen);
  EXPECT_EQ(c.starttls_refused(), 454);
  EXPECT_FALSE(c.tls_active());
  EXPECT_TRUE(c.extensions().pipelining);
}

TEST_P(ClientTest, RequiredTlsRefusedOrFailedHandshakeFails) {
  for (bool refused : {true, false}) {
    Client c("edge.test", ClientTls::kRequired);
    c.start();
    feeder_.feed(c, "220 backend.test\r\n");
    (void)c.take_output();
    feeder_.feed(c, kEhloTls);
    (void)c.take_output();
    if (refused) {
      feeder_.feed(c, "454 4.7.0 no\r\n");
    } else {
      feeder_.feed(c, "220 go\r\n");
      ASSERT_EQ(c.take_event().kind, Kind::kStartTls);
      c.tls_done(false, "certificate verify failed");
    }
    auto e = c.take_event();
    EXPECT_EQ(e.kind, Kind::kFailed) << refused;
    EXPECT_EQ(e.failure, Failure::kTls) << refused;
    EXPECT_EQ(c.take_output(), "") << refused;
  }
}

TEST_P(ClientTest, MalformedReplyFails) {
  Client c("edge.test", ClientTls::kNone);
  c.start();
  feeder_.feed(c, "2x0 hello\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kProtocol);
}

TEST_P(ClientTest, UnsolicitedReplyFails) {
  Client c("edge.test", ClientTls::kNone);
  ASSERT_EQ(open(c, kEhloPipelining).kind, Kind::kOpen);
  feeder_.feed(c, "250 nobody asked\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(e.failure, Failure::kProtocol);
}

TEST_P(ClientTest, ExtraReplyAfterATransactionFailsTheNextOne) {
  Client c("edge.test", ClientTls::kNone);
  ASSERT_EQ(open(c, kEhloPipelining).kind, Kind::kOpen);
  c.transact({"RSET"});
  (void)c.take_output();
  c.feed("250 Ok\r\n250 extra\r\n");
  EXPECT_EQ(c.take_event().kind, Kind::kReplies);  // the step it answered ends normally
  c.transact({"MAIL FROM:<>"});
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kFailed);
  EXPECT_EQ(c.take_output(), "");  // nothing sent to a confused server
}

TEST_P(ClientTest, RawDataThenItsReply) {
  Client c("edge.test", ClientTls::kNone);
  ASSERT_EQ(open(c, kEhloPipelining).kind, Kind::kOpen);
  c.send("Subject: x\r\n\r\nhello\r\n", 0);
  EXPECT_EQ(c.take_output(), "Subject: x\r\n\r\nhello\r\n");
  auto e = c.take_event();
  EXPECT_EQ(e.kind, Kind::kReplies);
  EXPECT_TRUE(e.replies.empty());
  c.send(".\r\n", 1);
  EXPECT_EQ(c.take_output(), ".\r\n");
  EXPECT_TRUE(c.wants_input());
  feeder_.feed(c, "250 2.0.0 queued as 1234\r\n");
  e = c.take_event();
  ASSERT_EQ(e.kind, Kind::kReplies);
  ASSERT_EQ(e.replies.size(), 1u);
  EXPECT_EQ(e.replies[0].reply().text, "queued as 1234");
}

TEST_P(ClientTest, CommandBeforeOpenFails) {
  Client c("edge.test", ClientTls::kNone);
  c.start();
  c.transact({"MAIL FROM:<>"});
  EXPECT_EQ(c.take_event().kind, Kind::kFailed);
  EXPECT_EQ(c.take_output(), "");
}

INSTANTIATE_TEST_SUITE_P(Splits, ClientTest, ::testing::Values(Split::kWhole, Split::kBytes, Split::kRandom),
                         [](const ::testing::TestParamInfo<Split>& param_info) {
                           switch (param_info.param) {
                             case Split::kWhole: return std::string("Whole");
                             case Split::kBytes: return std::string("ByteByByte");
                             default: return std::string("RandomChunks");
                           }
                         });

// Property: for random server conversations, the events do not depend on
// how the bytes were split.
TEST(ClientProperty, EventsDoNotDependOnTheSplit) {
  std::mt19937 rng(7);
  const std::vector<std::string> replies = {"250 Ok\r\n", "550 5.1.1 unknown\r\n", "451-4.3.0 a\r\n451 4.3.0 b\r\n",
                                            "421 4.4.2 bye\r\n", "25x broken\r\n"};
  for (int round = 0; round < 300; ++round) {
    bool pipelining = rng() % 2;
    size_t n = 1 + rng() % 5;
    std::vector<std::string> lines;
    std::string server;
    for (size_t i = 0; i < n; ++i) {
      lines.push_back("RCPT TO:<u" + std::to_string(i) + "@y.test>");
      server += replies[rng() % replies.size()];
    }
    auto run = [&](Split split, unsigned seed) {
      Client c("edge.test", ClientTls::kNone);
      Feeder f(split, seed);
      c.start();
      f.feed(c, "220 x\r\n");
      (void)c.take_output();
      f.feed(c, pipelining ? std::string("250-x\r\n250 PIPELINING\r\n") : std::string("250 x\r\n"));
      EXPECT_EQ(c.take_event().kind, Kind::kOpen);
      c.transact(lines);
      std::string written = c.take_output();
      f.feed(c, server);
      written += c.take_output();
      auto e = c.take_event();
      std::string trace = std::to_string(static_cast<int>(e.kind)) + "|" + written;
      for (const auto& r : e.replies) trace += "|" + std::to_string(r.code);
      return trace;
    };
    std::string whole = run(Split::kWhole, 0);
    EXPECT_EQ(run(Split::kBytes, 0), whole) << server;
    EXPECT_EQ(run(Split::kRandom, static_cast<unsigned>(round)), whole) << server;
  }
}

}  // namespace
}  // namespace doorman::smtp
