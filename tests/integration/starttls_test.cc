// Issue #7, STARTTLS on the edge, with real clients: `openssl s_client
// -starttls smtp`, `swaks --tls`, and a Python ssl client for the plaintext
// injection of CVE-2011-0411. Certificates come from a throwaway CA
// (tests/support/test_certs.h); the relayed message goes to the recording
// fake back-end, so the Received header can be checked.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

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
  // Polls until no session is open on the edge (or 10 s passed); returns the gauge.
  double sessions_active_settled() {
    double v = -1;
    for (int i = 0; i < 100; ++i) {
      v = metric("doorman_edge_sessions_active");
      if (v == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return v;
  }

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

// Issue #16: the edge's own TLS stream reads one record at a time into a
// per-thread buffer. A command split into one-byte records, and pipelined
// groups of several KB (many records' worth of replies), come through whole.
TEST_F(StartTls, TinyRecordsAndALargePipelinedGroup) {
  const char* script = R"PY(
import collections, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=15)
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if len(l) < 4 or l[3] != "-": return "".join(lines)
f = s.makefile("rb")
reply(f); s.sendall(b"EHLO c.test\r\n"); reply(f)
s.sendall(b"STARTTLS\r\n"); reply(f)
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
tf = t.makefile("rb")
for b in b"EHLO tiny.test\r\n":
    t.send(bytes([b]))  # one TLS record per byte
print("ehlo", reply(tf).splitlines()[-1])
group = b"MAIL FROM:<s@remote.test>\r\n" + b"RCPT TO:<alice@example.com>\r\n" * 100 + b"RSET\r\n"
t.sendall(group * 3 + b"QUIT\r\n")
codes = collections.Counter(reply(tf)[:3] for _ in range(3 * 102 + 1))
print("bytes", len(group * 3), "codes", sorted(codes.items()))
)PY";
  RunResult r = run({"python3", "-c", script, std::to_string(stack_.edge_port()), pki_.ca_cert},
                    std::chrono::seconds(40));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << stack_.logs();
  EXPECT_NE(r.out.find("ehlo 250 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes 8799 codes [('221', 1), ('250', 306)]"), std::string::npos) << r.out;
  EXPECT_EQ(sessions_active_settled(), 0);
}

// A client that half-closes or resets in the middle of the handshake or of a
// TLS session (between records or inside one): the session ends at once (not
// by a timeout), nothing is left open, and the edge keeps serving.
TEST_F(StartTls, ResetsAndHalfClosesEndTheSession) {
  const char* script = R"PY(
import socket, ssl, struct, sys, time
port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=15)
def reply(f):
    while True:
        l = f.readline().decode()
        if len(l) < 4 or l[3] != "-": return l.strip()
f = s.makefile("rb")
reply(f); s.sendall(b"EHLO c.test\r\n"); reply(f)
s.sendall(b"STARTTLS\r\n"); print("starttls", reply(f))
raw = s
if mode.startswith("session"):
    t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
    t.sendall(b"NOOP\r\n"); print("noop", t.recv(4096).decode().strip())
    raw = socket.socket(fileno=t.detach())  # the same connection, without TLS on our side
    raw.settimeout(15)  # the descriptor is non-blocking underneath (Python's timeouts)
partial = b"\x17\x03\x03\x00\x40" + b"x" * 10 if mode.startswith("session") else b"\x16\x03\x01\x02\x00\x01"
if mode.endswith("midrecord-halfclose") or mode.endswith("reset"):
    raw.sendall(partial)
t0 = time.time()
if mode.endswith("reset"):
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    print("reset sent")
else:
    raw.shutdown(socket.SHUT_WR)
    while raw.recv(4096): pass
    print("closed_in %.1f" % (time.time() - t0))
)PY";
  for (std::string mode : {"handshake-halfclose", "handshake-midrecord-halfclose", "handshake-reset",
                           "session-halfclose", "session-midrecord-halfclose", "session-reset"}) {
    RunResult r = run({"python3", "-c", script, std::to_string(stack_.edge_port()), pki_.ca_cert, mode},
                      std::chrono::seconds(40));
    ASSERT_EQ(r.exit_code, 0) << mode << ": " << r.out << r.err << stack_.logs();
    EXPECT_NE(r.out.find("starttls 220 2.0.0 Ready to start TLS"), std::string::npos) << mode << ": " << r.out;
    if (mode.starts_with("session")) {
      EXPECT_NE(r.out.find("noop 250 2.0.0 Ok"), std::string::npos) << r.out;
    }
    // A half-close is answered by the edge's close well before any timeout
    // (the handshake timeout here is 2 s, the idle timeout minutes).
    if (mode.ends_with("halfclose")) {
      EXPECT_NE(r.out.find("closed_in 0."), std::string::npos) << mode << ": " << r.out;
    }
    EXPECT_EQ(sessions_active_settled(), 0) << mode;
  }
  RunResult ok = s_client("QUIT\n");
  EXPECT_NE(ok.out.find("221 2.0.0 Bye"), std::string::npos) << ok.out << ok.err;
  EXPECT_EQ(sessions_active_settled(), 0);
}

