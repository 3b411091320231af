// Issue #14, LDAP / Active Directory sync, end to end: a real slapd with an
// AD-style schema (tests/support/slapd_server.h), redis-server, the
// directory (its sync thread) and the edge, all on loopback.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/integration/stack.h"
#include "tests/support/slapd_server.h"
#include "tests/support/smtp_client.h"
#include "tests/support/test_certs.h"

namespace doorman::test {
namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

// The AD-style directory of most tests: example.com and example.org fed by
// one query; carol is disabled; a group and a public folder have addresses.
std::string people() {
  return ldap_user("alice", "alice@example.com",
                   {"SMTP:alice@example.com", "smtp:a.smith@example.com", "X500:/o=Example/cn=alice",
                    "smtp:alice@example.org"}) +
         ldap_user("bob", "bob@example.org") + ldap_user("carol", "carol@example.com", {}, true) +
         ldap_user("erin", "erin@other.test") +
         std::string("dn: cn=sales,ou=people,") + kLdapSuffix +
         "\nobjectClass: group\ncn: sales\nmail: sales@example.com\n\n"
         "dn: cn=folder,ou=people," + kLdapSuffix +
         "\nobjectClass: publicFolder\ncn: folder\nproxyAddresses: SMTP:folder@example.com\n\n";
}

// u0@example.com .. u{n-1}@example.com, one user entry each (bulk-loaded by slapadd).
std::string numbered_users(int n) {
  std::string ldif;
  ldif.reserve(static_cast<size_t>(n) * 160);
  for (int i = 0; i < n; ++i) {
    std::string uid = "u" + std::to_string(i);
    ldif += "dn: uid=" + uid + ",ou=people," + kLdapSuffix + "\nobjectClass: user\nuid: " + uid + "\ncn: " + uid +
            "\nsn: x\nmail: " + uid + "@example.com\n\n";
  }
  return ldif;
}

class LdapSync : public ::testing::Test {
 protected:
  // Starts slapd with `ldif` and the stack with example.com / example.org fed
  // by source "corp" (its YAML lines `source_extra` added).
  void start(const std::string& ldif, const std::string& source_extra = "", SlapdOptions options = {},
             std::vector<std::string> directory_args = {}) {
    ASSERT_TRUE(slapd_.start(ldif, options)) << slapd_.error();
    std::vector<std::string> args = {"--sync-interval", "1s", "--sync-poll", "100ms"};
    args.insert(args.end(), directory_args.begin(), directory_args.end());
    stack_.set_directory_args(args);
    ASSERT_EQ(stack_.start(yaml(source_extra)), "");
  }
  void SetUp() override { ASSERT_TRUE(backend_.start()); }
  std::string route() { return "[\"127.0.0.1:" + std::to_string(backend_.port()) + "\"]"; }
  std::string yaml(const std::string& source_extra, const std::string& url = "") {
    return "domains:\n"
           "  - {name: example.com, mode: list, routes: " + route() + "}\n"
           "  - {name: example.org, mode: list, routes: " + route() + "}\n"
           "ldap_sources:\n"
           "  - name: corp\n"
           "    url: " + (url.empty() ? slapd_.url() : url) + "\n"
           "    tls: none\n"
           "    bind_dn: " + kSyncBindDn + "\n"
           "    bind_password_file: " + slapd_.password_file() + "\n"
           "    base_dn: " + kLdapSuffix + "\n"
           "    domains: [example.com, example.org]\n" + source_extra;
  }
  std::string apply(const std::string& text) {
    std::string path = stack_.dir() + "/domains.yaml";
    std::ofstream(path) << text;
    RunResult r = stack_.ctl({"apply", "-f", path});
    return r.exit_code == 0 ? "" : r.out + r.err;
  }
  uint64_t addresses(const std::string& domain) {
    RunResult r = stack_.ctl({"address", "count", domain});
    return r.exit_code == 0 ? std::stoull(r.out) : UINT64_MAX;
  }
  std::string status() { return stack_.ctl({"sync", "status"}).out; }
  std::string rcpt(const std::string& to) { return rcpt_in_new_session(stack_.edge_port(), to).substr(0, 3); }

