// Issue #6: the metrics are real. One shared stack of real processes on
// loopback — redis-server, doorman-directory, doorman-edge (each with its
// --http-listen on a free port), a FakeSmtpServer back-end — and a real
// Prometheus server (Debian's /usr/bin/prometheus) scraping both services
// every second with monitoring/doorman-alerts.yaml loaded. A known traffic
// mix goes through the edge; then:
//   - `promtool check metrics` passes on both services' /metrics;
//   - PromQL over Prometheus' HTTP API returns the exact counts of the mix;
//   - every alert rule evaluates without error in that Prometheus;
//   - `promtool check rules` passes on the rule file;
//   - the dashboard JSON is valid, every query evaluates in Prometheus, and
//     every metric named in the dashboard or the rules is one the services
//     really export.
// Everything is started and stopped by PID; no fixed sleeps (we poll).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/smtp_client.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kPromtool = "/usr/bin/promtool";
const std::string kPrometheus = "/usr/bin/prometheus";
const std::string kRules = std::string(DOORMAN_MONITORING_DIR) + "/doorman-alerts.yaml";
const std::string kDashboard = std::string(DOORMAN_MONITORING_DIR) + "/doorman-dashboard.json";

// The traffic mix (send_traffic): accepted, rejected as unknown (list), and
// rejected as relay-denied (unguarded domain, policy), in two messages.
constexpr int kAccepted = 3;
constexpr int kUnknown = 2;
constexpr int kRelayDenied = 2;
constexpr int kMessages = 2;

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Sample names of a text exposition ("name{...} value" or "name value").
std::set<std::string> sample_names(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t end = line.find_first_of("{ ");
    names.insert(line.substr(0, end));
  }
  return names;
}

// Every doorman_* identifier in a text (PromQL, YAML, JSON).
std::set<std::string> doorman_names(const std::string& text) {
  std::set<std::string> out;
  static const std::regex re("doorman_[a-z0-9_]*[a-z0-9]");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.insert(it->str());
  return out;
}

// The value of the first sample of an instant-vector answer of
// /api/v1/query, or nullopt (error, empty result).
std::optional<double> first_value(const std::string& json) {
  if (json.find("\"status\":\"success\"") == std::string::npos) return std::nullopt;
  size_t v = json.find("\"value\":[");
  if (v == std::string::npos) return std::nullopt;
  size_t q = json.find('"', json.find(',', v));
  if (q == std::string::npos) return std::nullopt;
  return std::strtod(json.c_str() + q + 1, nullptr);
}

class Services {
 public:
  ~Services() { stop(); }

