// Issue #7, STARTTLS on the edge, with real clients: `openssl s_client
// -starttls smtp`, `swaks --tls`, and a Python ssl client for the plaintext
// injection of CVE-2011-0411. Certificates come from a throwaway CA
// (tests/support/test_certs.h); the relayed message goes to the recording
// fake back-end, so the Received header can be checked.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/integration/stack.h"
#include "tests/support/http_get.h"
#include "tests/support/test_certs.h"

namespace doorman::test {
namespace {

class StartTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.start());
    pki_ = make_test_pki(stack_.dir());
    ASSERT_TRUE(pki_.ok()) << pki_.error;
    // The edge reads a copy, so that the tests can rotate it.
    cert_ = stack_.dir() + "/tls.crt";
    key_ = stack_.dir() + "/tls.key";
    ASSERT_EQ(run({"cp", pki_.server_cert, cert_}).exit_code, 0);
    ASSERT_EQ(run({"cp", pki_.server_key, key_}).exit_code, 0);
    http_ = free_tcp_port();
    std::string domains = "domains:\n  - name: example.com\n    mode: list\n    routes: [\"127.0.0.1:" +
                          std::to_string(backend_.port()) + "\"]\n    addresses: [alice]\n";
    ASSERT_EQ(stack_.start(domains, {"--tls-cert-file", cert_, "--tls-key-file", key_, "--tls-reload-check-seconds",
                                     "1", "--tls-handshake-timeout-seconds", "2", "--http-listen", "127.0.0.1:" + std::to_string(http_)}),
              "");
  }

  // openssl s_client -starttls smtp, commands on stdin (-crlf), verifying
  // the server against our CA.
  RunResult s_client(const std::string& commands, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"openssl", "s_client", "-starttls", "smtp", "-connect",
                                  "127.0.0.1:" + std::to_string(stack_.edge_port()), "-CAfile", pki_.ca_cert,
                                  "-verify_return_error", "-verify_hostname", "localhost", "-crlf", "-ign_eof"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, std::chrono::seconds(20), commands);
  }

  double metric(const std::string& series) { return metric_value(http_get(http_, "/metrics").body, series); }

  FakeSmtpServer backend_;
  Stack stack_;
  TestPki pki_;
  std::string cert_, key_;
  int http_ = 0;
};

