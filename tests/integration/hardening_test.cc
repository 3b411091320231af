// Issue #12, "safe on port 25", against real processes on loopback: a real
// redis-server, directory and edge (tests/integration/stack.h), the greet
// pause on as by default, and a recording fake back-end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/integration/stack.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"
#include "tests/support/smtp_client.h"

namespace doorman::test {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kGreetPauseOn = {"--greet-pause-ms", "300"};  // the default

std::string list_domain(int backend_port, const std::string& addresses = "[alice, bob, carol]") {
  return "domains:\n  - name: example.com\n    mode: list\n    routes: [\"127.0.0.1:" + std::to_string(backend_port) +
         "\"]\n    addresses: " + addresses + "\n";
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every reply until the server closes the connection (or 15 s pass).
std::vector<std::string> replies_until_closed(SmtpClient& c) {
  std::vector<std::string> out;
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    std::string r = c.reply(3000);
    if (r.empty()) break;
    out.push_back(r);
  }
  return out;
}

int64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

bool wait_for_log(Stack& stack, const std::string& needle, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (stack.edge().read_log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Item 1, as reproduced by hand: MAIL plus 200 RCPTs in one write, alice,
// bob and carol at 50, 120 and 199. Past the hard error limit (20) nothing
// is answered, so nothing tells which mailboxes exist.
TEST(Hardening, OnePipelinedBatchRevealsNoMailbox) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), kGreetPauseOn), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  std::string batch = "EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\n";
  for (int i = 1; i <= 200; ++i) {
    std::string who = i == 50 ? "alice" : i == 120 ? "bob" : i == 199 ? "carol" : "nobody" + std::to_string(i);
    batch += "RCPT TO:<" + who + "@example.com>\r\n";
  }
  ASSERT_TRUE(c.send(batch));
  std::vector<std::string> r = replies_until_closed(c);
  ASSERT_EQ(r.size(), 1u + 1u + 20u + 1u) << stack.logs();
  EXPECT_EQ(r[1], "250 2.1.0 Ok");
  for (size_t i = 2; i < 22; ++i) EXPECT_EQ(r[i].substr(0, 9), "550 5.1.1") << r[i];
  EXPECT_EQ(r.back(), "421 4.7.0 mx.test Error: too many errors");
  for (const auto& line : r) {
    EXPECT_EQ(line.find("alice"), std::string::npos);
    EXPECT_EQ(line.find("bob"), std::string::npos);
    EXPECT_EQ(line.find("carol"), std::string::npos);
  }
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(backend.rcpt_commands(), 0u);
}

// The same limit one RCPT at a time: after the 20th unknown the session ends.
TEST(Hardening, OneAtATimeTheHardLimitEndsTheSession) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), with(kGreetPauseOn, {"--error-delay-ms", "0"})), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  c.command("EHLO client.test");
  c.command("MAIL FROM:<s@remote.test>");
  for (int i = 1; i < 20; ++i) ASSERT_EQ(c.command("RCPT TO:<n" + std::to_string(i) + "@example.com>").substr(0, 3), "550");
  EXPECT_EQ(c.command("RCPT TO:<n20@example.com>").substr(0, 3), "550");
  EXPECT_EQ(c.reply(), "421 4.7.0 mx.test Error: too many errors");
  EXPECT_TRUE(c.closed_by_peer());
}

// Item 2: with the greet pause on, a client that reads the greeting and then
// says nothing is timed out like any other idle client.
TEST(Hardening, SilentClientAfterTheGreetPauseIsTimedOut) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), with(kGreetPauseOn, {"--idle-timeout-seconds", "2"})), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  EXPECT_EQ(c.reply(8000), "421 4.4.2 mx.test Error: timeout exceeded") << stack.logs();
  EXPECT_TRUE(c.closed_by_peer());
}