  FakeSmtpServer backend_;
  SlapdServer slapd_;
  Stack stack_;
};

TEST_F(LdapSync, InitialSyncThenAddRemoveRenameSeenAtTheEdge) {
  start(people(), "    exclude_disabled: true\n    max_shrink: 0.6\n");
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 4 && addresses("example.org") == 2; }))
      << status() << stack_.logs();
  // mail, SMTP: and smtp: proxyAddresses, a group, a public folder; not
  // X500:, not the disabled account, not another domain.
  EXPECT_EQ(rcpt("alice@example.com"), "250");
  EXPECT_EQ(rcpt("a.smith@example.com"), "250");
  EXPECT_EQ(rcpt("sales@example.com"), "250");
  EXPECT_EQ(rcpt("folder@example.com"), "250");
  EXPECT_EQ(rcpt("alice@example.org"), "250");
  EXPECT_EQ(rcpt("bob@example.org"), "250");
  EXPECT_EQ(rcpt("carol@example.com"), "550");
  EXPECT_EQ(rcpt("nobody@example.com"), "550");
  // The decision log names the LDAP source a list verdict came from, accepts and refusals alike.
  auto logged = [&](const std::string& rcpt_text) {
    std::string log = stack_.edge().read_log();
    for (size_t at = 0, end; at < log.size(); at = end + 1) {
      end = log.find('\n', at);
      if (end == std::string::npos) end = log.size();
      std::string line = log.substr(at, end - at);
      if (line.find("event=rcpt") != std::string::npos && line.find(rcpt_text) != std::string::npos &&
          line.find("source_name=ldap:corp") != std::string::npos)
        return true;
    }
    return false;
  };
  EXPECT_TRUE(eventually([&] { return rcpt("alice@example.com") == "250" && logged("alice@example.com"); }))
      << stack_.edge().read_log();
  EXPECT_TRUE(eventually([&] { return rcpt("nobody@example.com") == "550" && logged("nobody@example.com"); }))
      << stack_.edge().read_log();
  std::string st = status();
  EXPECT_NE(st.find("source corp"), std::string::npos) << st;
  EXPECT_NE(st.find("ignored=1"), std::string::npos) << st;  // erin@other.test

  // Add dave, remove bob, rename alice (new DN and new addresses).
  const std::string people_dn = std::string(",ou=people,") + kLdapSuffix;
  ASSERT_EQ(slapd_.modify("dn: uid=dave" + people_dn + "\nchangetype: add\nobjectClass: user\nuid: dave\ncn: dave\n"
                          "sn: dave\nmail: dave@example.com\n\n"
                          "dn: uid=bob" + people_dn + "\nchangetype: delete\n\n"
                          "dn: uid=alice" + people_dn + "\nchangetype: modrdn\nnewrdn: uid=alicia\ndeleteoldrdn: 1\n\n"
                          "dn: uid=alicia" + people_dn + "\nchangetype: modify\nreplace: mail\n"
                          "mail: alicia@example.com\n-\nreplace: proxyAddresses\nproxyAddresses: SMTP:alicia@example.com\n"
                          "proxyAddresses: smtp:alice@example.org\n-\n"),
            "");
  ASSERT_TRUE(eventually([&] { return rcpt("dave@example.com") == "250"; })) << status() << stack_.logs();
  ASSERT_TRUE(eventually([&] { return rcpt("alicia@example.com") == "250"; })) << status();
  EXPECT_EQ(rcpt("alice@example.com"), "550");
  EXPECT_EQ(rcpt("a.smith@example.com"), "550");
  EXPECT_EQ(rcpt("bob@example.org"), "550");
  EXPECT_EQ(rcpt("alice@example.org"), "250");
  EXPECT_EQ(addresses("example.com"), 4u);  // alicia, dave, sales, folder
}

TEST_F(LdapSync, PagesThroughAServerSizeLimitOf1000With25000Entries) {
  const std::string ldif = numbered_users(25000);
  start(ldif, "    page_size: 1000\n", SlapdOptions{1000, "", "", ""}, {"--sync-interval", "1h"});
  // Without paging the server stops at 1000 (sizeLimitExceeded, exit 4).
  RunResult plain = run({"ldapsearch", "-x", "-LLL", "-H", slapd_.url(), "-D", kSyncBindDn, "-y",
                         slapd_.password_file(), "-b", kLdapSuffix, "(mail=*)", "mail"});
  EXPECT_EQ(plain.exit_code, 4) << plain.err;
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 25000; }, 60s)) << status() << stack_.logs();
  EXPECT_EQ(rcpt("u24999@example.com"), "250");
  EXPECT_NE(stack_.directory().read_log().find("pages=25 "), std::string::npos);
}