// A blocking SMTP client with OpenSSL after STARTTLS (what Python's ssl
// cannot do: renegotiate, KeyUpdate). Loopback only; 5 s receive timeout.
class OpensslSmtpClient {
 public:
  ~OpensslSmtpClient() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  // Greeting, EHLO, STARTTLS, handshake (at most `max_version`), EHLO.
  std::string start(int port, int max_version) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
    if (plain_reply().rfind("220 ", 0) != 0) return "no greeting";
    if (!plain_send("EHLO c.test\r\n") || plain_reply().rfind("250 ", 0) != 0) return "EHLO failed";
    if (!plain_send("STARTTLS\r\n") || plain_reply().rfind("220 ", 0) != 0) return "STARTTLS refused";
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) return "handshake failed";
    std::string ehlo = command("EHLO c.test");
    return ehlo.rfind("250 ", 0) == 0 ? "" : "EHLO in TLS: " + ehlo;
  }
  // One command line inside TLS; the last line of its reply ("" on error).
  std::string command(const std::string& line) {
    std::string out = line + "\r\n";
    size_t n = 0;
    if (SSL_write_ex(ssl_, out.data(), out.size(), &n) != 1) return "";
    while (true) {
      size_t lf = buf_.find("\r\n");
      if (lf != std::string::npos) {
        std::string l = buf_.substr(0, lf);
        buf_.erase(0, lf + 2);
        if (l.size() < 4 || l[3] != '-') return l;
        continue;
      }
      char tmp[4096];
      if (SSL_read_ex(ssl_, tmp, sizeof tmp, &n) != 1) return "";
      buf_.append(tmp, n);
    }
  }
  SSL* ssl() { return ssl_; }

 private:
  bool plain_send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // Byte by byte: nothing after the reply may be taken from the socket.
  std::string plain_reply() {
    std::string line;
    char c;
    while (::recv(fd_, &c, 1, 0) == 1) {
      line += c;
      if (line.size() >= 2 && line.ends_with("\r\n")) {
        if (line.size() < 6 || line[3] != '-') return line;
        line.clear();
      }
    }
    return "";
  }
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

// Renegotiation (TLS 1.2) is refused: the client's renegotiation fails with
// the edge's no_renegotiation alert. A TLS 1.3 KeyUpdate (which asks the edge
// to update its keys too) is harmless: the session goes on.
TEST_F(StartTls, RenegotiationIsRefusedAndKeyUpdateIsHarmless) {
  {
    OpensslSmtpClient c;
    ASSERT_EQ(c.start(stack_.edge_port(), TLS1_2_VERSION), "");
    EXPECT_EQ(c.command("NOOP"), "250 2.0.0 Ok");
    ERR_clear_error();
    ASSERT_EQ(SSL_renegotiate(c.ssl()), 1);
    EXPECT_NE(SSL_do_handshake(c.ssl()), 1);
    EXPECT_EQ(ERR_GET_REASON(ERR_peek_error()), SSL_R_NO_RENEGOTIATION);
    ERR_clear_error();
  }
  {
    OpensslSmtpClient c;
    ASSERT_EQ(c.start(stack_.edge_port(), TLS1_3_VERSION), "");
    ASSERT_EQ(SSL_key_update(c.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
    EXPECT_EQ(c.command("NOOP"), "250 2.0.0 Ok");
    ASSERT_EQ(SSL_key_update(c.ssl(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    EXPECT_EQ(c.command("NOOP"), "250 2.0.0 Ok");
    EXPECT_EQ(c.command("QUIT"), "221 2.0.0 Bye");
  }
  EXPECT_EQ(sessions_active_settled(), 0);
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