// A client that pipelines commands and never reads the replies: once the
// replies cannot be written for a whole idle timeout, the session is closed.
TEST(Hardening, ClientThatStopsReadingIsClosed) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), {"--idle-timeout-seconds", "2"}), "");
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(stack.edge_port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  // EHLO: a long reply, and not a junk command (NOOPs would end the session
  // at the junk and error limits before the buffers fill).
  std::string noops;
  for (int i = 0; i < 2000; ++i) noops += "EHLO client.test\r\n";
  // Write until the edge stops reading (its replies are stuck behind ours).
  auto stalled_since = std::chrono::steady_clock::now();
  const auto give_up = stalled_since + 20s;
  size_t sent = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    ssize_t n = ::send(fd, noops.data(), noops.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      stalled_since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - stalled_since > 500ms) {
      break;
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_GT(sent, 100000u);
  EXPECT_TRUE(wait_for_log(stack, "detail=\"write timeout\"", 15s) || wait_for_log(stack, "detail=write timeout", 1s))
      << stack.edge().read_log().substr(0, 4000);
  ::close(fd);
}

// Item 3: the back-end drops the connection early in DATA; the client goes on
// sending 40 MB. The edge reads and drops it: its memory does not grow with it.
TEST(Hardening, EdgeMemoryStaysBoundedWhileAClientStreamsAfterTheBackendWentAway) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  backend.set_close_during_data_after(1000);
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), kGreetPauseOn), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  c.command("EHLO client.test");
  c.command("MAIL FROM:<s@remote.test>");
  ASSERT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  ASSERT_EQ(c.command("DATA").substr(0, 3), "354");
  const pid_t pid = stack.edge().pid();
  const int64_t before = rss_kib(pid);
  ASSERT_GT(before, 0);
  const std::string line = std::string(998, 'x') + "\r\n";
  std::string mib;
  while (mib.size() < (1u << 20)) mib += line;
  int64_t most = before;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.send(mib));
    most = std::max(most, rss_kib(pid));
  }
  ASSERT_TRUE(c.send(".\r\n"));
  EXPECT_EQ(c.reply(10000), "451 4.4.2 Error: connection to the mail server lost, try again later");
  most = std::max(most, rss_kib(pid));
  // 40 MiB went through; what the edge kept is a few reads' worth.
  EXPECT_LT(most - before, 16 * 1024) << "RSS before " << before << " KiB, peak " << most << " KiB";
}

// Item 6: at most --backend-max-connections transactions hold a back-end
// connection; the next recipient is deferred with 451 4.4.5 until one ends.
TEST(Hardening, BackendConnectionsAreCappedPerBackend) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  const int http = free_tcp_port();
  ASSERT_EQ(stack.start(list_domain(backend.port()),
                        {"--backend-max-connections", "2", "--http-listen", "127.0.0.1:" + std::to_string(http)}),
            "");
  SmtpClient s[3];
  for (auto& c : s) {
    ASSERT_TRUE(c.connect(stack.edge_port()));
    ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
    c.command("EHLO client.test");
    ASSERT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  }
  EXPECT_EQ(s[0].command("RCPT TO:<postmaster@example.com>"), "250 2.1.5 OK");
  EXPECT_EQ(s[1].command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  EXPECT_EQ(s[2].command("RCPT TO:<bob@example.com>"),
            "451 4.4.5 <bob@example.com>: Too many connections to the mail server, try again later");
  std::string m = http_get(http, "/metrics").body;
  EXPECT_EQ(metric_value(m, "doorman_edge_backend_connections_active"), 2);
  EXPECT_EQ(metric_value(m, "doorman_edge_backend_limit_refusals_total"), 1);
  EXPECT_EQ(backend.connections(), 2u);
  // One transaction ends: its connection is free for the waiting session.
  EXPECT_EQ(s[0].command("RSET"), "250 2.0.0 Ok");
  EXPECT_EQ(s[2].command("RCPT TO:<bob@example.com>"), "250 2.1.5 OK");
  s[1].command("QUIT");
  s[1].close();
  for (int i = 0; i < 50 && metric_value(http_get(http, "/metrics").body, "doorman_edge_backend_connections_active") != 1; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(metric_value(http_get(http, "/metrics").body, "doorman_edge_backend_connections_active"), 1);
}

// A back-end that refuses MAIL FROM gives its connection (and the session's
// count against --backend-max-connections) back at once.
TEST(Hardening, RefusedMailFromReleasesTheBackendConnection) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  std::atomic<int> mails{0};
  backend.set_responder([&mails](const std::string& line) -> std::optional<FakeAction> {
    if (line.rfind("MAIL", 0) == 0 && mails.fetch_add(1) == 0)
      return FakeAction{std::string("451 4.3.0 Try again\r\n"), std::chrono::milliseconds(0), false};
    return std::nullopt;
  });
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), {"--backend-max-connections", "1"}), "");
  SmtpClient a, b;
  for (SmtpClient* c : {&a, &b}) {
    ASSERT_TRUE(c->connect(stack.edge_port()));
    ASSERT_EQ(c->reply(), "220 mx.test ESMTP Doorman");
    c->command("EHLO client.test");
    c->command("MAIL FROM:<s@remote.test>");
  }
  EXPECT_EQ(a.command("RCPT TO:<alice@example.com>").substr(0, 3), "451");  // MAIL refused by the back-end
  EXPECT_EQ(b.command("RCPT TO:<bob@example.com>"), "250 2.1.5 OK");        // the one connection is free
}

