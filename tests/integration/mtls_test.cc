// Issue #7: optional (mutual) TLS between edge and directory, and between
// doormanctl and the directory. Real redis-server + doorman-directory +
// doorman-edge on loopback, with a throwaway PKI made by the openssl CLI
// (tests/support/test_certs.h). A refused handshake must leave the edge
// deferring (451 4.4.3), never accepting and never answering 5xx.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/integration/stack.h"
#include "tests/support/smtp_client.h"
#include "tests/support/test_certs.h"

namespace doorman::test {
namespace {

std::string domains(int backend_port) {
  return "domains:\n"
         "  - name: example.com\n"
         "    mode: list\n"
         "    routes: [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
         "    addresses: [alice, bob]\n";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Pki : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = make_test_pki(pki_dir_);
    ASSERT_TRUE(pki_.ok()) << pki_.error;
  }
  void TearDown() override { remove_tree(pki_dir_); }

  std::vector<std::string> directory_mtls() const {
    return {"--tls-cert-file", pki_.server_cert, "--tls-key-file", pki_.server_key, "--tls-client-ca-file",
            pki_.ca_cert};
  }
  std::vector<std::string> ctl_mtls() const {
    return {"--tls-ca-file", pki_.ca_cert, "--tls-cert-file", pki_.client_cert, "--tls-key-file", pki_.client_key};
  }
  std::vector<std::string> edge_mtls() const {
    return {"--directory-tls-ca-file", pki_.ca_cert, "--directory-tls-cert-file", pki_.client_cert,
            "--directory-tls-key-file", pki_.client_key};
  }

  std::string pki_dir_ = make_temp_dir("doorman-pki");
  TestPki pki_;
};

// A directory that requires client certificates; the edge is started by each
// test (Stack::start's own edge is plaintext, itself a case to refuse).
class MutualTls : public Pki {
 protected:
  void SetUp() override {
    Pki::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(backend_.start());
    stack_.set_directory_args(directory_mtls());
    stack_.set_ctl_args(ctl_mtls());
    ASSERT_EQ(stack_.start(domains(backend_.port())), "");
  }

