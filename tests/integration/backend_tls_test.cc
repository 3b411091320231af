// Issue #7, optional TLS to back-ends: the edge's live relay and the
// directory's callout probes say STARTTLS to a real Postfix, verify its
// certificate against our test CA, and defer (4xx) rather than fall back to
// plaintext when TLS is required and cannot be had.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/stack.h"
#include "tests/support/postfix_server.h"
#include "tests/support/smtp_client.h"
#include "tests/support/test_certs.h"

namespace doorman::test {
namespace {

class BackendTls : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!PostfixServer::available(&why)) GTEST_SKIP() << why;
    pki_ = make_test_pki(stack_.dir());
    ASSERT_TRUE(pki_.ok()) << pki_.error;
  }
  // A Postfix back-end for example.com (alice, bob); with TLS offered or not.
  void start_postfix(bool tls) {
    std::vector<std::string> extra;
    if (tls) {
      extra = {"smtpd_tls_cert_file = " + pki_.server_cert, "smtpd_tls_key_file = " + pki_.server_key,
               "smtpd_tls_security_level = may", "smtpd_tls_received_header = yes", "smtpd_tls_loglevel = 1"};
    }
    std::string err;
    ASSERT_TRUE(postfix_.start("example.com", {"alice", "bob"}, &err, extra)) << err;
  }
  void start_stack(const std::string& mode, const std::vector<std::string>& edge_args) {
    std::string domains = "domains:\n  - name: example.com\n    mode: " + mode + "\n    routes: [\"127.0.0.1:" +
                          std::to_string(postfix_.port()) + "\"]\n" + (mode == "list" ? "    addresses: [alice]\n" : "");
    ASSERT_EQ(stack_.start(domains, edge_args), "");
  }
  std::vector<std::string> verified(const std::string& prefix, const std::string& ca) {
    return {"--" + prefix + "-tls", "required", "--" + prefix + "-tls-verify", "--" + prefix + "-tls-ca-file", ca,
            "--" + prefix + "-tls-server-name", "localhost"};
  }
  std::string rcpt(const std::string& to) { return rcpt_in_new_session(stack_.edge_port(), to); }
  std::string deliver(const std::string& to) {
    SmtpClient c;
    if (!c.connect(stack_.edge_port())) return "connect failed";
    c.reply();
    c.command("EHLO client.test");
    c.command("MAIL FROM:<s@remote.test>");
    std::string r = c.command("RCPT TO:<" + to + ">");
    if (r.substr(0, 3) != "250") return r;
    r = c.command("DATA");
    if (r.substr(0, 3) != "354") return r;
    c.send("Subject: tls\r\n\r\nover TLS to the back-end\r\n.\r\n");
    return c.reply();
  }

  Stack stack_;
  PostfixServer postfix_;
  TestPki pki_;
};

TEST_F(BackendTls, RelayUsesVerifiedTlsToTheBackend) {
  start_postfix(true);
  start_stack("list", verified("backend", pki_.ca_cert));
  std::string r = deliver("alice@example.com");
  ASSERT_EQ(r.substr(0, 9), "250 2.0.0") << r << stack_.logs();
  ASSERT_TRUE(postfix_.wait_for_delivered(1, std::chrono::seconds(10))) << postfix_.log();
  std::string m = postfix_.delivered_messages("alice")[0];
  // Postfix's own Received header for the hop from the edge records TLS.
  EXPECT_NE(m.find("(using TLSv1.3 with cipher"), std::string::npos) << m;
  EXPECT_NE(postfix_.log().find("TLS connection established from"), std::string::npos);
}

TEST_F(BackendTls, RequiredTlsThatIsNotOfferedDefers) {
  start_postfix(false);
  start_stack("list", {"--backend-tls", "required"});
  EXPECT_EQ(rcpt("alice@example.com").substr(0, 9), "451 4.4.1") << stack_.logs();
  EXPECT_NE(stack_.edge().read_log().find("STARTTLS not offered"), std::string::npos);
  EXPECT_TRUE(postfix_.delivered_messages().empty());
}

TEST_F(BackendTls, OpportunisticTlsFallsBackToPlaintext) {
  start_postfix(false);
  start_stack("list", {"--backend-tls", "opportunistic"});
  std::string r = deliver("alice@example.com");
  EXPECT_EQ(r.substr(0, 9), "250 2.0.0") << r << stack_.logs();
}

TEST_F(BackendTls, CertificateFromAnotherCaIsRefused) {
  start_postfix(true);
  start_stack("list", verified("backend", pki_.dir + "/rogue-ca.pem"));
  EXPECT_EQ(rcpt("alice@example.com").substr(0, 9), "451 4.4.1") << stack_.logs();
  std::string log = stack_.edge().read_log();
  EXPECT_NE(log.find("backend_tls_failed"), std::string::npos) << log;
  EXPECT_NE(log.find("certificate"), std::string::npos) << log;
}

TEST_F(BackendTls, CalloutProbesUseVerifiedTls) {
  start_postfix(true);
  stack_.set_directory_args(verified("callout", pki_.ca_cert));
  start_stack("callout", {});
  EXPECT_EQ(rcpt("bob@example.com"), "250 2.1.5 OK") << stack_.logs();
  EXPECT_EQ(rcpt("nobody@example.com").substr(0, 9), "550 5.1.1") << stack_.logs();
  EXPECT_NE(postfix_.log().find("TLS connection established from"), std::string::npos) << postfix_.log();
}

TEST_F(BackendTls, CalloutWithRequiredTlsNotOfferedIsUndecided) {
  start_postfix(false);
  stack_.set_directory_args({"--callout-tls", "required", "--callout-wait", "500ms"});
  start_stack("callout", {});
  std::string r = rcpt("bob@example.com");
  EXPECT_EQ(r.substr(0, 1), "4") << r << stack_.logs();
  EXPECT_NE(stack_.directory().read_log().find("STARTTLS not offered"), std::string::npos) << stack_.logs();
}

}  // namespace
}  // namespace doorman::test
