// The edge's /metrics, /healthz and /readyz on a real process, after a known
// traffic mix (issue #6 edge side; /readyz for the Kubernetes probes of #5).
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/smtp_client.h"
#include "tests/integration/stack.h"
#include "tests/support/http_get.h"

namespace doorman::test {
namespace {

TEST(EdgeMetrics, CountsAKnownTrafficMixAndReportsReadiness) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  int http = free_tcp_port();
  ASSERT_EQ(stack.start("domains:\n  - name: example.com\n    mode: list\n    routes: [\"127.0.0.1:" +
                            std::to_string(backend.port()) + "\"]\n    addresses: [alice, bob]\n",
                        {"--http-listen", "127.0.0.1:" + std::to_string(http)}),
            "");
  ASSERT_TRUE(wait_for_port(http, std::chrono::seconds(5)));
  EXPECT_EQ(http_get(http, "/healthz").status, 200);
  EXPECT_EQ(http_get(http, "/readyz").status, 200);
  EXPECT_EQ(http_get(http, "/nope").status, 404);

  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  c.reply();
  c.command("EHLO client.test");
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>").substr(0, 3), "250");
  EXPECT_EQ(c.command("RCPT TO:<bob@example.com>").substr(0, 3), "250");
  EXPECT_EQ(c.command("RCPT TO:<nobody@example.com>").substr(0, 3), "550");
  EXPECT_EQ(c.command("RCPT TO:<x@other.test>").substr(0, 3), "550");
  EXPECT_EQ(c.command("RCPT TO:<y@other.test>").substr(0, 3), "550");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: m\r\n\r\nhello\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  EXPECT_EQ(c.command("QUIT").substr(0, 3), "221");
  ASSERT_TRUE(c.closed_by_peer());

  std::string m;
  for (int i = 0; i < 50; ++i) {  // the session_end accounting follows the close
    m = http_get(http, "/metrics").body;
    if (metric_value(m, "doorman_edge_sessions_total{end=\"client_quit\"}") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(metric_value(m, "doorman_edge_recipients_total{verdict=\"accepted\",source=\"list\"}"), 2) << m;
  EXPECT_EQ(metric_value(m, "doorman_edge_recipients_total{verdict=\"rejected\",source=\"list\"}"), 1);
  EXPECT_EQ(metric_value(m, "doorman_edge_recipients_total{verdict=\"rejected\",source=\"policy\"}"), 2);
  EXPECT_EQ(metric_value(m, "doorman_edge_relay_transactions_total{outcome=\"delivered\"}"), 1);
  EXPECT_EQ(metric_value(m, "doorman_edge_commands_total{command=\"rcpt\"}"), 5);
  EXPECT_EQ(metric_value(m, "doorman_edge_directory_requests_total{result=\"ok\"}"), 5);
  EXPECT_EQ(metric_value(m, "doorman_edge_relay_duration_seconds_count"), 1);
  EXPECT_GT(metric_value(m, "doorman_edge_relay_bytes_total"), 20);
  EXPECT_EQ(metric_value(m, "doorman_edge_sessions_total{end=\"client_quit\"}"), 1);
  EXPECT_EQ(metric_value(m, "doorman_edge_sessions_active"), 0);
  EXPECT_EQ(metric_value(m, "doorman_edge_build_info{version=\"0.1.0\"}"), 1);
  EXPECT_EQ(m.find("example.com"), std::string::npos);  // no addresses or domains in labels
  // One summary line per transaction in the edge's log.
  std::string elog = stack.edge().read_log();
  EXPECT_NE(elog.find("event=transaction session="), std::string::npos) << elog;
  EXPECT_NE(elog.find("rcpt_accepted=2 rcpt_rejected=3 rcpt_deferred=0 result=delivered code=250 size=21"),
            std::string::npos)
      << elog;
  EXPECT_EQ(m.find("127.0.0.1"), std::string::npos);

  // Draining: not ready any more, while a transaction in progress may finish.
  SmtpClient busy;
  ASSERT_TRUE(busy.connect(stack.edge_port()));
  busy.reply();
  busy.command("EHLO client.test");
  EXPECT_EQ(busy.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  ASSERT_TRUE(stack.edge().signal(SIGTERM));
  int status = 0;
  for (int i = 0; i < 50 && status != 503; ++i) {
    status = http_get(http, "/readyz").status;
    if (status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 503);
  EXPECT_EQ(metric_value(http_get(http, "/metrics").body, "doorman_edge_draining"), 1);
  EXPECT_EQ(busy.command("RCPT TO:<alice@example.com>").substr(0, 3), "250");
  EXPECT_EQ(busy.command("RSET").substr(0, 3), "250");
  EXPECT_EQ(busy.command("NOOP").substr(0, 9), "421 4.3.2");
  EXPECT_EQ(stack.edge().wait(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace doorman::test