  // Restarts the edge with `args` added to its command line.
  void restart_edge(const std::vector<std::string>& args) {
    stack_.stop_edge();
    ASSERT_EQ(stack_.start_edge(args), "");
  }
  // The RCPT reply for `address` in a fresh session.
  std::string rcpt(const std::string& address) {
    return rcpt_in_new_session(stack_.edge_port(), address, "sender@remote.test");
  }
  // The edge reconnects with back-off: poll until the reply starts with `prefix`.
  std::string eventually(const std::string& address, const std::string& prefix) {
    std::string last;
    for (int i = 0; i < 50; ++i) {
      last = rcpt(address);
      if (last.rfind(prefix, 0) == 0) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

  // What the edge logged since the last call (the log file outlives restarts).
  std::string new_edge_log() {
    std::string log = stack_.edge().read_log();
    std::string fresh = log.substr(std::min(seen_, log.size()));
    seen_ = log.size();
    return fresh;
  }

  FakeSmtpServer backend_;
  Stack stack_;
  size_t seen_ = 0;
};

constexpr char kDeferAlice[] = "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later";
constexpr char kDeferNobody[] = "451 4.4.3 <nobody@example.com>: Temporary lookup failure, try again later";

TEST_F(MutualTls, EdgeWithClientCertificateGetsVerdicts) {
  restart_edge(edge_mtls());
  EXPECT_EQ(eventually("alice@example.com", "250"), "250 2.1.5 OK") << stack_.logs();
  EXPECT_EQ(rcpt("nobody@example.com"), "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown");
  EXPECT_TRUE(contains(stack_.directory().read_log(), "transport=mtls")) << stack_.logs();
  EXPECT_TRUE(contains(stack_.edge().read_log(), "directory_transport=mtls")) << stack_.logs();

  // The name checked can be overridden (the target is an IP address here).
  std::vector<std::string> named = edge_mtls();
  named.insert(named.end(), {"--directory-tls-server-name", "localhost"});
  restart_edge(named);
  EXPECT_EQ(eventually("alice@example.com", "250"), "250 2.1.5 OK") << stack_.logs();
}

TEST_F(MutualTls, RefusedHandshakesDeferNeverAcceptNeverReject) {
  const std::string ca = pki_.ca_cert;
  const std::vector<std::vector<std::string>> refused = {
      {},                                                  // plaintext
      {"--directory-tls-ca-file", ca},                     // TLS without a client certificate
      {"--directory-tls-ca-file", ca, "--directory-tls-cert-file", pki_.rogue_client_cert,  // another CA's client
       "--directory-tls-key-file", pki_.rogue_client_key},
  };
  for (const auto& args : refused) {
    new_edge_log();
    restart_edge(args);
    EXPECT_EQ(rcpt("alice@example.com"), kDeferAlice) << stack_.logs();
    EXPECT_EQ(rcpt("nobody@example.com"), kDeferNobody) << stack_.logs();
    // A transport failure (the handshake), not the deadline.
    std::string log = new_edge_log();
    EXPECT_TRUE(contains(log, "event=directory_error") && contains(log, "error=\"grpc 14: ")) << stack_.logs();
  }
  // The server's name does not match: the edge refuses the directory.
  std::vector<std::string> wrong_name = edge_mtls();
  wrong_name.insert(wrong_name.end(), {"--directory-tls-server-name", "directory.wrong.test"});
  new_edge_log();
  restart_edge(wrong_name);
  EXPECT_EQ(rcpt("alice@example.com"), kDeferAlice) << stack_.logs();
  EXPECT_TRUE(contains(new_edge_log(), "Hostname Verification Check failed")) << stack_.logs();
  // A directory certificate from another CA: also refused (the rogue CA's
  // client certificate stands in for a server certificate it never had).
  restart_edge({"--directory-tls-ca-file", pki_.dir + "/rogue-ca.pem", "--directory-tls-cert-file", pki_.client_cert,
                "--directory-tls-key-file", pki_.client_key});
  EXPECT_EQ(rcpt("alice@example.com"), kDeferAlice) << stack_.logs();
  // And the right configuration on the same directory works.
  restart_edge(edge_mtls());
  EXPECT_EQ(eventually("alice@example.com", "250"), "250 2.1.5 OK") << stack_.logs();
}

TEST_F(MutualTls, DoormanctlNeedsTheCaAndAClientCertificate) {
  const std::string server = "127.0.0.1:" + std::to_string(stack_.directory_port());
  const std::string token = stack_.dir() + "/admin-token";
  auto ctl = [&](std::vector<std::string> tls) {
    std::vector<std::string> argv = {DOORMANCTL_BIN, "--server", server, "--token-file", token};
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.insert(argv.end(), {"domain", "list"});
    return run(argv, std::chrono::seconds(30));
  };
  RunResult ok = ctl(ctl_mtls());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(contains(ok.out, "example.com  mode=list")) << ok.out;

  RunResult plain = ctl({});
  EXPECT_EQ(plain.exit_code, 1) << plain.err;
  EXPECT_TRUE(contains(plain.err, "if the directory serves TLS, give --tls-ca-file")) << plain.err;

  RunResult no_cert = ctl({"--tls-ca-file", pki_.ca_cert});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.err;
  EXPECT_TRUE(contains(no_cert.err, "the TLS handshake failed")) << no_cert.err;

  // The same from the environment, as the chart sets it.
  RunResult env = run({DOORMANCTL_BIN, "--server", server, "--token-file", token, "domain", "list"},
                      std::chrono::seconds(30), "",
                      {{"DOORMAN_TLS_CA_FILE", pki_.ca_cert},
                       {"DOORMAN_TLS_CERT_FILE", pki_.client_cert},
                       {"DOORMAN_TLS_KEY_FILE", pki_.client_key},
                       {"DOORMAN_TLS_SERVER_NAME", "localhost"}});
  EXPECT_EQ(env.exit_code, 0) << env.err;

  RunResult half = ctl({"--tls-ca-file", pki_.ca_cert, "--tls-cert-file", pki_.client_cert});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_TRUE(contains(half.err, "--tls-cert-file is set but --tls-key-file is not")) << half.err;
}

// --admin-listen gets the same TLS; the bearer token is still required.
TEST_F(Pki, AdminListenerServesMutualTlsAndStillWantsTheToken) {
  FakeSmtpServer backend;
  ASSERT_TRUE(backend.start());
  Stack stack;
  const int admin_port = free_tcp_port();
  const std::string admin = "127.0.0.1:" + std::to_string(admin_port);
  std::vector<std::string> dir_args = directory_mtls();
  dir_args.insert(dir_args.end(), {"--admin-listen", admin});
  stack.set_directory_args(dir_args);
  std::vector<std::string> ctl_args = ctl_mtls();
  ctl_args.insert(ctl_args.end(), {"--server", admin});  // after Stack's own --server: wins
  stack.set_ctl_args(ctl_args);
  ASSERT_EQ(stack.start(domains(backend.port()), edge_mtls()), "");
  RunResult list = stack.ctl({"domain", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(contains(list.out, "example.com")) << list.out;

  std::vector<std::string> no_token = {DOORMANCTL_BIN, "--server", admin};
  const std::vector<std::string> tls = ctl_mtls();
  no_token.insert(no_token.end(), tls.begin(), tls.end());
  no_token.insert(no_token.end(), {"domain", "list"});
  RunResult refused = run(no_token, std::chrono::seconds(30), "", {{"DOORMAN_TOKEN_FILE", ""}, {"DOORMAN_TOKEN", ""}});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "UNAUTHENTICATED") || contains(refused.err, "bearer token")) << refused.err;
}

// Renewed certificates (cert-manager rewrites the Secret) are picked up
// without a restart: the subject seen by a new handshake changes.
TEST_F(Pki, DirectoryReloadsItsCertificate) {
  Stack stack;
  stack.set_directory_args({"--tls-cert-file", pki_.server_cert, "--tls-key-file", pki_.server_key,
                            "--tls-reload-seconds", "1"});
  ASSERT_TRUE(stack.redis().start());
  ASSERT_EQ(stack.start_directory(), "");
  auto subject = [&] {
    RunResult r = run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(stack.directory_port()),
                       "-CAfile", pki_.ca_cert, "-alpn", "h2", "-verify_return_error", "-brief"},
                      std::chrono::seconds(10), "");
    return r.out + r.err;
  };
  EXPECT_TRUE(contains(subject(), "CN = localhost")) << subject();
  ASSERT_EQ(make_server_cert(pki_, pki_.server_cert, pki_.server_key, "renewed.localhost"), "");
  std::string last;
  for (int i = 0; i < 50 && !contains(last, "CN = renewed.localhost"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    last = subject();
  }
  EXPECT_TRUE(contains(last, "CN = renewed.localhost")) << last << stack.logs();
}

// Bad combinations and unreadable files stop the services at start-up.
TEST_F(Pki, ConfigurationErrorsStopStartUp) {
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  };
  const std::string missing = pki_dir_ + "/missing.pem";
  const std::string not_pem = pki_dir_ + "/not-pem.txt";
  std::ofstream(not_pem) << "not a certificate\n";
  const std::vector<Case> cases = {
      {{DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--tls-cert-file", pki_.server_cert},
       "option tls-cert-file is set but tls-key-file is not"},
      {{DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--tls-key-file", pki_.server_key},
       "option tls-key-file is set but tls-cert-file is not"},
      {{DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--tls-client-ca-file", pki_.ca_cert},
       "option tls-client-ca-file needs TLS"},
      {{DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--tls-cert-file", missing, "--tls-key-file", pki_.server_key},
       "option tls-cert-file: cannot read " + missing},
      {{DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--tls-cert-file", pki_.server_cert, "--tls-key-file",
        pki_.server_key, "--tls-client-ca-file", not_pem},
       "is not a PEM file"},
      {{DOORMAN_EDGE_BIN, "--directory-tls-cert-file", pki_.client_cert, "--directory-tls-key-file", pki_.client_key},
       "option directory-tls-cert-file needs TLS: set directory-tls-ca-file"},
      {{DOORMAN_EDGE_BIN, "--directory-tls-ca-file", pki_.ca_cert, "--directory-tls-cert-file", pki_.client_cert},
       "option directory-tls-cert-file is set but directory-tls-key-file is not"},
      {{DOORMAN_EDGE_BIN, "--directory-tls-server-name", "localhost"},
       "option directory-tls-server-name needs TLS"},
      {{DOORMAN_EDGE_BIN, "--directory-tls-ca-file", missing}, "option directory-tls-ca-file: cannot read " + missing},
  };
  for (const auto& c : cases) {
    RunResult r = run(c.argv, std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 2) << c.argv[2] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, c.message)) << "expected '" << c.message << "' in: " << r.err;
  }
}

}  // namespace
}  // namespace doorman::test