  // "" or what went wrong.
  std::string start() {
    dir_ = make_temp_dir("doorman-obs");
    if (!file_exists(kPrometheus) || !file_exists(kPromtool))
      return "prometheus/promtool missing: run scripts/setup.sh (Debian package prometheus)";
    if (!backend_.start()) return "fake back-end did not start";
    if (!redis_.start()) return "redis: " + redis_.error();

    grpc_port_ = free_tcp_port();
    directory_http_ = free_tcp_port();
    if (!directory_.start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(grpc_port_),
                           "--http-listen", "127.0.0.1:" + std::to_string(directory_http_), "--redis-port",
                           std::to_string(redis_.port()), "--redis-timeout-ms", "300", "--shutdown-grace-seconds",
                           "1", "--sync-poll", "100ms", "--admin-insecure"},  // admin auth is tested in tests/directory
                          dir_ + "/directory.log"))
      return "cannot start doorman-directory";
    if (!wait_for_port(grpc_port_, seconds(10)) || !wait_for_port(directory_http_, seconds(10)))
      return "directory did not listen\n" + logs();

    const std::string domains = dir_ + "/domains.yaml";
    std::ofstream(domains) << "domains:\n"
                              "  - name: example.com\n"
                              "    mode: list\n"
                              "    routes: [\"127.0.0.1:" + std::to_string(backend_.port()) + "\"]\n"
                              "    addresses: [alice, bob, carol]\n"
                              // An LDAP source (nothing listens there) makes the per-source sync series exist.
                              "  - name: ldap.example\n"
                              "    mode: list\n"
                              "    routes: [\"127.0.0.1:" + std::to_string(backend_.port()) + "\"]\n"
                              "ldap_sources:\n"
                              "  - {name: corp, url: \"ldap://127.0.0.1:1\", tls: none, base_dn: \"dc=example\","
                              " domains: [ldap.example], timeout_seconds: 1}\n";
    RunResult r = run({DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(grpc_port_), "apply", "-f", domains});
    if (r.exit_code != 0) return "apply failed: " + r.out + r.err;

    smtp_port_ = free_tcp_port();
    edge_http_ = free_tcp_port();
    if (!edge_.start({DOORMAN_EDGE_BIN, "--listen", "127.0.0.1:" + std::to_string(smtp_port_), "--http-listen",
                      "127.0.0.1:" + std::to_string(edge_http_), "--directory",
                      "127.0.0.1:" + std::to_string(grpc_port_), "--hostname", "mx.test", "--threads", "1",
                      "--directory-timeout-ms", "2000", "--shutdown-grace-seconds", "1"},
                     dir_ + "/edge.log"))
      return "cannot start doorman-edge";
    if (!wait_for_port(smtp_port_, seconds(10)) || !wait_for_port(edge_http_, seconds(10)))
      return "edge did not listen (does it have --http-listen?)\n" + logs();

    prometheus_port_ = free_tcp_port();
    const std::string config = dir_ + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  scrape_timeout: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "rule_files: [\"" + kRules + "\"]\n"
                             "scrape_configs:\n"
                             "  - job_name: doorman-edge\n"
                             "    static_configs: [{targets: [\"127.0.0.1:" + std::to_string(edge_http_) + "\"]}]\n"
                             "  - job_name: doorman-directory\n"
                             "    static_configs: [{targets: [\"127.0.0.1:" + std::to_string(directory_http_) +
                                 "\"]}]\n";
    if (!prometheus_.start({kPrometheus, "--config.file=" + config, "--storage.tsdb.path=" + dir_ + "/tsdb",
                            "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
                            "--log.level=warn"},
                           dir_ + "/prometheus.log"))
      return "cannot start prometheus";
    if (!wait_for_port(prometheus_port_, seconds(20))) return "prometheus did not listen\n" + prometheus_.read_log();
    // Both targets scraped successfully at least once.
    if (!poll_value("sum(up{job=~\"doorman-edge|doorman-directory\"})", 2, seconds(20)))
      return "prometheus never saw both targets up\n" + last_answer_ + "\n" + prometheus_.read_log();
    return "";
  }

  void stop() {
    prometheus_.stop();
    edge_.stop();
    directory_.stop();
    redis_.stop();
    backend_.stop();
    if (!dir_.empty()) remove_tree(dir_);
    dir_.clear();
  }

  // The mix: one session, two messages.
  std::string send_traffic() {
    SmtpClient c;
    if (!c.connect(smtp_port_)) return "cannot connect to the edge";
    std::string transcript;
    auto expect = [&](const std::string& line, const std::string& prefix) {
      std::string r = line.empty() ? c.reply() : c.command(line);
      transcript += "> " + line + "\n< " + r + "\n";
      return r.compare(0, prefix.size(), prefix) == 0;
    };
    bool ok = expect("", "220") && expect("EHLO client.test", "250") &&
              expect("MAIL FROM:<sender@remote.test>", "250") && expect("RCPT TO:<alice@example.com>", "250") &&
              expect("RCPT TO:<nobody@example.com>", "550 5.1.1") &&
              expect("RCPT TO:<x@elsewhere.org>", "550 5.7.1") && expect("DATA", "354");
    if (ok) {
      c.send("Subject: one\r\n\r\nfirst\r\n.\r\n");
      ok = expect("", "250");
    }
    ok = ok && expect("MAIL FROM:<sender@remote.test>", "250") && expect("RCPT TO:<bob@example.com>", "250") &&
         expect("RCPT TO:<carol@example.com>", "250") && expect("RCPT TO:<ghost@example.com>", "550 5.1.1") &&
         expect("RCPT TO:<y@elsewhere.org>", "550 5.7.1") && expect("DATA", "354");
    if (ok) {
      c.send("Subject: two\r\n\r\nsecond\r\n.\r\n");
      ok = expect("", "250");
    }
    ok = ok && expect("QUIT", "221");
    if (!ok) return "traffic failed:\n" + transcript + logs();
    if (!backend_.wait_for_transactions(kMessages, seconds(5))) return "back-end did not get both messages";
    return "";
  }

  // Polls an instant query until its first value equals `want`.
  bool poll_value(const std::string& promql, double want, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      auto v = query(promql);
      if (v && *v == want) return true;
      std::this_thread::sleep_for(milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }

  std::optional<double> query(const std::string& promql) {
    HttpResult r = http_get(prometheus_port_, "/api/v1/query?query=" + url_encode(promql));
    last_answer_ = promql + " -> " + std::to_string(r.status) + " " + r.body;
    if (r.status != 200) return std::nullopt;
    return first_value(r.body);
  }
  HttpResult api(const std::string& target) { return http_get(prometheus_port_, target); }

  std::string logs() {
    return "--- edge log ---\n" + edge_.read_log() + "--- directory log ---\n" + directory_.read_log();
  }

  int edge_http() const { return edge_http_; }
  int directory_http() const { return directory_http_; }
  const std::string& last_answer() const { return last_answer_; }

 private:
  FakeSmtpServer backend_;
  RedisServer redis_;
  Process directory_, edge_, prometheus_;
  std::string dir_;
  int grpc_port_ = 0, directory_http_ = 0, smtp_port_ = 0, edge_http_ = 0, prometheus_port_ = 0;
  std::string last_answer_;
};

