// The directory's Prometheus series (directory/metrics.h) against the real
// services in-process and a real redis-server: verdicts by decision and
// source, check results and durations, Redis timings, errors and up, the
// admin counter by RPC and status code, the catch-all census; and that no
// series ever carries an address or a domain.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/metrics.h"
#include "directory/metrics.h"
#include "directory/service/server.h"
#include "directory/store/callout_cache.h"
#include "directory/store/keys.h"
#include "tests/support/redis_server.h"

namespace doorman::directory {
namespace {

namespace v1 = doorman::v1;
using std::chrono::milliseconds;

class DirectoryMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    store::RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = milliseconds(300);
    ps.connections = 2;
    ps.backoff_min = milliseconds(50);
    ps.backoff_max = milliseconds(200);
    pool_ = std::make_unique<store::RedisPool>(ps);
    pool_->start();
    service::Server::Options so;
    so.auth = auth::AdminAuth::with_token("metrics-test-token");
    server_ = std::make_unique<service::Server>(*pool_, nullptr, so);
    ASSERT_EQ(server_->start("127.0.0.1:0"), "");
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    admin_ = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
        auth::bearer_interceptors("metrics-test-token")));
    rcpt_ = v1::RecipientService::NewStub(channel);
  }
  void TearDown() override {
    server_->shutdown(milliseconds(100));
    server_->wait();
    pool_->stop();
  }
  grpc::Status create(const std::string& name) {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name(name);
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    v1::Domain resp;
    return admin_->CreateDomain(&ctx, req, &resp);
  }
  void add(const std::string& address) {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    req.add_addresses(address);
    v1::AddressesResponse resp;
    ASSERT_TRUE(admin_->AddAddresses(&ctx, req, &resp).ok());
  }
  grpc::Status check(const std::vector<std::string>& rcpts) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CheckRecipientsRequest req;
    for (const auto& r : rcpts) req.add_recipients(r);
    v1::CheckRecipientsResponse resp;
    return rcpt_->CheckRecipients(&ctx, req, &resp);
  }
  static bool eventually(const std::function<bool()>& f) {
    for (int i = 0; i < 100; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  DirectoryMetrics& m_ = directory_metrics();
  test::RedisServer redis_;
  std::unique_ptr<store::RedisPool> pool_;
  std::unique_ptr<service::Server> server_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::RecipientService::Stub> rcpt_;
};

TEST_F(DirectoryMetricsTest, EverySeriesIsExportedFromTheStart) {
  const std::string text = metrics::global().render();
  for (const char* family :
       {"doorman_directory_check_requests_total{result=\"ok\"} ", "doorman_directory_check_requests_total{result=\"redis_error\"} ",
        "doorman_directory_check_requests_total{result=\"invalid\"} ",
        "doorman_directory_recipients_total{decision=\"defer\",source=\"probe\"} ",
        "doorman_directory_check_duration_seconds_count ", "doorman_directory_redis_command_duration_seconds_bucket",
        "doorman_directory_redis_errors_total ", "doorman_directory_redis_up ", "doorman_directory_redis_connections ",
        "doorman_directory_callout_probes_total{result=\"timeout\"} ",
        "doorman_directory_callout_probe_duration_seconds_sum ", "doorman_directory_callout_cache_total{result=\"refresh\"} ",
        "doorman_directory_callout_rate_limited_total ", "doorman_directory_catch_all_domains ",
        "doorman_directory_expired_jobs_total{kind=\"check\"} ", "doorman_directory_expired_jobs_total{kind=\"admin\"} ",
        "doorman_directory_store_configured ", "doorman_directory_check_requests_total{result=\"not_configured\"} "})
    EXPECT_NE(text.find(family), std::string::npos) << family;
}

TEST_F(DirectoryMetricsTest, VerdictsAreCountedByDecisionAndSource) {
  ASSERT_TRUE(create("example.com").ok());
  add("alice@example.com");
  const uint64_t accept_list = m_.recipients(Decision::kAccept, Source::kList).value();
  const uint64_t reject_list = m_.recipients(Decision::kReject, Source::kList).value();
  const uint64_t reject_policy = m_.recipients(Decision::kReject, Source::kPolicy).value();
  const uint64_t accept_policy = m_.recipients(Decision::kAccept, Source::kPolicy).value();
  const uint64_t ok = m_.check_requests(CheckResult::kOk).value();
  const uint64_t timed = m_.check_duration().count();
  const uint64_t round_trips = m_.redis_command_duration().count();

  ASSERT_TRUE(check({"alice@example.com", "bob@example.com", "x@relay.org", "bad", "postmaster@example.com"}).ok());
  ASSERT_TRUE(check({"Alice@Example.com"}).ok());

  EXPECT_EQ(m_.recipients(Decision::kAccept, Source::kList).value() - accept_list, 2u);
  EXPECT_EQ(m_.recipients(Decision::kReject, Source::kList).value() - reject_list, 1u);
  EXPECT_EQ(m_.recipients(Decision::kReject, Source::kPolicy).value() - reject_policy, 2u);  // relay, syntax
  EXPECT_EQ(m_.recipients(Decision::kAccept, Source::kPolicy).value() - accept_policy, 1u);  // postmaster
  EXPECT_EQ(m_.check_requests(CheckResult::kOk).value() - ok, 2u);
  EXPECT_EQ(m_.check_duration().count() - timed, 2u);
  EXPECT_GE(m_.redis_command_duration().count() - round_trips, 2u);  // one round trip per group at least

  // Labels come from fixed sets only.
  const std::string text = metrics::global().render();
  for (const char* leak : {"example.com", "relay.org", "alice", "@"}) EXPECT_EQ(text.find(leak), std::string::npos) << leak;
}

TEST_F(DirectoryMetricsTest, TooManyRecipientsCountsInvalid) {
  const uint64_t invalid = m_.check_requests(CheckResult::kInvalid).value();
  std::vector<std::string> many(service::kMaxRecipients + 1, "a@example.com");
  EXPECT_EQ(check(many).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(m_.check_requests(CheckResult::kInvalid).value() - invalid, 1u);
}

TEST_F(DirectoryMetricsTest, RedisDownIsCountedAndReported) {
  ASSERT_TRUE(create("example.com").ok());
  EXPECT_TRUE(eventually([&] { return m_.redis_up().value() == 1 && m_.redis_connections().value() == 2; }));
  const uint64_t redis_error = m_.check_requests(CheckResult::kRedisError).value();
  const uint64_t defer_error = m_.recipients(Decision::kDefer, Source::kError).value();
  const uint64_t errors = m_.redis_errors().value();
  redis_.stop();
  ASSERT_TRUE(check({"alice@example.com", "bob@example.com"}).ok());  // 451 verdicts, status OK
  EXPECT_EQ(m_.check_requests(CheckResult::kRedisError).value() - redis_error, 1u);
  EXPECT_EQ(m_.recipients(Decision::kDefer, Source::kError).value() - defer_error, 2u);
  EXPECT_TRUE(eventually([&] { return m_.redis_up().value() == 0; }));
  EXPECT_EQ(m_.redis_connections().value(), 0);
  // The failed round trip (or the idle PING's), then failed reconnects.
  EXPECT_TRUE(eventually([&] { return m_.redis_errors().value() > errors; }));
}

TEST_F(DirectoryMetricsTest, AdminCallsAreCountedByMethodAndCode) {
  auto count = [](const std::string& code) {
    const std::string text = metrics::global().render();
    const std::string series =
        "doorman_directory_admin_requests_total{method=\"CreateDomain\",code=\"" + code + "\"} ";
    size_t at = text.find(series);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + series.size());
  };
  const int ok = count("OK"), exists = count("ALREADY_EXISTS"), invalid = count("INVALID_ARGUMENT");
  ASSERT_TRUE(create("example.com").ok());
  EXPECT_EQ(create("example.com").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(create("bad..name").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(check({"alice@example.com"}).ok());  // not an admin call
  // The interceptor counts when the status is sent; the client may see it
  // a moment earlier.
  EXPECT_TRUE(eventually([&] {
    return count("OK") - ok == 1 && count("ALREADY_EXISTS") - exists == 1 && count("INVALID_ARGUMENT") - invalid == 1;
  })) << metrics::global().render();
  EXPECT_EQ(metrics::global().render().find("method=\"CheckRecipients\""), std::string::npos);
}

TEST_F(DirectoryMetricsTest, CatchAllCensusCountsGuardedDomainsOnly) {
  ASSERT_TRUE(create("a.test").ok());
  ASSERT_TRUE(create("b.test").ok());
  ASSERT_TRUE(create("c.test").ok());
  store::RedisConfig rc;
  rc.port = redis_.port();
  store::RedisConn conn(rc);
  ASSERT_TRUE(conn.connect().ok());
  const int64_t now = store::unix_ms_now();
  auto status = [&](const std::string& domain, const std::string& result, int64_t expires) {
    store::CacheEntry e{result, now, expires, "127.0.0.1:25", "250 ok"};
    ASSERT_TRUE(store::write_entry(conn, store::keys::callout_domain(domain), e, 60000).ok());
  };
  status("a.test", "catch-all", now + 60000);
  status("b.test", "normal", now + 60000);
  status("c.test", "catch-all", now - 1);            // expired (Redis has not dropped it yet)
  status("unguarded.test", "catch-all", now + 60000);  // not a guarded domain
  uint64_t n = 99;
  ASSERT_TRUE(store::count_catch_all_domains(conn, &n).ok());
  EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace doorman::directory