TEST_F(StartTls, OpensslClientVerifiesAndGetsVerdictsInsideTls) {
  RunResult r = s_client("EHLO c.test\nMAIL FROM:<s@remote.test>\nRCPT TO:<alice@example.com>\n"
                         "RCPT TO:<nobody@example.com>\nSTARTTLS\nQUIT\n");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Verify return code: 0 (ok)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Protocol  : TLSv1.3"), std::string::npos) << r.out;
  // STARTTLS is no longer offered inside TLS; the verdicts are the directory's.
  size_t ehlo = r.out.find("250-mx.test");
  ASSERT_NE(ehlo, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("250-STARTTLS", ehlo), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("250 STARTTLS", ehlo), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("250 2.1.5 OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("550 5.1.1 <nobody@example.com>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("554 5.5.1 Error: TLS already active"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("221 2.0.0 Bye"), std::string::npos) << r.out;
  EXPECT_GE(metric("doorman_edge_tls_handshakes_total{result=\"ok\"}"), 1);
  EXPECT_GT(metric("doorman_edge_tls_certificate_expiry_timestamp_seconds"), 1.7e9);
}

TEST_F(StartTls, SecondStartTlsIsRefused) {
  RunResult r = s_client("EHLO c.test\nSTARTTLS\nQUIT\n");
  EXPECT_NE(r.out.find("554 5.5.1 Error: TLS already active"), std::string::npos) << r.out << r.err;
}

TEST_F(StartTls, OldProtocolVersionsAreRefused) {
  RunResult r = s_client("QUIT\n", {"-tls1_1"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Cipher is (NONE)"), std::string::npos) << r.out;
  RunResult ok = s_client("QUIT\n", {"-tls1_2"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("Protocol  : TLSv1.2"), std::string::npos) << ok.out;
  for (int i = 0; i < 50 && metric("doorman_edge_tls_handshakes_total{result=\"failed\"}") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GE(metric("doorman_edge_tls_handshakes_total{result=\"failed\"}"), 1);
}

TEST_F(StartTls, SwaksDeliversAndReceivedRecordsTheCipher) {
  RunResult r = run({"swaks", "--server", "127.0.0.1:" + std::to_string(stack_.edge_port()), "--tls",
                     "--tls-verify", "--tls-ca-path", pki_.ca_cert, "--tls-sni", "localhost", "--from",
                     "sender@remote.test", "--to", "alice@example.com", "--body", "over TLS", "--timeout", "10"},
                    std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("TLS started"), std::string::npos) << r.out;
  ASSERT_TRUE(backend_.wait_for_transactions(1, std::chrono::seconds(5)));
  const std::string data = backend_.transactions()[0].data;
  EXPECT_EQ(data.rfind("Received: from ", 0), 0u) << data;
  size_t end = data.find("\r\n\tfor <");
  ASSERT_NE(end, std::string::npos) << data;
  std::string received = data.substr(0, end);
  EXPECT_NE(received.find("\r\n\t(using TLSv1.3 with cipher TLS_"), std::string::npos) << received;
  EXPECT_NE(received.find("with ESMTPS id "), std::string::npos) << received;
}

// CVE-2011-0411: "STARTTLS\r\nHELP\r\n" in one packet. The HELP must never
// be answered inside TLS: the first reply after the handshake is the one to
// the client's own NOOP.
TEST_F(StartTls, PlaintextSentWithStartTlsIsDiscarded) {
  const char* script = R"PY(
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if len(l) < 4 or l[3] != "-": return "".join(lines)
print("greeting", reply().strip())
s.sendall(b"EHLO c.test\r\n"); print("ehlo", reply().split("\r\n")[-2])
s.sendall(b"STARTTLS\r\nHELP\r\n")
print("starttls", reply().strip())
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"NOOP\r\n")
print("after", t.recv(4096).decode().strip())
t.sendall(b"QUIT\r\n")
print("quit", t.recv(4096).decode().strip())
)PY";
  RunResult r = run({"python3", "-c", script, std::to_string(stack_.edge_port()), pki_.ca_cert},
                    std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << stack_.logs();
  EXPECT_NE(r.out.find("starttls 220 2.0.0 Ready to start TLS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("after 250 2.0.0 Ok\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("214"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("quit 221 2.0.0 Bye"), std::string::npos) << r.out;
}

// Bad input after "220 Ready to start TLS": plaintext instead of a
// ClientHello, or silence. Either way the edge closes the connection (no
// plaintext reply, no hang) and counts a failed handshake.
TEST_F(StartTls, PlaintextOrSilenceInsteadOfAHandshakeIsClosed) {
  const char* script = R"PY(
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=15)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode()
        if len(l) < 4 or l[3] != "-": return l.strip()
reply(); s.sendall(b"EHLO c.test\r\n"); reply()
s.sendall(b"STARTTLS\r\n"); print("starttls", reply())
t0 = time.time()
if mode == "plaintext": s.sendall(b"MAIL FROM:<x@y.test>\r\n")
rest = s.recv(4096)
print("after", repr(rest), "closed_in %.1f" % (time.time() - t0))
)PY";
  for (std::string mode : {"plaintext", "silence"}) {
    RunResult r = run({"python3", "-c", script, std::to_string(stack_.edge_port()), mode}, std::chrono::seconds(40));
    ASSERT_EQ(r.exit_code, 0) << mode << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("starttls 220 2.0.0 Ready to start TLS"), std::string::npos) << r.out;
    // Plaintext gets at most a TLS alert record (0x15), never an SMTP reply.
    EXPECT_EQ(r.out.find("after b'5"), std::string::npos) << mode << ": " << r.out;
    EXPECT_EQ(r.out.find("after b'2"), std::string::npos) << mode << ": " << r.out;
    EXPECT_NE(r.out.find("closed_in"), std::string::npos) << mode << ": " << r.out;
  }
  EXPECT_GE(metric("doorman_edge_tls_handshakes_total{result=\"failed\"}"), 2);
}

// cert-manager rotates the Secret: the edge serves the new certificate
// without a restart, and a broken rotation keeps the old one in service.
TEST_F(StartTls, CertificateIsReloadedWhenTheFilesChange) {
  auto subject = [&] {
    RunResult r = s_client("QUIT\n");
    size_t at = r.out.find("subject=");
    return at == std::string::npos ? "none: " + r.out + r.err : r.out.substr(at, r.out.find('\n', at) - at);
  };
  EXPECT_NE(subject().find("CN = localhost"), std::string::npos);
  double loads = metric("doorman_edge_tls_certificate_loads_total{result=\"ok\"}");

  // A new pair, moved into place as Kubernetes does (new files, then rename).
  std::string new_cert = stack_.dir() + "/new.crt", new_key = stack_.dir() + "/new.key";
  ASSERT_EQ(make_server_cert(pki_, new_cert, new_key, "rotated.localhost"), "");
  ASSERT_EQ(std::rename(new_key.c_str(), key_.c_str()), 0);
  ASSERT_EQ(std::rename(new_cert.c_str(), cert_.c_str()), 0);
  std::string s;
  for (int i = 0; i < 40; ++i) {
    s = subject();
    if (s.find("rotated.localhost") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_NE(s.find("CN = rotated.localhost"), std::string::npos) << s;
  EXPECT_GE(metric("doorman_edge_tls_certificate_loads_total{result=\"ok\"}"), loads + 1);

  // A half-written certificate: refused, logged, and the last good pair stays.
  { std::ofstream(cert_) << "-----BEGIN CERTIFICATE-----\ngarbage\n"; }
  for (int i = 0; i < 40 && metric("doorman_edge_tls_certificate_loads_total{result=\"failed\"}") < 1; ++i) {
    subject();  // a handshake is what triggers the check
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_GE(metric("doorman_edge_tls_certificate_loads_total{result=\"failed\"}"), 1);
  EXPECT_NE(subject().find("CN = rotated.localhost"), std::string::npos);
  EXPECT_NE(stack_.edge().read_log().find("tls_reload_failed"), std::string::npos);
}

TEST(StartTlsConfig, HalfAPairOrABadKeyIsAStartupError) {
  std::string dir = make_temp_dir("tlscfg");
  TestPki pki = make_test_pki(dir);
  ASSERT_TRUE(pki.ok()) << pki.error;
  RunResult half = run({DOORMAN_EDGE_BIN, "--tls-cert-file", pki.server_cert});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("tls-cert-file and tls-key-file go together"), std::string::npos) << half.err;
  RunResult mismatch = run({DOORMAN_EDGE_BIN, "--tls-cert-file", pki.server_cert, "--tls-key-file", pki.client_key,
                            "--listen", "127.0.0.1:" + std::to_string(free_tcp_port()), "--http-listen="});
  EXPECT_EQ(mismatch.exit_code, 2);
  EXPECT_NE(mismatch.err.find("tls-key-file"), std::string::npos) << mismatch.err;
  EXPECT_NE(mismatch.err.find("mismatch"), std::string::npos) << mismatch.err;
  remove_tree(dir);
}

}  // namespace
}  // namespace doorman::test