// Item 8: PROXY headers only from trusted peers.
TEST(Hardening, ProxyHeaderFromAnUntrustedPeerIsRefused) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  const int http = free_tcp_port();
  ASSERT_EQ(stack.start(list_domain(backend.port()),
                        {"--proxy-protocol", "any", "--proxy-trusted-networks", "10.0.0.0/8, fd00::/8",
                         "--http-listen", "127.0.0.1:" + std::to_string(http)}),
            "");
  auto refused = [&](double want) {  // polls: the edge counts on its own thread
    double v = -1;
    for (int i = 0; i < 50 && (v = metric_value(http_get(http, "/metrics").body, "doorman_edge_proxy_untrusted_total")) != want; ++i)
      std::this_thread::sleep_for(100ms);
    return v;
  };
  EXPECT_EQ(refused(1), 1);  // the stack's own readiness probe (one connect)
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  c.send("PROXY TCP4 198.51.100.7 192.0.2.1 40000 25\r\n");  // 127.0.0.1 may not say who the client is
  EXPECT_EQ(c.reply(2000), "");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(refused(2), 2);

  // Without a trusted list the edge does not start.
  RunResult r = run({DOORMAN_EDGE_BIN, "--proxy-protocol", "v2", "--listen", "127.0.0.1:0", "--http-listen="}, 10s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("proxy-trusted-networks is required"), std::string::npos) << r.err;
  r = run({DOORMAN_EDGE_BIN, "--proxy-protocol", "v2", "--proxy-trusted-networks", "10.0.0.1/8", "--listen",
           "127.0.0.1:0", "--http-listen="},
          10s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("host bits"), std::string::npos) << r.err;
}

// Item 8: IPv6 clients count per /64 for the per-IP session limit.
TEST(Hardening, Ipv6ClientsCountPerPrefix) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), {"--proxy-protocol", "v1", "--proxy-trusted-networks",
                                                      "127.0.0.0/8", "--max-sessions-per-ip", "1"}),
            "");
  auto open = [&](SmtpClient& c, const std::string& ip) {
    if (!c.connect(stack.edge_port())) return std::string("no connection");
    c.send("PROXY TCP6 " + ip + " 2001:db8::25 40000 25\r\n");
    return c.reply();
  };
  SmtpClient a, b, other;
  EXPECT_EQ(open(a, "2001:db8:1:2::1"), "220 mx.test ESMTP Doorman");
  EXPECT_EQ(open(b, "2001:db8:1:2:ffff:ffff:ffff:fffe"), "421 4.7.0 mx.test Error: too many connections from your address");
  EXPECT_EQ(open(other, "2001:db8:1:3::1"), "220 mx.test ESMTP Doorman");  // another /64
}

// Item 10, RFC 5321 §4.5.1: a bare <Postmaster> is accepted with no
// configuration at all: the directory resolves it to the first guarded
// domain, and the back-end gets RCPT TO:<postmaster>.
TEST(Hardening, BarePostmasterIsAcceptedByDefault) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start(list_domain(backend.port()), kGreetPauseOn), "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  c.command("EHLO client.test");
  c.command("MAIL FROM:<s@remote.test>");
  EXPECT_EQ(c.command("RCPT TO:<Postmaster>"), "250 2.1.5 OK") << stack.logs();
  ASSERT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: hello postmaster\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  ASSERT_TRUE(backend.wait_for_transactions(1, 5s));
  ASSERT_EQ(backend.transactions()[0].rcpts.size(), 1u);
  EXPECT_EQ(backend.transactions()[0].rcpts[0], "<postmaster>");
}

}  // namespace
}  // namespace doorman::test