TEST_F(LdapSync, StartTlsAndLdapsWithAThrowawayCa) {
  TestPki pki = make_test_pki(stack_.dir());
  ASSERT_TRUE(pki.ok()) << pki.error;
  ASSERT_TRUE(slapd_.start(people(), SlapdOptions{0, pki.server_cert, pki.server_key, pki.ca_cert, true}))
      << slapd_.error();
  stack_.set_directory_args({"--sync-interval", "1h", "--sync-poll", "100ms"});
  // 127.0.0.1, the certificate's IP address (libldap checks "localhost" as the machine's host name).
  std::string text = yaml("    ca_file: " + pki.ca_cert + "\n");
  // tls: starttls instead of none.
  text.replace(text.find("tls: none"), 9, "tls: starttls");
  ASSERT_EQ(stack_.start(text), "");
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 5; })) << status() << stack_.logs();
  EXPECT_EQ(rcpt("folder@example.com"), "250");
  // Without the CA the certificate does not verify: nothing changes.
  text.replace(text.find("    ca_file: "), text.find('\n', text.find("    ca_file: ")) - text.find("    ca_file: ") + 1,
               "");
  ASSERT_EQ(apply(text), "");
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("StartTLS"), std::string::npos) << r.out;
  EXPECT_EQ(addresses("example.com"), 5u);
  // ldaps:// with the CA: TLS from the first byte; dave, added meanwhile, arrives.
  ASSERT_EQ(slapd_.modify("dn: uid=dave,ou=people," + std::string(kLdapSuffix) +
                          "\nchangetype: add\nobjectClass: user\nuid: dave\ncn: dave\nsn: dave\nmail: dave@example.com\n"),
            "");
  std::string ldaps = yaml("    ca_file: " + pki.ca_cert + "\n", slapd_.ldaps_url());
  ldaps.erase(ldaps.find("    tls: none\n"), 14);  // the default for ldaps://
  ASSERT_EQ(apply(ldaps), "");
  r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << status();
  EXPECT_EQ(rcpt("dave@example.com"), "250");
}

TEST_F(LdapSync, WrongPasswordIsReportedAndTheOldListKeepsServing) {
  start(people(), "", {}, {"--sync-interval", "1h"});
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 5; })) << status() << stack_.logs();
  std::ofstream(slapd_.password_file()) << "wrong\n";
  ASSERT_EQ(slapd_.modify("dn: uid=dave,ou=people," + std::string(kLdapSuffix) +
                          "\nchangetype: add\nobjectClass: user\nuid: dave\ncn: dave\nsn: dave\nmail: dave@example.com\n"),
            "");
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string st = status();
  EXPECT_NE(st.find("Invalid credentials"), std::string::npos) << st;
  EXPECT_NE(st.find("list unchanged"), std::string::npos) << st;
  EXPECT_EQ(rcpt("alice@example.com"), "250");
  EXPECT_EQ(rcpt("dave@example.com"), "550");
  EXPECT_EQ(addresses("example.com"), 5u);
}

TEST_F(LdapSync, UntilTheFirstSyncSucceedsUnknownRecipientsAreDeferred) {
  ASSERT_TRUE(slapd_.start(people())) << slapd_.error();
  std::ofstream(slapd_.password_file()) << "wrong";
  stack_.set_directory_args({"--sync-interval", "1h", "--sync-poll", "100ms"});
  ASSERT_EQ(stack_.start(yaml("")), "");
  ASSERT_TRUE(eventually([&] { return status().find("Invalid credentials") != std::string::npos; })) << status();
  EXPECT_NE(stack_.ctl({"domain", "get", "example.com"}).out.find("ldap_sync_pending=true"), std::string::npos);
  EXPECT_EQ(rcpt("alice@example.com"), "451");  // not 550: the list is not there yet
  std::ofstream(slapd_.password_file()) << kSyncPassword;
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(rcpt("alice@example.com"), "250");
  EXPECT_EQ(rcpt("nobody@example.com"), "550");
}