class Observability : public ::testing::Test {
 protected:
  // One stack for the suite (starting Prometheus and the services is the
  // expensive part); the traffic is sent once, while Prometheus scrapes.
  static void SetUpTestSuite() {
    services_ = new Services();
    error_ = services_->start();
    if (error_.empty()) error_ = services_->send_traffic();
  }
  static void TearDownTestSuite() {
    delete services_;
    services_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(error_, ""); }

  static Services* services_;
  static std::string error_;
};
Services* Observability::services_ = nullptr;
std::string Observability::error_;

TEST_F(Observability, PromtoolAcceptsBothServicesMetricsAfterTraffic) {
  for (int port : {services_->edge_http(), services_->directory_http()}) {
    HttpResult m = http_get(port, "/metrics");
    ASSERT_EQ(m.status, 200) << "port " << port;
    RunResult r = run({kPromtool, "check", "metrics"}, seconds(20), m.body);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << m.body;
    // Labels from fixed sets only: no address, domain or IP in any series.
    for (const char* leak : {"example.com", "elsewhere.org", "remote.test", "127.0.0.1", "@"})
      EXPECT_EQ(m.body.find(leak), std::string::npos) << leak << " in /metrics of port " << port;
  }
  EXPECT_EQ(http_get(services_->directory_http(), "/healthz").status, 200);
  EXPECT_EQ(http_get(services_->directory_http(), "/readyz").status, 200);
  EXPECT_EQ(http_get(services_->edge_http(), "/readyz").status, 200);
}

TEST_F(Observability, PrometheusSeesTheExactTrafficMix) {
  auto& s = *services_;
  const auto t = seconds(15);
  const std::map<std::string, double> want = {
      // Edge: verdicts by source (the directory's), commands, relays, sessions.
      {"sum(doorman_edge_recipients_total{verdict=\"accepted\"})", kAccepted},
      {"sum(doorman_edge_recipients_total{verdict=\"rejected\"})", kUnknown + kRelayDenied},
      {"sum(doorman_edge_recipients_total{verdict=\"deferred\"})", 0},
      {"sum(doorman_edge_recipients_total{verdict=\"accepted\",source=\"list\"})", kAccepted},
      {"sum(doorman_edge_recipients_total{verdict=\"rejected\",source=\"list\"})", kUnknown},
      {"sum(doorman_edge_recipients_total{verdict=\"rejected\",source=\"policy\"})", kRelayDenied},
      {"sum(doorman_edge_commands_total{command=\"rcpt\"})", kAccepted + kUnknown + kRelayDenied},
      {"sum(doorman_edge_commands_total{command=\"mail\"})", kMessages},
      {"sum(doorman_edge_relay_transactions_total{outcome=\"delivered\"})", kMessages},
      {"sum(doorman_edge_relay_duration_seconds_count)", kMessages},
      {"sum(doorman_edge_sessions_total{end=\"client_quit\"})", 1},
      {"sum(doorman_edge_sessions_active)", 0},
      {"sum(doorman_edge_directory_requests_total{result=\"ok\"})", kAccepted + kUnknown + kRelayDenied},
      {"sum(doorman_edge_backend_connect_failures_total)", 0},
      // Directory: one CheckRecipients per (unpipelined) RCPT, same verdicts.
      {"sum(doorman_directory_check_requests_total{result=\"ok\"})", kAccepted + kUnknown + kRelayDenied},
      {"sum(doorman_directory_check_requests_total{result!=\"ok\"})", 0},
      {"sum(doorman_directory_check_duration_seconds_count)", kAccepted + kUnknown + kRelayDenied},
      {"sum(doorman_directory_recipients_total{decision=\"accept\",source=\"list\"})", kAccepted},
      {"sum(doorman_directory_recipients_total{decision=\"reject\",source=\"list\"})", kUnknown},
      {"sum(doorman_directory_recipients_total{decision=\"reject\",source=\"policy\"})", kRelayDenied},
      {"sum(doorman_directory_recipients_total{decision=\"defer\"})", 0},
      {"sum(doorman_directory_redis_up)", 1},
      {"sum(doorman_directory_redis_errors_total)", 0},
      {"sum(doorman_directory_catch_all_domains)", 0},
      {"count(doorman_directory_build_info) + count(doorman_edge_build_info)", 2},
  };
  for (const auto& [promql, value] : want)
    EXPECT_TRUE(s.poll_value(promql, value, t)) << "want " << value << ": " << s.last_answer();
  // Every Redis round trip of the checks was timed; doormanctl apply went
  // through the admin API.
  auto redis = s.query("sum(doorman_directory_redis_command_duration_seconds_count)");
  ASSERT_TRUE(redis) << s.last_answer();
  EXPECT_GE(*redis, kAccepted + kUnknown + kRelayDenied);
  auto admin = s.query("sum(doorman_directory_admin_requests_total{code=\"OK\"})");
  ASSERT_TRUE(admin) << s.last_answer();
  EXPECT_GE(*admin, 1);
}

