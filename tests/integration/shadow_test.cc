// Issue #14 end to end (real redis-server, doorman-directory, doorman-edge,
// doormanctl and a recording back-end on loopback): shadow mode passes an
// unknown recipient to the back-end, counts it, shows the count in
// `doormanctl domain list`, and refuses it once switched to enforce; the
// decision log has one line per recipient, with the address in clear, as a
// keyed hash that `doormanctl hash` reproduces, or not at all.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/integration/stack.h"
#include "tests/support/smtp_client.h"

namespace doorman::test {
namespace {

std::string domains(int backend_port, bool enforce) {
  return "domains:\n"
         "  - name: example.com\n"
         "    mode: list\n"
         "    routes: [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
         "    enforce: " + (enforce ? "true" : "false") + "\n"
         "    addresses: [alice]\n";
}

// The lines of `text` that contain every one of `needles`.
std::vector<std::string> lines_with(const std::string& text, const std::vector<std::string>& needles) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

class ShadowStack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.start());
    // The back-end knows ghost (the list is incomplete), not nobody.
    backend_.set_responder([](const std::string& line) -> std::optional<FakeAction> {
      if (line.find("RCPT TO:<nobody@") == 0) return FakeAction{"550 5.1.1 <nobody@example.com>: no such user\r\n"};
      return std::nullopt;
    });
  }
  std::string rcpt(const std::string& address) {
    SmtpClient c;
    if (!c.connect(stack_.edge_port())) return "connect failed";
    c.reply();
    c.command("EHLO client.test");
    c.command("MAIL FROM:<sender@remote.test>");
    std::string r = c.command("RCPT TO:<" + address + ">");
    c.command("QUIT");
    return r;
  }
  // Polls the edge's log until a line has every needle.
  std::vector<std::string> wait_log(const std::vector<std::string>& needles) {
    for (int i = 0; i < 100; ++i) {
      auto found = lines_with(stack_.edge().read_log(), needles);
      if (!found.empty()) return found;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }
  // Polls `doormanctl domain list` until its output has `needle`.
  std::string wait_list(const std::string& needle) {
    std::string out;
    for (int i = 0; i < 100; ++i) {
      out = stack_.ctl({"domain", "list"}).out;
      if (out.find(needle) != std::string::npos) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return out;
  }

  FakeSmtpServer backend_;
  Stack stack_;
};

TEST_F(ShadowStack, ShadowDomainPassesUnknownRecipientsAndCountsThemUntilEnforced) {
  ASSERT_EQ(stack_.start(domains(backend_.port(), false)), "");
  std::string list = stack_.ctl({"domain", "list"}).out;
  EXPECT_NE(list.find("enforce=false shadow_since=20"), std::string::npos) << list;
  EXPECT_NE(list.find("would_reject=0"), std::string::npos) << list;

  // Unknown to the list: accepted at RCPT, the back-end decides.
  EXPECT_EQ(rcpt("ghost@example.com"), "250 2.1.5 OK");
  EXPECT_EQ(rcpt("nobody@example.com").substr(0, 10), "550 5.1.1 ");
  EXPECT_EQ(rcpt("alice@example.com"), "250 2.1.5 OK");
  ASSERT_TRUE(backend_.wait_for_commands("RCPT", 3, std::chrono::seconds(5)));
  list = wait_list("would_reject=2");
  EXPECT_NE(list.find("example.com  mode=list"), std::string::npos) << list;
  EXPECT_NE(list.find("enforce=false shadow_since=20"), std::string::npos) << list;
  EXPECT_NE(list.find("would_reject=2"), std::string::npos) << list << stack_.logs();

  // The decision log: the pass, and the back-end's refusal of a would-be refusal.
  auto ghost = wait_log({"event=rcpt", "to=<ghost@example.com>"});
  ASSERT_EQ(ghost.size(), 1u) << stack_.logs();
  EXPECT_NE(ghost[0].find(" client=127.0.0.1 from=<sender@remote.test> to=<ghost@example.com> verdict=accepted "
                          "code=250 enhanced=2.1.5 reason=shadow source=list would_reject=not_listed would_code=550"),
            std::string::npos)
      << ghost[0];
  auto nobody = wait_log({"event=rcpt", "to=<nobody@example.com>"});
  ASSERT_EQ(nobody.size(), 1u);
  EXPECT_NE(nobody[0].find(" verdict=rejected code=550 enhanced=5.1.1 reason=backend_refused source=backend "
                           "would_reject=not_listed"),
            std::string::npos)
      << nobody[0];
  auto alice = wait_log({"event=rcpt", "to=<alice@example.com>"});
  ASSERT_EQ(alice.size(), 1u);
  EXPECT_NE(alice[0].find(" verdict=accepted code=250 enhanced=2.1.5 reason=listed source=list"), std::string::npos)
      << alice[0];
  EXPECT_EQ(alice[0].find("would_reject"), std::string::npos) << alice[0];
  // Explain says what enforcement would do.
  RunResult explain = stack_.ctl({"explain", "ghost@example.com"});
  EXPECT_NE(explain.out.find("shadow: example.com does not enforce"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("would_reject=\"550 5.1.1\""), std::string::npos) << explain.out;

  // Enforce: the same recipient is refused at the door.
  RunResult r = stack_.ctl({"domain", "update", "example.com", "--enforce"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enforce=true"), std::string::npos) << r.out;
  EXPECT_EQ(rcpt("ghost@example.com"), "550 5.1.1 <ghost@example.com>: Recipient address rejected: User unknown");
  list = stack_.ctl({"domain", "list"}).out;
  EXPECT_NE(list.find("enforce=true"), std::string::npos) << list;
  EXPECT_EQ(list.find("would_reject"), std::string::npos) << list;
  auto refused = wait_log({"event=rcpt", "to=<ghost@example.com>", "verdict=rejected"});
  ASSERT_EQ(refused.size(), 1u) << stack_.logs();
  EXPECT_NE(refused[0].find(" code=550 enhanced=5.1.1 reason=not_listed source=list"), std::string::npos)
      << refused[0];

  // Shadow mode again: the count starts over.
  r = stack_.ctl({"domain", "update", "example.com", "--shadow"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enforce=false shadow_since=20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("would_reject=0"), std::string::npos) << r.out;
  EXPECT_EQ(rcpt("ghost@example.com"), "250 2.1.5 OK");
  list = wait_list("would_reject=1");
  EXPECT_NE(list.find("would_reject=1"), std::string::npos) << list;
}

TEST_F(ShadowStack, DecisionLogShowsTheRecipientClearHashedOrNot) {
  ASSERT_EQ(stack_.start(domains(backend_.port(), true)), "");
  // clear (the default)
  EXPECT_EQ(rcpt("Nobody-Clear@Example.com").substr(0, 10), "550 5.1.1 ");
  auto clear = wait_log({"event=rcpt", "to=<Nobody-Clear@Example.com>"});
  ASSERT_EQ(clear.size(), 1u) << stack_.logs();
  EXPECT_NE(clear[0].find(" verdict=rejected code=550 enhanced=5.1.1 reason=not_listed source=list"),
            std::string::npos)
      << clear[0];
  EXPECT_NE(clear[0].find(" session="), std::string::npos);

  // hash: the edge and doormanctl share the key file
  const std::string key = stack_.dir() + "/log-key";
  std::ofstream(key) << "a-site-secret-of-at-least-16-bytes\n";
  ASSERT_EQ(stack_.stop_edge(), 0);
  ASSERT_EQ(stack_.start_edge({"--log-recipients", "hash", "--log-recipients-key-file", key}), "");
  EXPECT_EQ(rcpt("Nobody-Hash@Example.com").substr(0, 10), "550 5.1.1 ");
  RunResult h = stack_.ctl({"hash", "--key-file", key, "nobody-hash@example.com"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  const std::string hash = h.out.substr(0, h.out.find(' '));
  ASSERT_EQ(hash.size(), 16u) << h.out;
  auto hashed = wait_log({"event=rcpt", "to_hash=" + hash});
  ASSERT_EQ(hashed.size(), 1u) << h.out << stack_.logs();
  EXPECT_NE(hashed[0].find(" to_domain=example.com verdict=rejected code=550 enhanced=5.1.1 reason=not_listed"),
            std::string::npos)
      << hashed[0];
  EXPECT_NE(hashed[0].find(" from_hash="), std::string::npos) << hashed[0];
  EXPECT_EQ(stack_.edge().read_log().find("obody-hash"), std::string::npos);  // nowhere in the edge's log
  EXPECT_EQ(stack_.edge().read_log().find("obody-Hash"), std::string::npos);
  // Another key gives another hash; the wrong key finds nothing.
  const std::string other = stack_.dir() + "/other-key";
  std::ofstream(other) << "another-secret-of-at-least-16-bytes\n";
  RunResult wrong = stack_.ctl({"hash", "--key-file", other, "nobody-hash@example.com"});
  ASSERT_EQ(wrong.exit_code, 0) << wrong.err;
  EXPECT_EQ(wrong.out.find(hash), std::string::npos);

  // none: the domain only
  ASSERT_EQ(stack_.stop_edge(), 0);
  ASSERT_EQ(stack_.start_edge({"--log-recipients", "none"}), "");
  const size_t before = lines_with(stack_.edge().read_log(), {"event=rcpt", "to_domain=example.com"}).size();
  EXPECT_EQ(rcpt("Nobody-None@Example.com").substr(0, 10), "550 5.1.1 ");
  std::vector<std::string> none;
  for (int i = 0; i < 100 && none.size() <= before; ++i) {
    none = lines_with(stack_.edge().read_log(), {"event=rcpt", "to_domain=example.com"});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(none.size(), before + 1) << stack_.logs();
  EXPECT_NE(none.back().find(" verdict=rejected code=550 enhanced=5.1.1 reason=not_listed source=list"),
            std::string::npos)
      << none.back();
  EXPECT_EQ(none.back().find("hash"), std::string::npos) << none.back();
  EXPECT_EQ(stack_.edge().read_log().find("obody-None"), std::string::npos);

  // A key too short or missing stops the edge at start-up with a clear error.
  ASSERT_EQ(stack_.stop_edge(), 0);
  RunResult bad = run({DOORMAN_EDGE_BIN, "--log-recipients", "hash"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("log-recipients-key-file"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace doorman::test