TEST_F(LdapSync, LdapKilledMidSyncLeavesTheListAsItWas) {
  const std::string ldif = numbered_users(20000);
  ASSERT_TRUE(slapd_.start(ldif)) << slapd_.error();
  stack_.set_directory_args({"--sync-interval", "1h", "--sync-poll", "100ms"});
  // The domain first, with a list of its own; then the source (10 entries a page).
  ASSERT_EQ(stack_.start("domains:\n  - {name: example.com, mode: list, routes: " + route() +
                         ", addresses: [u1, u2, u3, u4, u5]}\n"),
            "");
  std::string text = yaml("    page_size: 10\n");
  text.replace(text.find("example.com, example.org]"), 25, "example.com]");
  text.replace(text.find("  - {name: example.org"), text.find('\n', text.find("  - {name: example.org")) -
                                                          text.find("  - {name: example.org") + 1, "");
  ASSERT_EQ(apply(text), "");
  ASSERT_TRUE(eventually([&] { return stack_.directory().read_log().find("sync_page") != std::string::npos; }, 20s));
  slapd_.kill();
  ASSERT_TRUE(eventually([&] { return status().find("list unchanged") != std::string::npos; })) << status();
  EXPECT_EQ(addresses("example.com"), 5u);
  EXPECT_EQ(rcpt("u1@example.com"), "250");
  EXPECT_EQ(rcpt("u19999@example.com"), "550");
  // LDAP back: the next run completes.
  ASSERT_TRUE(slapd_.restart()) << slapd_.error();
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "60"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(addresses("example.com"), 20000u);
}

TEST_F(LdapSync, ShrinkGuardHoldsBackAShrinkAndAnEmptyResultUnlessForced) {
  start(people(), "", {}, {"--sync-interval", "1h"});
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 5; })) << status() << stack_.logs();
  // One of five is 20 % > 10 %: held back.
  ASSERT_EQ(slapd_.modify("dn: cn=sales,ou=people," + std::string(kLdapSuffix) + "\nchangetype: delete\n"), "");
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("would remove 1 of 5 addresses (20.0% > max_shrink 10.0%)"), std::string::npos) << r.out;
  EXPECT_EQ(rcpt("sales@example.com"), "250");
  // A filter that matches nothing: an empty result is held back too.
  std::string text = yaml("    filter: \"(mail=nobody-has-this)\"\n");
  ASSERT_EQ(apply(text), "");
  r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("empty result would remove all 5 addresses"), std::string::npos) << r.out;
  EXPECT_EQ(addresses("example.com"), 5u);
  EXPECT_NE(status().find("held_back: +0 -5"), std::string::npos) << status();
  // Forced, it is applied.
  r = stack_.ctl({"sync", "run", "example.com", "--force", "--wait-seconds", "20"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(addresses("example.com"), 0u);
  EXPECT_EQ(rcpt("alice@example.com"), "550");
}

TEST_F(LdapSync, TwoDirectoriesExactlyOneSyncs) {
  start(people(), "", {}, {"--sync-interval", "1h", "--sync-poll", "50ms", "--sync-replica", "one"});
  // A second directory on the same Redis, polling as eagerly.
  Process second;
  const int port = free_tcp_port();
  ASSERT_TRUE(second.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--redis-port",
                            std::to_string(stack_.redis().port()), "--http-listen=", "--admin-token-file",
                            stack_.dir() + "/admin-token", "--sync-interval", "1h", "--sync-poll", "50ms",
                            "--sync-replica", "two"},
                           stack_.dir() + "/directory2.log"));
  ASSERT_TRUE(wait_for_port(port, 10s));
  ASSERT_TRUE(eventually([&] { return addresses("example.com") == 5; })) << status();
  auto runs = [&] { return count(stack_.directory().read_log(), "sync_run ") + count(second.read_log(), "sync_run "); };
  ASSERT_TRUE(eventually([&] { return runs() == 1u; }));  // its log line follows the records
  std::this_thread::sleep_for(500ms);  // both replicas polled about ten times since: no second run
  EXPECT_EQ(runs(), 1u);
  // Each request runs once, whichever replica takes it.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(stack_.ctl({"sync", "run", "example.org"}).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return runs() == 5u; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(runs(), 5u);
  // A lease held elsewhere stops both.
  stack_.redis().cli({"SET", "doorman:v1:sync-lease", "three 1", "PX", "60000"});
  RunResult r = stack_.ctl({"sync", "run", "example.com", "--wait-seconds", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(status().find("syncing now: three"), std::string::npos) << status();
  EXPECT_EQ(runs(), 5u);
  stack_.redis().cli({"DEL", "doorman:v1:sync-lease"});
  ASSERT_TRUE(eventually([&] { return runs() == 6u; }));
  second.stop();
}

}  // namespace
}  // namespace doorman::test
