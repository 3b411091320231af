// doormanctl end to end: the built doormanctl and doorman-directory binaries
// against a real redis-server, all started and stopped by PID.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "doorman/v1/admin.pb.h"
#include "doorman/v1/recipient.grpc.pb.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::test {
namespace {

class DirectoryCtl : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    dir_ = make_temp_dir("doorman-ctl");
    token_file_ = write("admin-token", std::string(kToken) + "\n");
    port_ = free_tcp_port();
    http_port_ = free_tcp_port();
    ASSERT_TRUE(directory_.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--http-listen", "127.0.0.1:" + std::to_string(http_port_), "--redis-port",
                                  std::to_string(redis_.port()), "--shutdown-grace-seconds", "1",
                                  "--admin-token-file", token_file_, "--stats-interval", "200ms"},
                                 dir_ + "/directory.log"));
    ASSERT_TRUE(wait_for_port(port_, std::chrono::seconds(10))) << directory_.read_log();
    ASSERT_TRUE(wait_for_port(http_port_, std::chrono::seconds(10))) << directory_.read_log();
  }
  void TearDown() override {
    EXPECT_EQ(directory_.stop(), 0) << directory_.read_log();  // SIGTERM -> graceful exit 0
    remove_tree(dir_);
  }
  RunResult ctl(std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(),
                {DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(port_), "--token-file", token_file_});
    return run(args, std::chrono::seconds(30), in);
  }
  // doormanctl without --token-file, with extra environment.
  RunResult bare_ctl(std::vector<std::string> args, const std::vector<std::pair<std::string, std::string>>& env = {}) {
    args.insert(args.begin(), {DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(port_)});
    return run(args, std::chrono::seconds(30), "", env);
  }
  static constexpr const char* kToken = "ctl-test-token-0123456789";
  // Applies example.com (list mode, alice listed).
  void apply_example_com() {
    std::string yaml = write("domains.yaml",
                             "domains:\n"
                             "  - name: example.com\n"
                             "    mode: list\n"
                             "    routes: [\"127.0.0.1:2526\"]\n"
                             "    addresses: [alice]\n");
    ASSERT_EQ(ctl({"apply", "-f", yaml}).exit_code, 0);
  }
  // The directory's verdicts for `rcpts`, in one RecipientService call.
  std::vector<doorman::v1::Verdict> check(const std::vector<std::string>& rcpts) {
    if (!rcpt_)
      rcpt_ = doorman::v1::RecipientService::NewStub(
          grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    doorman::v1::CheckRecipientsRequest req;
    for (const auto& r : rcpts) req.add_recipients(r);
    doorman::v1::CheckRecipientsResponse resp;
    EXPECT_TRUE(rcpt_->CheckRecipients(&ctx, req, &resp).ok());
    return std::vector<doorman::v1::Verdict>(resp.verdicts().begin(), resp.verdicts().end());
  }
  std::unique_ptr<doorman::v1::RecipientService::Stub> rcpt_;
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  RedisServer redis_;
  Process directory_;
  int http_port_ = 0;
  std::string dir_;
  std::string token_file_;
  int port_ = 0;
};

// Parses one line of JSON into `m`; false (with a message) if it is not
// valid JSON of that message.
template <typename M>
::testing::AssertionResult parse_json(const std::string& text, M* m) {
  auto st = google::protobuf::util::JsonStringToMessage(text, m);
  if (!st.ok()) return ::testing::AssertionFailure() << st.ToString() << " in: " << text;
  return ::testing::AssertionSuccess();
}

TEST_F(DirectoryCtl, EveryReadCommandPrintsJson) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  ASSERT_EQ(ctl({"address", "add", "alice@example.com", "bob@example.com", "\"odd\\\"one\"@example.com"}).exit_code, 0);

  v1::ListDomainsResponse domains;
  RunResult r = ctl({"--output", "json", "domain", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(parse_json(r.out, &domains));
  ASSERT_EQ(domains.domains_size(), 1);
  EXPECT_EQ(domains.domains(0).name(), "example.com");
  EXPECT_EQ(domains.domains(0).address_count(), 3u);
  EXPECT_NE(r.out.find("\"local_part_case_sensitive\":false"), std::string::npos) << r.out;  // defaults printed

  v1::Domain domain;  // after the command too, as scripts write it
  r = ctl({"domain", "get", "example.com", "--output=json"});
  ASSERT_TRUE(parse_json(r.out, &domain));
  EXPECT_EQ(domain.routes(0), "127.0.0.1:2526");

  v1::CountAddressesResponse count;
  ASSERT_TRUE(parse_json(ctl({"address", "count", "example.com", "--output", "json"}).out, &count));
  EXPECT_EQ(count.count(), 3u);

  // Streamed page by page (page size 1 here), still one JSON document.
  google::protobuf::Struct list;
  r = ctl({"address", "list", "example.com", "--page-size", "1", "--output", "json"});
  ASSERT_TRUE(parse_json(r.out, &list));
  EXPECT_EQ(list.fields().at("domain").string_value(), "example.com");
  const auto& addresses = list.fields().at("addresses").list_value();
  ASSERT_EQ(addresses.values_size(), 3);
  std::vector<std::string> got;
  for (const auto& v : addresses.values()) got.push_back(v.string_value());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"\"odd\\\"one\"@example.com", "alice@example.com", "bob@example.com"}));

  v1::ExplainResponse explain;
  ASSERT_TRUE(parse_json(ctl({"explain", "nobody@example.com", "--output", "json"}).out, &explain));
  EXPECT_EQ(explain.verdict().code(), 550u);
  EXPECT_FALSE(explain.steps().empty());

  v1::CalloutEntry entry;
  ASSERT_TRUE(parse_json(ctl({"callout", "show", "nobody@example.com", "--output", "json"}).out, &entry));
  EXPECT_FALSE(entry.found());

  v1::GetSyncStatusResponse sync_status;
  ASSERT_TRUE(parse_json(ctl({"sync", "status", "--output", "json"}).out, &sync_status));
  v1::ListSyncSourcesResponse sync_sources;
  ASSERT_TRUE(parse_json(ctl({"sync", "sources", "--output", "json"}).out, &sync_sources));
  v1::Stats stats;
  ASSERT_TRUE(parse_json(ctl({"stats", "--output", "json"}).out, &stats));
  EXPECT_EQ(stats.minutes(), 60u);

  // Text stays the default, and a bad value is a usage error.
  EXPECT_EQ(ctl({"address", "count", "example.com"}).out, "3\n");
  r = ctl({"domain", "list", "--output", "yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--output must be text or json"), std::string::npos) << r.err;
}

