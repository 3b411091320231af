// PROXY protocol on the edge listener (issue #5): the real client address
// from the balancer's header is used; a connection without one is refused.
#include <gtest/gtest.h>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/smtp_client.h"
#include "tests/integration/stack.h"

namespace doorman::test {
namespace {

TEST(EdgeProxyProtocol, UsesTheHeaderAddressAndRefusesConnectionsWithoutOne) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  ASSERT_EQ(stack.start("domains:\n  - name: example.com\n    mode: list\n    routes: [\"127.0.0.1:" +
                            std::to_string(backend.port()) + "\"]\n    addresses: [alice]\n",
                        {"--proxy-protocol", "any", "--proxy-trusted-networks", "127.0.0.0/8,::1"}),
            "");
  SmtpClient c;
  ASSERT_TRUE(c.connect(stack.edge_port()));
  ASSERT_TRUE(c.send("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n"));
  EXPECT_EQ(c.reply(), "220 mx.test ESMTP Doorman");
  EXPECT_EQ(c.command("HELO client.test"), "250 mx.test");
  EXPECT_EQ(c.command("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok");
  EXPECT_EQ(c.command("RCPT TO:<alice@example.com>"), "250 2.1.5 OK");
  EXPECT_EQ(c.command("DATA").substr(0, 3), "354");
  c.send("Subject: via balancer\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(c.reply().substr(0, 3), "250");
  ASSERT_TRUE(backend.wait_for_transactions(1, std::chrono::seconds(5)));
  EXPECT_EQ(backend.transactions()[0].data.rfind("Received: from client.test ([203.0.113.9])", 0), 0u)
      << backend.transactions()[0].data;

  // No header: closed without a greeting.
  SmtpClient bare;
  ASSERT_TRUE(bare.connect(stack.edge_port()));
  ASSERT_TRUE(bare.send("EHLO sneaky.test\r\n"));
  EXPECT_EQ(bare.reply(2000), "");
  EXPECT_TRUE(bare.closed_by_peer());
  // A v2 LOCAL header (the balancer's own health check) keeps the socket address.
  SmtpClient local;
  ASSERT_TRUE(local.connect(stack.edge_port()));
  ASSERT_TRUE(local.send(std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16)));
  EXPECT_EQ(local.reply(), "220 mx.test ESMTP Doorman");
}

}  // namespace
}  // namespace doorman::test