TEST_F(Observability, EveryAlertRuleEvaluatesInPrometheus) {
  // Rules are evaluated every second; wait until each has been evaluated
  // once (no "unknown" health left), then none may be in error.
  std::string body;
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  do {
    HttpResult r = services_->api("/api/v1/rules");
    ASSERT_EQ(r.status, 200) << r.body;
    body = r.body;
    if (body.find("\"health\":\"unknown\"") == std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(body.find("\"type\":\"alerting\""), std::string::npos) << body;
  EXPECT_EQ(body.find("\"health\":\"unknown\""), std::string::npos) << body;
  EXPECT_EQ(body.find("\"health\":\"err\""), std::string::npos) << body;
  // With healthy traffic, nothing fires or is pending.
  HttpResult alerts = services_->api("/api/v1/alerts");
  EXPECT_EQ(alerts.body.find("\"state\":\"firing\""), std::string::npos) << alerts.body;
}

TEST(ObservabilityFiles, PromtoolChecksTheAlertRules) {
  ASSERT_TRUE(file_exists(kPromtool)) << "run scripts/setup.sh (Debian package prometheus)";
  RunResult r = run({kPromtool, "check", "rules", kRules});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(ObservabilityFiles, PromtoolRuleUnitTestsPass) {
  ASSERT_TRUE(file_exists(kPromtool)) << "run scripts/setup.sh (Debian package prometheus)";
  RunResult r = run({kPromtool, "test", "rules", std::string(DOORMAN_MONITORING_DIR) + "/doorman-alerts.test.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// Every PromQL expression of the dashboard, one per line (python3's json).
std::vector<std::string> dashboard_exprs(std::string* error) {
  RunResult r = run({"python3", "-c",
                     "import json,sys\n"
                     "d=json.load(open(sys.argv[1]))\n"
                     "def walk(o):\n"
                     "  if isinstance(o,dict):\n"
                     "    for k,v in o.items():\n"
                     "      if k=='expr' and isinstance(v,str): print(v.replace('\\n',' '))\n"
                     "      else: walk(v)\n"
                     "  elif isinstance(o,list):\n"
                     "    for v in o: walk(v)\n"
                     "walk(d)\n",
                     kDashboard});
  std::vector<std::string> out;
  if (r.exit_code != 0) {
    *error = "dashboard is not valid JSON: " + r.err;
    return out;
  }
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST_F(Observability, DashboardAndRulesNameOnlyExportedMetrics) {
  std::set<std::string> exported;
  for (int port : {services_->edge_http(), services_->directory_http()}) {
    HttpResult m = http_get(port, "/metrics");
    ASSERT_EQ(m.status, 200);
    auto names = sample_names(m.body);
    exported.insert(names.begin(), names.end());
  }
  std::string error;
  auto exprs = dashboard_exprs(&error);
  ASSERT_EQ(error, "");
  ASSERT_GE(exprs.size(), 10u) << "the dashboard has too few queries";
  std::string all_exprs;
  for (const auto& e : exprs) {
    all_exprs += e + "\n";
    EXPECT_FALSE(doorman_names(e).empty()) << "query names no Doorman metric: " << e;
  }
  const std::string rules = read_file(kRules);
  ASSERT_FALSE(rules.empty());
  for (const auto& [what, text] : {std::pair{"dashboard", all_exprs}, std::pair{"rules", rules}}) {
    for (const auto& name : doorman_names(text))  // a histogram may be named by its family
      EXPECT_TRUE(exported.count(name) || exported.count(name + "_bucket"))
          << what << " names " << name << ", which no service exports";
  }
  // Every dashboard query evaluates in the real Prometheus (Grafana's
  // interval variables replaced by a fixed range).
  for (std::string e : exprs) {
    for (const std::string var : {"$__rate_interval", "$__interval", "$__range"})
      for (size_t p; (p = e.find(var)) != std::string::npos;) e.replace(p, var.size(), "1m");
    HttpResult r = services_->api("/api/v1/query?query=" + url_encode(e));
    EXPECT_EQ(r.status, 200) << e << "\n" << r.body;
    EXPECT_NE(r.body.find("\"status\":\"success\""), std::string::npos) << e << "\n" << r.body;
  }
}

}  // namespace
}  // namespace doorman::test