// Issue #13: the last hour's figures come from the directory's own counters,
// added to Redis by every replica, and reach doormanctl (and the console).
TEST_F(DirectoryCtl, StatsShowTheLastHoursDecisions) {
  apply_example_com();
  ASSERT_EQ(check({"alice@example.com", "nobody@example.com", "noone@example.com"}).size(), 3u);

  v1::Stats stats;
  for (int i = 0; i < 100 && !(stats.accepted() >= 1 && stats.rejected() >= 2); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    RunResult r = ctl({"stats", "--output", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(parse_json(r.out, &stats));
  }
  EXPECT_EQ(stats.minutes(), 60u);
  EXPECT_EQ(stats.accepted(), 1u);
  EXPECT_EQ(stats.rejected(), 2u);
  EXPECT_EQ(stats.deferred(), 0u);
  // Summed in Redis per minute (not this process's memory): the keys are there.
  EXPECT_NE(redis_.cli({"KEYS", "doorman:v1:stats:*"}).find("doorman:v1:stats:"), std::string::npos);
  RunResult text = ctl({"stats", "--minutes", "5"});
  EXPECT_NE(text.out.find("last 5 min"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("accepted=1 rejected=2"), std::string::npos) << text.out;
  EXPECT_EQ(ctl({"stats", "--minutes", "500"}).exit_code, 2);
}

TEST_F(DirectoryCtl, AdminCallsNeedTheToken) {
  RunResult none = bare_ctl({"domain", "list"});
  EXPECT_EQ(none.exit_code, 1) << none.out << none.err;
  EXPECT_NE(none.err.find("--token-file"), std::string::npos) << none.err;
  RunResult wrong = bare_ctl({"domain", "list"}, {{"DOORMAN_TOKEN", "not-the-token"}});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  RunResult env = bare_ctl({"domain", "list"}, {{"DOORMAN_TOKEN", kToken}});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  RunResult env_file = bare_ctl({"domain", "list"}, {{"DOORMAN_TOKEN_FILE", token_file_}});
  EXPECT_EQ(env_file.exit_code, 0) << env_file.err;
  RunResult flag = ctl({"domain", "list"});
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  RunResult missing = bare_ctl({"--token-file", dir_ + "/absent", "domain", "list"});
  EXPECT_EQ(missing.exit_code, 1);
  // Refusals are logged without the presented token.
  std::string log = directory_.read_log();
  EXPECT_NE(log.find("admin_auth_failed"), std::string::npos) << log;
  EXPECT_EQ(log.find("not-the-token"), std::string::npos) << log;
  EXPECT_EQ(log.find(kToken), std::string::npos) << log;
  // /metrics counts them.
  std::string m = http_get(http_port_, "/metrics").body;
  EXPECT_NE(m.find("doorman_directory_admin_auth_failures_total{reason=\"invalid\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("doorman_directory_admin_auth_failures_total{reason=\"missing\"} 1"), std::string::npos) << m;
}

TEST_F(DirectoryCtl, ApplyIsIdempotent) {
  std::string yaml = std::string(DOORMAN_TESTDATA) + "/domains.yaml";
  RunResult dry = ctl({"apply", "-f", yaml, "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("(dry run) + domain example.com"), std::string::npos) << dry.out;
  RunResult first = ctl({"apply", "-f", yaml});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("+ domain example.com"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("example.com: +5 -0 addresses"), std::string::npos) << first.out;
  EXPECT_NE(first.err.find("warning: domain catchall.example uses mode accept-all"), std::string::npos);
  RunResult second = ctl({"apply", "-f", yaml});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, "no changes\n");
  RunResult dry2 = ctl({"apply", "-f", yaml, "--dry-run"});
  EXPECT_EQ(dry2.out, "no changes\n");

  // A changed file: mode change, one address fewer, one domain gone.
  std::string changed = write("example.com.txt", "carol@example.com\n");
  (void)changed;
  std::string y2 = write("domains.yaml",
                         "domains:\n"
                         "  - name: example.com\n"
                         "    mode: callout\n"
                         "    routes: [\"127.0.0.1:2526\"]\n"
                         "    addresses: [alice, bob, dave, erin]\n"
                         "    address_files: [example.com.txt]\n");
  RunResult third = ctl({"apply", "-f", y2});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(third.out.find("~ domain example.com: mode list -> callout"), std::string::npos) << third.out;
  EXPECT_NE(third.out.find("- domain catchall.example"), std::string::npos) << third.out;
  EXPECT_EQ(ctl({"apply", "-f", y2}).out, "no changes\n");
}

TEST_F(DirectoryCtl, ApplyValidatesBeforeWriting) {
  std::string y = write("bad.yaml",
                        "domains:\n"
                        "  - name: good.example\n"
                        "    mode: list\n"
                        "    routes: [\"mx:25\"]\n"
                        "  - name: bad.example\n"
                        "    mode: sometimes\n"
                        "    routes: [\"mx:0\"]\n");
  RunResult r = ctl({"apply", "-f", y});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.yaml:6:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.yaml:7:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was changed"), std::string::npos) << r.err;
  EXPECT_EQ(ctl({"domain", "list"}).out, "");
}

// Issue #14: LDAP sources in the apply file: checked with the file, put,
// changed and deleted declaratively, their domains' lists left alone.
TEST_F(DirectoryCtl, ApplyKeepsLdapSourcesInStepAndLeavesTheirListsAlone) {
  std::string bad = write("bad-ldap.yaml",
                          "domains:\n"
                          "  - {name: example.com, mode: list, routes: [\"mx:25\"], addresses: [alice]}\n"
                          "  - {name: callout.example, mode: callout, routes: [\"mx:25\"]}\n"
                          "ldap_sources:\n"
                          "  - {name: corp, url: \"ldap://dc1\", base_dn: \"dc=x\", domains: [example.com]}\n"
                          "  - {name: two, url: \"ldap://dc1\", base_dn: \"dc=x\", domains: [callout.example]}\n"
                          "  - {name: three, url: \"ldap://dc1\", base_dn: \"dc=x\", domains: [other.example]}\n"
                          "  - {name: four, url: \"http://dc1\", base_dn: \"dc=x\", domains: [example.com]}\n"
                          "  - {name: five, url: \"ldap://dc1\", base_dn: \"dc=x\", bind_dn: \"cn=x\","
                          " domains: [example.com]}\n");
  RunResult r = ctl({"apply", "-f", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("domain example.com takes its list from LDAP"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("domain callout.example must have mode list"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("domain other.example is not in 'domains'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("url must start with ldap:// or ldaps://"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bind_dn and bind_password_file go together"), std::string::npos) << r.err;
  EXPECT_EQ(ctl({"domain", "list"}).out, "");

  // A valid file; the directory syncs nothing here (nothing listens on port 1).
  std::string good = write("ldap.yaml",
                           "domains:\n"
                           "  - {name: example.com, mode: list, routes: [\"mx:25\"]}\n"
                           "ldap_sources:\n"
                           "  - {name: corp, url: \"ldap://127.0.0.1:1\", base_dn: \"dc=x\", domains: [example.com],"
                           " timeout_seconds: 1}\n");
  r = ctl({"apply", "-f", good});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("+ ldap source corp (ldap://127.0.0.1:1, domains example.com)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("addresses"), std::string::npos) << r.out;  // its list is not replaced
  EXPECT_EQ(ctl({"apply", "-f", good}).out, "no changes\n");
  r = ctl({"sync", "sources"});
  EXPECT_NE(r.out.find("corp  url=ldap://127.0.0.1:1 tls=starttls"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_shrink=0.1 page_size=500"), std::string::npos) << r.out;
  // Hand-added addresses stay until a sync; apply does not replace the list.
  ASSERT_EQ(ctl({"address", "add", "alice@example.com"}).exit_code, 0);
  EXPECT_EQ(ctl({"apply", "-f", good}).out, "no changes\n");
  EXPECT_EQ(ctl({"address", "count", "example.com"}).out, "1\n");
  EXPECT_EQ(ctl({"sync", "run", "nosource.example"}).exit_code, 1);
  // Without the source, it is deleted.
  std::string none = write("none.yaml", "domains:\n  - {name: example.com, mode: list, routes: [\"mx:25\"]}\n");
  r = ctl({"apply", "-f", none});
  EXPECT_NE(r.out.find("- ldap source corp"), std::string::npos) << r.out;
  EXPECT_EQ(ctl({"sync", "status"}).out, "no LDAP sources\n");
}

// Issue #12: the per-domain opt-out of the routing check, through
// doormanctl and apply, shown in domain get/list and explain.
TEST_F(DirectoryCtl, RoutingLocalPartsOptOutRoundTrips) {
  RunResult r = ctl({"domain", "add", "example.com", "--mode", "accept-all", "--route", "127.0.0.1:2526"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("allow_routing_local_parts=false"), std::string::npos) << r.out;
  r = ctl({"explain", "victim%other.test@example.com"});
  EXPECT_NE(r.out.find("550 5.7.1 <victim%other.test@example.com>: Recipient address rejected: routing in the local "
                       "part is not allowed"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("routing: local part contains '%'"), std::string::npos) << r.out;
  r = ctl({"domain", "update", "example.com", "--allow-routing-local-parts"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("allow_routing_local_parts=true"), std::string::npos) << r.out;
  EXPECT_NE(ctl({"domain", "list"}).out.find("allow_routing_local_parts=true"), std::string::npos);
  EXPECT_NE(ctl({"domain", "get", "example.com"}).out.find("allow_routing_local_parts=true"), std::string::npos);
  r = ctl({"explain", "victim%other.test@example.com"});
  EXPECT_NE(r.out.find("250 2.1.5 OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("allowed for example.com (allow_routing_local_parts)"), std::string::npos) << r.out;
  // Other updates keep it.
  ASSERT_EQ(ctl({"domain", "update", "example.com", "--case-sensitive"}).exit_code, 0);
  EXPECT_NE(ctl({"domain", "get", "example.com"}).out.find("allow_routing_local_parts=true"), std::string::npos);
  ASSERT_EQ(ctl({"domain", "update", "example.com", "--case-insensitive"}).exit_code, 0);
  EXPECT_EQ(ctl({"domain", "update", "example.com", "--allow-routing-local-parts", "--no-allow-routing-local-parts"})
                .exit_code,
            2);
  // apply: the same setting is no change; leaving it out turns it off.
  std::string on = write("on.yaml",
                         "domains:\n"
                         "  - name: example.com\n"
                         "    mode: accept-all\n"
                         "    routes: [\"127.0.0.1:2526\"]\n"
                         "    allow_routing_local_parts: true\n");
  r = ctl({"apply", "-f", on});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no changes\n");
  std::string off = write("off.yaml",
                          "domains:\n"
                          "  - name: example.com\n"
                          "    mode: accept-all\n"
                          "    routes: [\"127.0.0.1:2526\"]\n");
  r = ctl({"apply", "-f", off});
  EXPECT_NE(r.out.find("~ domain example.com: allow_routing_local_parts true -> false"), std::string::npos) << r.out;
  EXPECT_NE(ctl({"domain", "get", "example.com"}).out.find("allow_routing_local_parts=false"), std::string::npos);
  r = ctl({"apply", "-f", on});
  EXPECT_NE(r.out.find("~ domain example.com: allow_routing_local_parts false -> true"), std::string::npos) << r.out;
  EXPECT_NE(ctl({"explain", "victim%other.test@example.com"}).out.find("250 2.1.5"), std::string::npos);
  std::string bad = write("bad.yaml",
                          "domains:\n"
                          "  - name: example.com\n"
                          "    mode: accept-all\n"
                          "    routes: [\"127.0.0.1:2526\"]\n"
                          "    allow_routing_local_parts: sometimes\n");
  EXPECT_EQ(ctl({"apply", "-f", bad}).exit_code, 1);
}

// Issue #12: a file without domains would delete them all.
// Issue #13: the console's overview verdict, in doormanctl's domain get/list.
TEST_F(DirectoryCtl, DomainListSaysWhetherUnknownRecipientsAreRejected) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  RunResult r = ctl({"domain", "list"});
  EXPECT_NE(r.out.find("  rejecting unknown recipients: no (address list is empty"), std::string::npos) << r.out;
  ASSERT_EQ(ctl({"address", "add", "alice@example.com"}).exit_code, 0);
  r = ctl({"domain", "get", "example.com"});
  EXPECT_NE(r.out.find("  rejecting unknown recipients: yes\n"), std::string::npos) << r.out;
  ASSERT_EQ(ctl({"domain", "update", "example.com", "--mode", "accept-all"}).exit_code, 0);
  r = ctl({"domain", "list"});
  EXPECT_NE(r.out.find("  rejecting unknown recipients: no (accept-all mode"), std::string::npos) << r.out;
}

TEST_F(DirectoryCtl, ApplyOfAnEmptyDomainListNeedsAllowEmpty) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  for (const char* text : {"domains: []\n", "domains:\n"}) {
    std::string empty = write("empty.yaml", text);
    RunResult r = ctl({"apply", "-f", empty});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("lists no domains"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--allow-empty"), std::string::npos) << r.err;
    r = ctl({"apply", "-f", empty, "--dry-run"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(ctl({"domain", "list"}).out.find("example.com"), std::string::npos);
  }
  RunResult r = ctl({"apply", "-f", dir_ + "/empty.yaml", "--allow-empty"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("- domain example.com"), std::string::npos) << r.out;
  EXPECT_EQ(ctl({"domain", "list"}).out, "");
  // The directory refuses an empty --apply file at start-up.
  RunResult d = run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen=", "--redis-port",
                     std::to_string(redis_.port()), "--admin-insecure", "--apply", dir_ + "/empty.yaml"});
  EXPECT_EQ(d.exit_code, 1) << d.err;
  EXPECT_NE(d.err.find("lists no domains"), std::string::npos) << d.err;
}

// Issue #12: FLUSHALL under a running directory (Redis restarted empty):
// 451 4.3.0 for everyone, never a 5xx, /readyz 503, the gauge at 0, one
// warning (not one per recipient); applying again restores everything.
TEST_F(DirectoryCtl, LostRedisDataDefersAndFailsReadinessUntilReapplied) {
  apply_example_com();
  auto wait_ready = [&](int want) {
    int got = 0;
    for (int i = 0; i < 50 && got != want; ++i) {
      got = http_get(http_port_, "/readyz").status;
      if (got != want) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return got;
  };
  EXPECT_EQ(wait_ready(200), 200);
  EXPECT_EQ(check({"alice@example.com"})[0].code(), 250u);
  const size_t log_before = directory_.read_log().size();  // (a fresh store warned once at start)
  redis_.cli({"FLUSHALL"});
  for (int round = 0; round < 20; ++round) {
    auto v = check({"alice@example.com", "nobody@example.com", "x@other.org"});
    ASSERT_EQ(v.size(), 3u);
    for (const auto& x : v) {
      EXPECT_EQ(x.code(), 451u);
      EXPECT_EQ(x.enhanced_code(), "4.3.0");
    }
  }
  EXPECT_EQ(wait_ready(503), 503);
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  EXPECT_NE(http_get(http_port_, "/metrics").body.find("doorman_directory_store_configured 0"), std::string::npos);
  RunResult r = ctl({"explain", "alice@example.com"});
  EXPECT_NE(r.out.find("451 4.3.0"), std::string::npos) << r.out;
  std::string log = directory_.read_log().substr(log_before);
  size_t warnings = 0;
  for (size_t at = log.find("event=store_not_configured"); at != std::string::npos;
       at = log.find("event=store_not_configured", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1u) << log;
  // Re-apply: back to normal.
  apply_example_com();
  auto v = check({"alice@example.com", "nobody@example.com"});
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[1].enhanced_code(), "5.1.1");
  EXPECT_EQ(wait_ready(200), 200);
  EXPECT_NE(http_get(http_port_, "/metrics").body.find("doorman_directory_store_configured 1"), std::string::npos);
  EXPECT_NE(directory_.read_log().find("event=store_configured"), std::string::npos);
}

// Issue #14: shadow mode through doormanctl and apply, and `doormanctl hash`.
TEST_F(DirectoryCtl, ShadowModeRoundTripsThroughCtlAndApply) {
  RunResult r = ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526", "--shadow"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enforce=false shadow_since=20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("would_reject=0"), std::string::npos) << r.out;
  r = ctl({"explain", "ghost@example.com"});
  EXPECT_NE(r.out.find("250 2.1.5 OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("would_reject=\"550 5.1.1\""), std::string::npos) << r.out;
  EXPECT_EQ(ctl({"domain", "update", "example.com", "--shadow", "--enforce"}).exit_code, 2);
  r = ctl({"domain", "update", "example.com", "--enforce"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("enforce=true"), std::string::npos) << r.out;
  EXPECT_NE(ctl({"explain", "ghost@example.com"}).out.find("550 5.1.1"), std::string::npos);
  // Other updates keep it.
  ASSERT_EQ(ctl({"domain", "update", "example.com", "--shadow"}).exit_code, 0);
  ASSERT_EQ(ctl({"domain", "update", "example.com", "--no-subaddress"}).exit_code, 0);
  EXPECT_NE(ctl({"domain", "get", "example.com"}).out.find("enforce=false"), std::string::npos);
  // apply: enforce false is no change; leaving it out enforces.
  std::string shadow = write("shadow.yaml",
                             "domains:\n"
                             "  - name: example.com\n"
                             "    mode: list\n"
                             "    routes: [\"127.0.0.1:2526\"]\n"
                             "    subaddress_separator: \"\"\n"
                             "    enforce: false\n");
  r = ctl({"apply", "-f", shadow});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("enforce"), std::string::npos) << r.out;
  std::string enforced = write("enforced.yaml",
                               "domains:\n"
                               "  - name: example.com\n"
                               "    mode: list\n"
                               "    routes: [\"127.0.0.1:2526\"]\n"
                               "    subaddress_separator: \"\"\n");
  r = ctl({"apply", "-f", enforced});
  EXPECT_NE(r.out.find("~ domain example.com: enforce false -> true"), std::string::npos) << r.out;
  EXPECT_NE(ctl({"domain", "list"}).out.find("enforce=true"), std::string::npos);
  r = ctl({"apply", "-f", shadow});
  EXPECT_NE(r.out.find("~ domain example.com: enforce true -> false (shadow mode: the would-reject count starts now)"),
            std::string::npos)
      << r.out;
  std::string bad = write("bad.yaml",
                          "domains:\n"
                          "  - name: example.com\n"
                          "    mode: list\n"
                          "    routes: [\"127.0.0.1:2526\"]\n"
                          "    enforce: maybe\n");
  EXPECT_EQ(ctl({"apply", "-f", bad}).exit_code, 1);
}

TEST_F(DirectoryCtl, HashNeedsTheKeyAndAnAddress) {
  const std::string key = write("log-key", "0123456789abcdef0123456789abcdef\n");
  RunResult a = bare_ctl({"hash", "--key-file", key, "<Alice@Example.COM>", "alice@example.com"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  std::istringstream lines(a.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(first.substr(0, 16), second.substr(0, 16));  // case folded
  EXPECT_EQ(first.substr(16), "  Alice@Example.COM");
  // The key from the environment, as a file or as the key itself.
  RunResult env_file = bare_ctl({"hash", "alice@example.com"}, {{"DOORMAN_LOG_RECIPIENTS_KEY_FILE", key}});
  EXPECT_EQ(env_file.out, second + "\n") << env_file.err;
  RunResult env_key =
      bare_ctl({"hash", "alice@example.com"}, {{"DOORMAN_LOG_RECIPIENTS_KEY", "0123456789abcdef0123456789abcdef"}});
  EXPECT_EQ(env_key.out, second + "\n") << env_key.err;
  // No key, a short key, not an address.
  RunResult none = bare_ctl({"hash", "alice@example.com"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no key"), std::string::npos) << none.err;
  RunResult weak = bare_ctl({"hash", "--key-file", write("weak", "short\n"), "alice@example.com"});
  EXPECT_EQ(weak.exit_code, 1);
  EXPECT_NE(weak.err.find("too short"), std::string::npos) << weak.err;
  RunResult bad = bare_ctl({"hash", "--key-file", key, "not an address"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not an address"), std::string::npos) << bad.err;
}

TEST_F(DirectoryCtl, ImportReportsMalformedLinesAndWritesNothing) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  std::string bad = write("bad.txt", "# header\na@example.com\n\nnot an address\nb@example.com\n");
  RunResult r = ctl({"import", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":4:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was imported"), std::string::npos) << r.err;
  EXPECT_EQ(ctl({"address", "count", "example.com"}).out, "0\n");

  std::string good = write("good.txt", "a@example.com\r\nB@Example.com\n");
  r = ctl({"import", good});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "received 2, added 2, unchanged 0, errors 0\n");
  r = ctl({"import", "-", "--replace", "example.com"}, "c\nb@example.com\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "received 2, added 1, removed 1, unchanged 1, errors 0\n");
  r = ctl({"import", "-", "--replace", "example.com"}, "d\nbad address\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-:2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was replaced"), std::string::npos) << r.err;
  r = ctl({"address", "list", "example.com", "--page-size", "1"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out == "b@example.com\nc@example.com\n" || r.out == "c@example.com\nb@example.com\n") << r.out;
}

// import --replace --dry-run prints what the replace would change (text and
// JSON), counts malformed lines (exit 1) and changes nothing.
TEST_F(DirectoryCtl, ReplaceDryRunPrintsCountsAndChangesNothing) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  ASSERT_EQ(ctl({"address", "add", "a@example.com", "b@example.com", "c@example.com"}).exit_code, 0);
  std::string file = write("new.txt", "# new list\nb\nC@example.com\nd@example.com\ne\n");
  RunResult r = ctl({"import", file, "--replace", "example.com", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "dry run for example.com (nothing written): would add 2, remove 1, keep 2 unchanged; 0 malformed lines\n");

  v1::ImportResponse json;
  r = ctl({"--output", "json", "import", file, "--replace", "example.com", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(parse_json(r.out, &json)) << r.out;
  EXPECT_TRUE(json.dry_run());
  EXPECT_EQ(json.received(), 4u);
  EXPECT_EQ(json.added(), 2u);
  EXPECT_EQ(json.removed(), 1u);
  EXPECT_EQ(json.unchanged(), 2u);
  EXPECT_EQ(json.error_count(), 0u);

  // Malformed lines (one only this side can see, one only the directory
  // can: another domain) are counted, the rest still compared; exit 1.
  std::string bad = write("bad.txt", "b\nnot an address\nx@elsewhere.org\n");
  r = ctl({"import", bad, "--replace", "example.com", "--dry-run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "dry run for example.com (nothing written): would add 0, remove 2, keep 1 unchanged; 2 malformed lines\n");
  EXPECT_NE(r.err.find(bad + ":2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("x@elsewhere.org"), std::string::npos) << r.err;

  r = ctl({"address", "list", "example.com"});
  EXPECT_EQ(r.exit_code, 0);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(r.out.substr(at, nl - at));
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"a@example.com", "b@example.com", "c@example.com"}));

  // --dry-run only with --replace; an unknown domain is an error.
  EXPECT_EQ(ctl({"import", file, "--dry-run"}).exit_code, 2);
  r = ctl({"import", file, "--replace", "nowhere.org", "--dry-run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
}

TEST_F(DirectoryCtl, ExplainAndUsage) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  ASSERT_EQ(ctl({"address", "add", "alice@example.com"}).exit_code, 0);
  RunResult r = ctl({"explain", "Alice+x@example.com"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("250 2.1.5 OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("list: 'alice' is in the list of example.com"), std::string::npos) << r.out;
  r = ctl({"explain", "nobody@example.com"});
  EXPECT_NE(r.out.find("550 5.1.1"), std::string::npos) << r.out;
  EXPECT_EQ(ctl({"--help"}).exit_code, 0);
  EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(ctl({"domain", "add", "x.org", "--route", "mx:25"}).exit_code, 2);  // no --mode
  EXPECT_EQ(ctl({"domain", "get", "nope.org"}).exit_code, 1);
  EXPECT_EQ(ctl({"address", "add", "x@unguarded.org"}).exit_code, 1);
}

TEST_F(DirectoryCtl, ServesMetricsHealthAndReadiness) {
  ASSERT_EQ(ctl({"domain", "add", "example.com", "--mode", "list", "--route", "127.0.0.1:2526"}).exit_code, 0);
  HttpResult m = http_get(http_port_, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("doorman_directory_build_info{version=\""), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("doorman_directory_admin_requests_total{method=\"CreateDomain\",code=\"OK\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  // Ready once a Redis connection is up (polled every 500 ms).
  int ready = 0;
  for (int i = 0; i < 50 && ready != 200; ++i) {
    ready = http_get(http_port_, "/readyz").status;
    if (ready != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready, 200);
  redis_.stop();
  for (int i = 0; i < 50 && ready != 503; ++i) {
    ready = http_get(http_port_, "/readyz").status;
    if (ready != 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready, 503);
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);  // alive, just not ready
}

TEST(DirectoryBinary, HttpListenInUseFailsAtStartup) {
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  // Something else (here: a second directory) already has the HTTP port.
  std::string dir = make_temp_dir("doorman-http");
  int http = free_tcp_port();
  Process first;
  int grpc_first = free_tcp_port();
  ASSERT_TRUE(first.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(grpc_first),
                           "--http-listen", "127.0.0.1:" + std::to_string(http), "--redis-port",
                           std::to_string(redis.port()), "--admin-insecure"},
                          dir + "/first.log"));
  ASSERT_TRUE(wait_for_port(http, std::chrono::seconds(10))) << first.read_log();
  RunResult r = run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen",
                     "127.0.0.1:" + std::to_string(http), "--redis-port", std::to_string(redis.port()),
                     "--admin-insecure"},
                    std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("http-listen"), std::string::npos) << r.err;
  // --http-listen "" turns the endpoint off.
  Process off;
  int grpc_off = free_tcp_port();
  ASSERT_TRUE(off.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(grpc_off),
                         "--http-listen=", "--redis-port", std::to_string(redis.port()), "--admin-insecure"},
                        dir + "/off.log"));
  ASSERT_TRUE(wait_for_port(grpc_off, std::chrono::seconds(10))) << off.read_log();
  EXPECT_EQ(off.read_log().find("http_listening"), std::string::npos) << off.read_log();
  EXPECT_EQ(off.stop(), 0);
  EXPECT_EQ(first.stop(), 0);
  remove_tree(dir);
}

TEST(DirectoryBinary, ApplyAtStartupAndSeparateAdminListenerWithToken) {
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  std::string dir = make_temp_dir("doorman-admin");
  std::string token = dir + "/token";
  std::ofstream(token) << "startup-token-42\n";
  int grpc = free_tcp_port(), admin = free_tcp_port();
  Process d;
  ASSERT_TRUE(d.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(grpc), "--admin-listen",
                       "127.0.0.1:" + std::to_string(admin), "--http-listen=", "--redis-port",
                       std::to_string(redis.port()), "--admin-token-file", token, "--apply",
                       std::string(DOORMAN_TESTDATA) + "/domains.yaml"},
                      dir + "/directory.log"));
  ASSERT_TRUE(wait_for_port(admin, std::chrono::seconds(10))) << d.read_log();
  ASSERT_TRUE(wait_for_port(grpc, std::chrono::seconds(10))) << d.read_log();
  // --apply went through the in-process channel with the token.
  RunResult r = run({DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(admin), "--token-file", token,
                     "domain", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err << d.read_log();
  EXPECT_NE(r.out.find("example.com"), std::string::npos) << r.out;
  // The recipient listener does not serve the admin API.
  r = run({DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(grpc), "--token-file", token, "domain", "list"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(d.read_log().find("startup-token-42"), std::string::npos);
  EXPECT_EQ(d.stop(), 0) << d.read_log();
  remove_tree(dir);
}

TEST(DirectoryBinary, HelpAndBadOptions) {
  RunResult r = run({DOORMAN_DIRECTORY_BIN, "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"--listen", "--redis-host", "--redis-port", "--redis-password-file",
                          "--redis-db", "--redis-timeout-ms", "--redis-connections", "--log-level", "--apply",
                          "--shutdown-grace-seconds", "--http-listen", "--admin-listen", "--admin-token-file",
                          "--admin-insecure"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  EXPECT_EQ(r.out.find("--redis-password="), std::string::npos);  // removed (issue #12)
  // No admin token and no explicit opt-out: refuses to start.
  r = run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen="});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--admin-token-file"), std::string::npos) << r.err;
  r = run({DOORMAN_DIRECTORY_BIN, "--admin-token-file", "/nonexistent/doorman-token"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("admin-token-file"), std::string::npos) << r.err;
  r = run({DOORMAN_DIRECTORY_BIN, "--redis-port", "0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("redis-port"), std::string::npos) << r.err;
}

// Issue #13: the console's options are checked at start-up.
TEST(DirectoryBinary, ConsoleNeedsTheAdminTokenAndAValidSessionTtl) {
  RunResult r = run({DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--http-listen=", "--console-listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("option console-listen: the console needs --admin-token-file"), std::string::npos) << r.err;
  r = run({DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--http-listen=", "--console-session-ttl", "30s"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("option console-session-ttl"), std::string::npos) << r.err;
  // HTTPS on the console: both files, readable, a client CA only with them, and a console to serve.
  r = run({DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--http-listen=", "--console-tls-client-ca-file", "/etc/hostname"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("console-tls-client-ca-file needs TLS"), std::string::npos) << r.err;
  r = run({DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--http-listen=", "--console-tls-cert-file",
           "/nonexistent/console.pem", "--console-tls-key-file", "/nonexistent/console.key"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("console-tls-cert-file"), std::string::npos) << r.err;
  std::string dir = make_temp_dir("doorman-console-tls-opts");
  std::ofstream(dir + "/c.pem") << "-----BEGIN CERTIFICATE-----\n";
  r = run({DOORMAN_DIRECTORY_BIN, "--admin-insecure", "--http-listen=", "--console-tls-cert-file", dir + "/c.pem",
           "--console-tls-key-file", dir + "/c.pem"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("option console-tls-cert-file: needs --console-listen"), std::string::npos) << r.err;
  remove_tree(dir);
}

// Issue #12: no Redis password on the command line (/proc/PID/cmdline is
// world-readable). The flag is refused with its reason, from every source;
// the file and DOORMAN_REDIS_PASSWORD work against redis-server --requirepass.
TEST(DirectoryBinary, RedisPasswordFromFileOrEnvironmentNeverTheCommandLine) {
  std::string dir = make_temp_dir("doorman-redis-auth");
  const std::string password = "s3cret-redis-pw";
  int rport = free_tcp_port();
  Process redis;
  ASSERT_TRUE(redis.start({"redis-server", "--port", std::to_string(rport), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--requirepass", password},
                          dir + "/redis.log"));
  ASSERT_TRUE(wait_for_port(rport, std::chrono::seconds(10))) << redis.read_log();
  const std::vector<std::string> base = {DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen=",
                                         "--redis-port", std::to_string(rport), "--admin-insecure"};
  auto refused = [&](std::vector<std::string> extra, const std::vector<std::pair<std::string, std::string>>& env) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunResult r = run(argv, std::chrono::seconds(20), "", env);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("option --redis-password was removed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--redis-password-file"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("DOORMAN_REDIS_PASSWORD"), std::string::npos) << r.err;
  };
  refused({"--redis-password", password}, {});
  refused({"--redis-password=" + password}, {});
  std::ofstream(dir + "/old.conf") << "redis-password = " << password << "\n";
  refused({"--config", dir + "/old.conf"}, {});
  refused({}, {{"DOORMAN_DIRECTORY_REDIS_PASSWORD", password}});
  // A directory that reaches Redis with the password can create a domain.
  int n = 0;
  auto works = [&](std::vector<std::string> extra, const std::vector<std::pair<std::string, std::string>>& env) {
    int port = free_tcp_port();
    std::vector<std::string> argv = {DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(port),
                                     "--http-listen=", "--redis-port", std::to_string(rport), "--admin-insecure"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process d;
    if (!d.start(argv, dir + "/directory.log", env) || !wait_for_port(port, std::chrono::seconds(10))) return false;
    std::string cmdline;
    std::ifstream(("/proc/" + std::to_string(d.pid()) + "/cmdline").c_str()) >> cmdline;
    EXPECT_EQ(cmdline.find(password), std::string::npos);
    const std::string domain = "d" + std::to_string(++n) + ".example";
    const std::string server = "127.0.0.1:" + std::to_string(port);
    RunResult add = run({DOORMANCTL_BIN, "--server", server, "domain", "add", domain, "--mode", "list", "--route",
                         "127.0.0.1:2526"});
    RunResult get = run({DOORMANCTL_BIN, "--server", server, "domain", "get", domain});
    EXPECT_EQ(d.stop(), 0);
    return add.exit_code == 0 && get.exit_code == 0 && get.out.find(domain) != std::string::npos;
  };
  EXPECT_TRUE(works({}, {{"DOORMAN_REDIS_PASSWORD", password}}));
  std::ofstream(dir + "/redis-password") << password << "\n";
  EXPECT_TRUE(works({"--redis-password-file", dir + "/redis-password"}, {}));
  // The file wins over the environment.
  EXPECT_TRUE(works({"--redis-password-file", dir + "/redis-password"}, {{"DOORMAN_REDIS_PASSWORD", "wrong"}}));
  EXPECT_FALSE(works({}, {}));  // no password: Redis refuses (NOAUTH)
  EXPECT_FALSE(works({}, {{"DOORMAN_REDIS_PASSWORD", "wrong"}}));
  std::ifstream log_file(dir + "/directory.log");
  std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(log.find(password), std::string::npos);
  redis.stop();
  remove_tree(dir);
}

}  // namespace
}  // namespace doorman::test
