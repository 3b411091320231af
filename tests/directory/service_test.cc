// The gRPC services in-process on a loopback port with a real redis-server:
// CheckRecipients, the admin RPCs (unary and streams), health, and recovery
// from a Redis restart.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "directory/metrics.h"
#include "directory/service/server.h"
#include "directory/store/keys.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/redis_server.h"

namespace doorman::directory::service {
namespace {

namespace v1 = doorman::v1;

class DirectoryService : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    store::RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = std::chrono::milliseconds(500);
    ps.connections = 2;
    ps.backoff_min = std::chrono::milliseconds(50);
    ps.backoff_max = std::chrono::milliseconds(200);
    pool_ = std::make_unique<store::RedisPool>(ps);
    pool_->start();
    server_ = std::make_unique<Server>(*pool_, nullptr, options());
    ASSERT_EQ(server_->start("127.0.0.1:0"), "");
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    admin_ = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
        auth::bearer_interceptors("service-test-token")));
    rcpt_ = v1::RecipientService::NewStub(channel);
    health_ = grpc::health::v1::Health::NewStub(channel);
  }
  // The server's options; a fixture may add to them.
  virtual Server::Options options() {
    Server::Options so;
    so.auth = auth::AdminAuth::with_token("service-test-token");
    return so;
  }
  void TearDown() override {
    server_->shutdown(std::chrono::milliseconds(100));
    server_->wait();
    pool_->stop();
  }
  grpc::Status create(const std::string& name, v1::DomainMode mode) {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name(name);
    req.mutable_domain()->set_mode(mode);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    v1::Domain resp;
    return admin_->CreateDomain(&ctx, req, &resp);
  }
  v1::AddressesResponse add(const std::vector<std::string>& addrs) {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    for (const auto& a : addrs) req.add_addresses(a);
    v1::AddressesResponse resp;
    EXPECT_TRUE(admin_->AddAddresses(&ctx, req, &resp).ok());
    return resp;
  }
  std::vector<v1::Verdict> check(const std::vector<std::string>& rcpts, grpc::Status* status = nullptr,
                                 const std::string& client_ip = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CheckRecipientsRequest req;
    if (!client_ip.empty()) req.mutable_session()->set_client_ip(client_ip);
    for (const auto& r : rcpts) req.add_recipients(r);
    v1::CheckRecipientsResponse resp;
    grpc::Status s = rcpt_->CheckRecipients(&ctx, req, &resp);
    if (status) *status = s;
    else EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.verdicts().begin(), resp.verdicts().end()};
  }
  grpc::health::v1::HealthCheckResponse::ServingStatus health() {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    if (!health_->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return resp.status();
  }
  bool wait_health(grpc::health::v1::HealthCheckResponse::ServingStatus want) {
    for (int i = 0; i < 100; ++i) {
      if (health() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  test::RedisServer redis_;
  std::unique_ptr<store::RedisPool> pool_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::RecipientService::Stub> rcpt_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(DirectoryService, CheckRecipientsInOrder) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  add({"alice@example.com"});
  auto v = check({"Alice+x@EXAMPLE.com", "bob@example.com", "a@relay.org", "bad", "postmaster@example.com"});
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[0].route().hosts(0), "127.0.0.1:2526");
  EXPECT_EQ(v[1].code(), 550u);
  EXPECT_EQ(v[1].enhanced_code(), "5.1.1");
  EXPECT_EQ(v[2].enhanced_code(), "5.7.1");
  EXPECT_EQ(v[3].enhanced_code(), "5.1.3");
  EXPECT_EQ(v[4].code(), 250u);
}

// Issue #16: several checks (sessions) in one call, answered in order, each
// as CheckRecipients would; a check's own error stays in its result.
TEST_F(DirectoryService, CheckBatchAnswersEveryCheckInOrder) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  add({"alice@example.com"});
  const std::vector<std::vector<std::string>> groups = {
      {"alice@example.com"},
      {"bob@example.com", "Alice+x@EXAMPLE.com"},
      std::vector<std::string>(kMaxRecipients + 1, "a@example.com"),  // invalid: this check alone
      {"a@relay.org", "bad", "Postmaster"},  // a bare postmaster: this check looks its domain up itself
      {}};
  v1::CheckBatchRequest req;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto* c = req.add_checks();
    c->mutable_session()->set_session_id("S" + std::to_string(i));
    for (const auto& r : groups[i]) c->add_recipients(r);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::CheckBatchResponse resp;
  grpc::Status s = rcpt_->CheckBatch(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.results_size(), 5);
  // Each check's verdicts are what CheckRecipients gives for the same group.
  for (int i : {0, 1, 3, 4}) {
    ASSERT_EQ(resp.results(i).status_code(), 0) << i;
    auto alone = check(groups[static_cast<size_t>(i)]);
    ASSERT_EQ(resp.results(i).response().verdicts_size(), static_cast<int>(alone.size())) << i;
    for (size_t k = 0; k < alone.size(); ++k) {
      const auto& v = resp.results(i).response().verdicts(static_cast<int>(k));
      EXPECT_EQ(v.code(), alone[k].code()) << i << "/" << k;
      EXPECT_EQ(v.enhanced_code(), alone[k].enhanced_code()) << i << "/" << k;
      EXPECT_EQ(v.text(), alone[k].text()) << i << "/" << k;
    }
  }
  EXPECT_EQ(resp.results(0).response().verdicts(0).code(), 250u);
  EXPECT_EQ(resp.results(1).response().verdicts(0).code(), 550u);
  EXPECT_EQ(resp.results(1).response().verdicts(1).code(), 250u);
  EXPECT_EQ(resp.results(2).status_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).response().verdicts_size(), 0);
  EXPECT_EQ(resp.results(3).response().verdicts(0).enhanced_code(), "5.7.1");
  EXPECT_EQ(resp.results(3).response().verdicts(1).enhanced_code(), "5.1.3");
  EXPECT_EQ(resp.results(3).response().verdicts(2).code(), 250u);

  // More checks than a batch may hold: the whole call is invalid.
  v1::CheckBatchRequest big;
  for (int i = 0; i <= kMaxBatchChecks; ++i) big.add_checks()->add_recipients("alice@example.com");
  grpc::ClientContext ctx2;
  v1::CheckBatchResponse resp2;
  EXPECT_EQ(rcpt_->CheckBatch(&ctx2, big, &resp2).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // An empty batch is an empty answer.
  grpc::ClientContext ctx3;
  v1::CheckBatchResponse resp3;
  ASSERT_TRUE(rcpt_->CheckBatch(&ctx3, v1::CheckBatchRequest(), &resp3).ok());
  EXPECT_EQ(resp3.results_size(), 0);
}

TEST_F(DirectoryService, TooManyRecipientsIsInvalidArgument) {
  std::vector<std::string> many(kMaxRecipients + 1, "a@example.com");
  grpc::Status s;
  check(many, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(DirectoryService, AdminErrorsAreStatusCodes) {
  EXPECT_EQ(create("bad..name", v1::DOMAIN_MODE_LIST).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("example.com", v1::DOMAIN_MODE_UNSPECIFIED).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(create("Example.com", v1::DOMAIN_MODE_LIST).ok());
  EXPECT_EQ(create("example.com", v1::DOMAIN_MODE_LIST).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::ClientContext ctx;
  v1::GetDomainRequest req;
  req.set_name("nope.org");
  v1::Domain d;
  EXPECT_EQ(admin_->GetDomain(&ctx, req, &d).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx2;
  v1::CreateDomainRequest bad_route;
  bad_route.mutable_domain()->set_name("x.org");
  bad_route.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
  bad_route.mutable_domain()->add_routes("mx:99999");
  EXPECT_EQ(admin_->CreateDomain(&ctx2, bad_route, &d).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(DirectoryService, ImportAndReplaceStreams) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  {
    grpc::ClientContext ctx;
    v1::ImportResponse resp;
    auto w = admin_->ImportAddresses(&ctx, &resp);
    for (int c = 0; c < 5; ++c) {
      v1::ImportChunk chunk;
      for (int i = 0; i < 1000; ++i) chunk.add_addresses("u" + std::to_string(c * 1000 + i) + "@example.com");
      ASSERT_TRUE(w->Write(chunk));
    }
    v1::ImportChunk last;
    last.add_addresses("x@unguarded.org");
    last.add_addresses("u1@example.com");
    ASSERT_TRUE(w->Write(last));
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
    EXPECT_EQ(resp.received(), 5002u);
    EXPECT_EQ(resp.added(), 5000u);
    EXPECT_EQ(resp.unchanged(), 1u);
    EXPECT_EQ(resp.error_count(), 1u);
  }
  {
    grpc::ClientContext ctx;
    v1::ImportResponse resp;
    auto w = admin_->ReplaceAddresses(&ctx, &resp);
    v1::ImportChunk chunk;
    chunk.set_domain("example.com");
    chunk.add_addresses("u1@example.com");
    chunk.add_addresses("new@example.com");
    ASSERT_TRUE(w->Write(chunk));
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
    EXPECT_EQ(resp.added(), 1u);
    EXPECT_EQ(resp.removed(), 4999u);
    EXPECT_EQ(resp.unchanged(), 1u);
  }
  {
    // A replace with an invalid address replaces nothing.
    grpc::ClientContext ctx;
    v1::ImportResponse resp;
    auto w = admin_->ReplaceAddresses(&ctx, &resp);
    v1::ImportChunk chunk;
    chunk.set_domain("example.com");
    chunk.add_addresses("other@elsewhere.org");
    ASSERT_TRUE(w->Write(chunk));
    w->WritesDone();
    EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext ctx;
  v1::CountAddressesRequest req;
  req.set_domain("example.com");
  v1::CountAddressesResponse resp;
  ASSERT_TRUE(admin_->CountAddresses(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.count(), 2u);
  EXPECT_EQ(redis_.cli({"KEYS", "doorman:v1:tmp:*"}), "");
}

// A dry run of ReplaceAddresses: the counts the replace would report, over
// several chunks, malformed lines counted (status OK); nothing is written:
// the list, the verdicts and the marker are as before, no temp set is left.
// The real replace of the same (valid) stream then reports the same counts.
TEST_F(DirectoryService, ReplaceDryRunCountsAndWritesNothing) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  std::vector<std::string> old;
  for (int i = 0; i < 3000; ++i) old.push_back("u" + std::to_string(i) + "@example.com");
  add(old);
  // SMEMBERS comes in hash order, which may change (rehashing): compare sorted.
  auto members = [&] {
    std::string all = redis_.cli({"SMEMBERS", "doorman:v1:addresses:example.com"}) + "\n";
    std::vector<std::string> v;
    for (size_t at = 0, nl; (nl = all.find('\n', at)) != std::string::npos; at = nl + 1) v.push_back(all.substr(at, nl - at));
    std::sort(v.begin(), v.end());
    return v;
  };
  const std::vector<std::string> before = members();
  ASSERT_EQ(before.size(), 3000u);
  const std::string marker = redis_.cli({"GET", "doorman:v1:configured"});
  // u2000..u3999 (three chunks, one address twice): 1000 new, 2000 gone, 1000 kept.
  auto stream = [&](bool dry_run, bool with_bad, v1::ImportResponse* resp) {
    grpc::ClientContext ctx;
    auto w = admin_->ReplaceAddresses(&ctx, resp);
    for (int c = 0; c < 3; ++c) {
      v1::ImportChunk chunk;
      if (c == 0) {
        chunk.set_domain("example.com");
        chunk.set_dry_run(dry_run);
      }
      for (int i = 2000 + c * 700; i < std::min(4000, 2000 + (c + 1) * 700); ++i)
        chunk.add_addresses("U" + std::to_string(i) + "@Example.com");
      if (c == 2) {
        chunk.add_addresses("u2000@example.com");
        if (with_bad) {
          chunk.add_addresses("other@elsewhere.org");
          chunk.add_addresses("not an address");
        }
      }
      EXPECT_TRUE(w->Write(chunk));
    }
    w->WritesDone();
    return w->Finish();
  };
  v1::ImportResponse dry;
  grpc::Status s = stream(true, true, &dry);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(dry.dry_run());
  EXPECT_EQ(dry.added(), 1000u);
  EXPECT_EQ(dry.removed(), 2000u);
  EXPECT_EQ(dry.unchanged(), 1000u);
  EXPECT_EQ(dry.error_count(), 2u);
  ASSERT_EQ(dry.errors_size(), 2);
  EXPECT_EQ(dry.errors(0).address(), "other@elsewhere.org");
  // Nothing written.
  EXPECT_TRUE(members() == before);
  EXPECT_EQ(redis_.cli({"GET", "doorman:v1:configured"}), marker);
  EXPECT_EQ(redis_.cli({"KEYS", "doorman:v1:tmp:*"}), "");
  auto v = check({"u0@example.com", "u3999@example.com"});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[1].code(), 550u);
  // The real replace does what the dry run said.
  v1::ImportResponse real;
  s = stream(false, false, &real);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(real.dry_run());
  EXPECT_EQ(real.added(), dry.added());
  EXPECT_EQ(real.removed(), dry.removed());
  EXPECT_EQ(real.unchanged(), dry.unchanged());
  v = check({"u0@example.com", "u3999@example.com"});
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[1].code(), 250u);
  // A dry run for a domain that is not guarded is NOT_FOUND, as the replace.
  grpc::ClientContext ctx;
  v1::ImportResponse resp;
  auto w = admin_->ReplaceAddresses(&ctx, &resp);
  v1::ImportChunk chunk;
  chunk.set_domain("nowhere.org");
  chunk.set_dry_run(true);
  w->Write(chunk);
  w->WritesDone();
  EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(redis_.cli({"KEYS", "doorman:v1:tmp:*"}), "");
}

TEST_F(DirectoryService, ExplainMatchesCheck) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  grpc::ClientContext ctx;
  v1::ExplainRequest req;
  req.set_address("zed@example.com");
  v1::ExplainResponse resp;
  ASSERT_TRUE(admin_->Explain(&ctx, req, &resp).ok());
  auto v = check({"zed@example.com"});
  EXPECT_EQ(resp.verdict().SerializeAsString(), v[0].SerializeAsString());
  EXPECT_EQ(resp.steps_size(), 3);
}

TEST_F(DirectoryService, RedisDownDefersAndRestartRecovers) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  EXPECT_TRUE(wait_health(grpc::health::v1::HealthCheckResponse::SERVING));
  redis_.stop();
  auto v = check({"alice@example.com", "bob@example.com"});
  ASSERT_EQ(v.size(), 2u);
  for (const auto& x : v) {
    EXPECT_EQ(x.decision(), v1::DECISION_DEFER);
    EXPECT_EQ(x.code(), 451u);
    EXPECT_EQ(x.enhanced_code(), "4.4.3");
    EXPECT_EQ(x.source(), v1::SOURCE_ERROR);
  }
  // Admin calls fail with UNAVAILABLE.
  EXPECT_EQ(create("x.org", v1::DOMAIN_MODE_LIST).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(wait_health(grpc::health::v1::HealthCheckResponse::NOT_SERVING));

  ASSERT_TRUE(redis_.start()) << redis_.error();  // same port, empty data
  bool recovered = false;
  for (int i = 0; i < 100 && !recovered; ++i) {
    recovered = create("example.com", v1::DOMAIN_MODE_LIST).ok();
    if (!recovered) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(recovered);
  // Each pool worker reconnects on its own back-off (up to 5 s), so a call
  // may still land on one that has not: retry until every worker is back,
  // shown by six calls in a row that all succeed.
  bool added = false;
  for (int i = 0; i < 160 && !added; ++i) {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    req.add_addresses("alice@example.com");
    v1::AddressesResponse resp;
    added = admin_->AddAddresses(&ctx, req, &resp).ok();
    if (!added) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(added);
  int in_a_row = 0;
  for (int i = 0; i < 160 && in_a_row < 6; ++i) {
    auto w = check({"alice@example.com"});
    ASSERT_EQ(w.size(), 1u);
    // Never a wrong answer while recovering: the listed address is accepted
    // or deferred (a worker still down), never rejected.
    EXPECT_NE(w[0].decision(), v1::DECISION_REJECT) << w[0].code();
    in_a_row = w[0].code() == 250u ? in_a_row + 1 : 0;
    if (in_a_row == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(in_a_row, 6);
  EXPECT_TRUE(wait_health(grpc::health::v1::HealthCheckResponse::SERVING));
}

// Issue #12: a job queued on the Redis pool past its call's deadline does no
// Redis work; it finishes the RPC with DEADLINE_EXCEEDED and is counted.
// One pool worker, blocked by a job of the test, makes the pool slow.
TEST(DirectoryDeadline, ExpiredJobsAreDroppedAndCounted) {
  test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  store::RedisPool::Settings ps;
  ps.redis.port = redis.port();
  ps.connections = 1;
  store::RedisPool pool(ps);
  pool.start();
  Server::Options so;
  so.auth = auth::AdminAuth::with_token("deadline-token");
  Server server(pool, nullptr, so);
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  auto rcpt = v1::RecipientService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  auto admin = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
      addr, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), auth::bearer_interceptors("deadline-token")));
  {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    v1::Domain d;
    ASSERT_TRUE(admin->CreateDomain(&ctx, req, &d).ok());
  }
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> blocked{false};
  ASSERT_TRUE(pool.submit([released, &blocked](store::RedisConn&) {
    blocked = true;
    released.wait();
  }));
  for (int i = 0; i < 200 && !blocked; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(blocked);
  redis.cli({"CONFIG", "RESETSTAT"});
  DirectoryMetrics& m = directory_metrics();
  const uint64_t checks = m.expired_jobs(JobKind::kCheck).value();
  const uint64_t admins = m.expired_jobs(JobKind::kAdmin).value();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    v1::CheckRecipientsRequest req;
    req.add_recipients("alice@example.com");
    v1::CheckRecipientsResponse resp;
    EXPECT_EQ(rcpt->CheckRecipients(&ctx, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    v1::GetDomainRequest req;
    req.set_name("example.com");
    v1::Domain d;
    EXPECT_EQ(admin->GetDomain(&ctx, req, &d).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The server's deadline is the client's timeout counted from when the call
  // arrived, which on a loaded machine is later than the client's: let it
  // pass for sure before the blocked worker is released.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  release.set_value();
  for (int i = 0; i < 200 && (m.expired_jobs(JobKind::kCheck).value() == checks ||
                              m.expired_jobs(JobKind::kAdmin).value() == admins);
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(m.expired_jobs(JobKind::kCheck).value() - checks, 1u);
  EXPECT_EQ(m.expired_jobs(JobKind::kAdmin).value() - admins, 1u);
  // Neither dropped job reached Redis: no lookup, no domain read.
  std::string stats = redis.cli({"INFO", "commandstats"});
  EXPECT_EQ(stats.find("cmdstat_hgetall"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_smismember"), std::string::npos) << stats;
  // A call with time left is answered as usual.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::CheckRecipientsRequest req;
  req.add_recipients("alice@example.com");
  v1::CheckRecipientsResponse resp;
  ASSERT_TRUE(rcpt->CheckRecipients(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.verdicts(0).code(), 550u);
  server.shutdown(std::chrono::milliseconds(100));
  server.wait();
  pool.stop();
}

// Issue #12: Redis restarted empty (here: FLUSHALL under the running
// service) must not turn into permanent rejections: every recipient is
// deferred 451 4.3.0 until the domains are applied again.
TEST_F(DirectoryService, LostRedisDataDefersEveryRecipientUntilReapplied) {
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  add({"alice@example.com"});
  EXPECT_EQ(check({"alice@example.com"})[0].code(), 250u);
  EXPECT_TRUE(server_->store_configured());
  EXPECT_EQ(directory_metrics().store_configured().value(), 1.0);
  redis_.cli({"FLUSHALL"});
  const uint64_t not_configured = directory_metrics().check_requests(CheckResult::kNotConfigured).value();
  auto v = check({"alice@example.com", "bob@example.com", "a@relay.org", "postmaster@example.com",
                  "victim%x@example.com"});
  ASSERT_EQ(v.size(), 5u);
  for (const auto& x : v) {
    EXPECT_EQ(x.decision(), v1::DECISION_DEFER);
    EXPECT_EQ(x.code(), 451u);
    EXPECT_EQ(x.enhanced_code(), "4.3.0");
    EXPECT_EQ(x.source(), v1::SOURCE_ERROR);
    EXPECT_EQ(x.reason(), "store not configured: marker missing (Redis lost its data?)");
  }
  EXPECT_EQ(v[0].text(), "<alice@example.com>: Temporary lookup failure, try again later");
  EXPECT_EQ(directory_metrics().check_requests(CheckResult::kNotConfigured).value() - not_configured, 1u);
  EXPECT_FALSE(server_->store_configured());
  EXPECT_EQ(directory_metrics().store_configured().value(), 0.0);
  {
    grpc::ClientContext ctx;
    v1::ExplainRequest req;
    req.set_address("alice@example.com");
    v1::ExplainResponse resp;
    ASSERT_TRUE(admin_->Explain(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.verdict().enhanced_code(), "4.3.0");
    ASSERT_GE(resp.steps_size(), 2);
    EXPECT_NE(resp.steps(1).find("store is not configured"), std::string::npos) << resp.steps(1);
  }
  // Applying the configuration again brings the answers back.
  ASSERT_TRUE(create("example.com", v1::DOMAIN_MODE_LIST).ok());
  add({"alice@example.com"});
  v = check({"alice@example.com", "bob@example.com"});
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[1].enhanced_code(), "5.1.1");
  EXPECT_TRUE(server_->store_configured());
}

// Issue #12: an install older than the marker (domains, no marker) keeps
// working: the first probe at start-up sets it. An empty store is not
// "migrated".
TEST(DirectoryMarker, StartUpMigratesAnInstallWithoutTheMarker) {
  test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  // What an older directory wrote for one list domain.
  redis.cli({"SADD", store::keys::domains(), "example.com"});
  redis.cli({"HSET", store::keys::domain("example.com"), "mode", "list", "routes", "127.0.0.1:2526",
             "case_sensitive", "0"});
  redis.cli({"SADD", store::keys::addresses("example.com"), "alice"});
  ASSERT_EQ(redis.cli({"EXISTS", store::keys::configured()}), "0");
  store::RedisPool::Settings ps;
  ps.redis.port = redis.port();
  ps.connections = 1;
  store::RedisPool pool(ps);
  pool.start();
  Server server(pool, nullptr, {});
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  for (int i = 0; i < 100 && !server.store_configured(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(server.store_configured());
  EXPECT_EQ(redis.cli({"EXISTS", store::keys::configured()}), "1");
  auto rcpt = v1::RecipientService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::CheckRecipientsRequest req;
  req.add_recipients("alice@example.com");
  req.add_recipients("bob@example.com");
  v1::CheckRecipientsResponse resp;
  ASSERT_TRUE(rcpt->CheckRecipients(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.verdicts(0).code(), 250u);
  EXPECT_EQ(resp.verdicts(1).enhanced_code(), "5.1.1");
  // Only at start-up: a marker lost later is not put back by the probe.
  redis.cli({"DEL", store::keys::configured()});
  for (int i = 0; i < 100 && server.store_configured(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(server.store_configured());
  EXPECT_EQ(redis.cli({"EXISTS", store::keys::configured()}), "0");
  server.shutdown(std::chrono::milliseconds(100));
  server.wait();
  pool.stop();
}

// Issue #12: a bare RCPT TO:<Postmaster> (RFC 5321 §4.5.1), sent by an edge
// without --postmaster-domain, is postmaster@ the first guarded domain in
// sorted order; none guarded -> 451 4.3.0.
TEST_F(DirectoryService, BarePostmasterIsThePostmasterOfTheFirstGuardedDomain) {
  // The marker exists (a domain was created), but no domain is guarded.
  ASSERT_TRUE(create("zz.example", v1::DOMAIN_MODE_LIST).ok());
  {
    grpc::ClientContext ctx;
    v1::DeleteDomainRequest req;
    req.set_name("zz.example");
    v1::DeleteDomainResponse resp;
    ASSERT_TRUE(admin_->DeleteDomain(&ctx, req, &resp).ok());
  }
  auto v = check({"postmaster"});
  EXPECT_EQ(v[0].decision(), v1::DECISION_DEFER);
  EXPECT_EQ(v[0].code(), 451u);
  EXPECT_EQ(v[0].enhanced_code(), "4.3.0");
  EXPECT_EQ(v[0].text(), "<postmaster>: Temporary lookup failure, try again later");
  ASSERT_TRUE(create("b.example", v1::DOMAIN_MODE_LIST).ok());
  ASSERT_TRUE(create("a.example", v1::DOMAIN_MODE_CALLOUT).ok());  // created last, sorts first
  v = check({"postmaster", "PostMaster", "nobody@b.example", "postmaster@b.example"});
  ASSERT_EQ(v.size(), 4u);
  for (int i : {0, 1}) {
    EXPECT_EQ(v[i].decision(), v1::DECISION_ACCEPT) << i;
    EXPECT_EQ(v[i].code(), 250u);
    EXPECT_EQ(v[i].domain(), "a.example");
    EXPECT_EQ(v[i].route().hosts(0), "127.0.0.1:2526");
  }
  EXPECT_EQ(v[2].enhanced_code(), "5.1.1");
  EXPECT_EQ(v[3].domain(), "b.example");
  // Explain shows the resolution.
  grpc::ClientContext ctx;
  v1::ExplainRequest req;
  req.set_address("Postmaster");
  v1::ExplainResponse resp;
  ASSERT_TRUE(admin_->Explain(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.verdict().code(), 250u);
  ASSERT_GT(resp.steps_size(), 0);
  EXPECT_EQ(resp.steps(0), "postmaster: bare <Postmaster> is Postmaster@a.example (D = the first guarded domain in "
                           "sorted order)");
  // Redis down: a temporary failure like any lookup.
  redis_.stop();
  v = check({"postmaster"});
  EXPECT_EQ(v[0].code(), 451u);
  EXPECT_EQ(v[0].enhanced_code(), "4.4.3");
}

// With --postmaster-domain the directory does not look for a domain.
TEST(DirectoryPostmaster, PostmasterDomainOptionNamesTheDomain) {
  test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  store::RedisPool::Settings ps;
  ps.redis.port = redis.port();
  ps.connections = 1;
  store::RedisPool pool(ps);
  pool.start();
  Server::Options so;
  so.auth = auth::AdminAuth::with_token("pm-token");
  so.postmaster_domain = "b.example";
  Server server(pool, nullptr, so);
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  auto admin = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
      addr, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), auth::bearer_interceptors("pm-token")));
  for (const char* name : {"a.example", "b.example"}) {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name(name);
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes(std::string(name) == "a.example" ? "10.0.0.1:25" : "10.0.0.2:25");
    v1::Domain d;
    ASSERT_TRUE(admin->CreateDomain(&ctx, req, &d).ok());
  }
  auto rcpt = v1::RecipientService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::CheckRecipientsRequest req;
  req.add_recipients("POSTMASTER");
  v1::CheckRecipientsResponse resp;
  ASSERT_TRUE(rcpt->CheckRecipients(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.verdicts(0).code(), 250u);
  EXPECT_EQ(resp.verdicts(0).domain(), "b.example");
  EXPECT_EQ(resp.verdicts(0).route().hosts(0), "10.0.0.2:25");
  grpc::ClientContext ectx;
  v1::ExplainRequest ereq;
  ereq.set_address("postmaster");
  v1::ExplainResponse eresp;
  ASSERT_TRUE(admin->Explain(&ectx, ereq, &eresp).ok());
  EXPECT_EQ(eresp.steps(0), "postmaster: bare <postmaster> is postmaster@b.example (D = --postmaster-domain)");
  server.shutdown(std::chrono::milliseconds(100));
  server.wait();
  pool.stop();
}

}  // namespace
}  // namespace doorman::directory::service

namespace doorman::directory::service {
namespace {

// Review of #12: restoring a store that lost its data with apply. The writes
// of an apply hold the marker, so until the last of them (MarkConfigured)
// every recipient is deferred, never 550 for a domain or list not yet written.
TEST_F(DirectoryService, WritesThatHoldTheMarkerKeepAnEmptiedStoreDeferringUntilMarked) {
  redis_.cli({"FLUSHALL"});
  {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    req.set_hold_marker(true);
    v1::Domain resp;
    ASSERT_TRUE(admin_->CreateDomain(&ctx, req, &resp).ok());
  }
  auto verdicts = check({"alice@example.com", "nobody@example.com", "x@other.test"});
  ASSERT_EQ(verdicts.size(), 3u);
  for (const auto& v : verdicts) EXPECT_EQ(v.code(), 451) << v.enhanced_code() << " " << v.text();
  {
    grpc::ClientContext ctx;
    v1::ImportResponse resp;
    auto w = admin_->ReplaceAddresses(&ctx, &resp);
    v1::ImportChunk chunk;
    chunk.set_domain("example.com");
    chunk.set_hold_marker(true);
    chunk.add_addresses("alice@example.com");
    ASSERT_TRUE(w->Write(chunk));
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
  }
  for (const auto& v : check({"alice@example.com", "nobody@example.com"})) EXPECT_EQ(v.code(), 451);
  {
    grpc::ClientContext ctx;
    v1::MarkConfiguredRequest req;
    v1::MarkConfiguredResponse resp;
    ASSERT_TRUE(admin_->MarkConfigured(&ctx, req, &resp).ok());
  }
  verdicts = check({"alice@example.com", "nobody@example.com"});
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].code(), 250);
  EXPECT_EQ(verdicts[1].code(), 550);
  // Without hold_marker (doormanctl domain add by hand) a write marks at once.
  redis_.cli({"FLUSHALL"});
  ASSERT_TRUE(create("example.org", v1::DOMAIN_MODE_ACCEPT_ALL).ok());
  EXPECT_EQ(check({"x@example.org"})[0].code(), 250);
}

namespace shadow {

// Issue #14, shadow mode through the services and a real Redis: the pass,
// the per-domain count (reset when shadow mode is switched on), the metric,
// and the harvest defence counting would-be refusals as in enforce mode.
class DirectoryShadow : public DirectoryService {
 protected:
  // The harvest defence on, deferring at 3 unknown recipients.
  Server::Options options() override {
    Server::Options so = DirectoryService::options();
    harvest::Settings hs;
    hs.tarpit_threshold = 0;
    hs.defer_threshold = 3;
    so.harvest = std::make_shared<harvest::Harvest>(hs);
    return so;
  }
  std::vector<v1::Verdict> check(const std::vector<std::string>& rcpts, const std::string& ip) {
    return DirectoryService::check(rcpts, nullptr, ip);
  }
  v1::Domain get() {
    grpc::ClientContext ctx;
    v1::GetDomainRequest req;
    req.set_name("example.com");
    v1::Domain d;
    EXPECT_TRUE(admin_->GetDomain(&ctx, req, &d).ok());
    return d;
  }
  v1::Domain set_enforce(bool on) {
    grpc::ClientContext ctx;
    v1::UpdateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_enforce(on);
    v1::Domain d;
    EXPECT_TRUE(admin_->UpdateDomain(&ctx, req, &d).ok());
    return d;
  }
  // Polls until the domain's shadow count is `n`.
  bool wait_count(uint64_t n) {
    for (int i = 0; i < 100; ++i) {
      if (get().shadow().would_reject() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
};

TEST_F(DirectoryShadow, WouldBeRefusalsPassAreCountedAndHarvestCountsThem) {
  const int64_t before_ms = store::unix_ms_now();
  {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    req.mutable_domain()->set_enforce(false);
    v1::Domain resp;
    ASSERT_TRUE(admin_->CreateDomain(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.enforce());
    EXPECT_GE(resp.shadow().since_unix_ms(), before_ms);
    EXPECT_EQ(resp.shadow().would_reject(), 0u);
  }
  {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    req.add_addresses("alice@example.com");
    v1::AddressesResponse resp;
    ASSERT_TRUE(admin_->AddAddresses(&ctx, req, &resp).ok());
  }
  DirectoryMetrics& m = directory_metrics();
  const uint64_t would = m.recipients(Decision::kWouldReject, Source::kList).value();
  const uint64_t rejected = m.recipients(Decision::kReject, Source::kList).value();

  auto v = check({"ghost1@example.com", "alice@example.com", "x@other.org"}, "192.0.2.7");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[0].route().hosts(0), "127.0.0.1:2526");
  EXPECT_EQ(v[0].reason_code(), v1::REASON_NOT_LISTED);
  ASSERT_TRUE(v[0].has_would_reject());
  EXPECT_EQ(v[0].would_reject().code(), 550u);
  EXPECT_EQ(v[0].would_reject().enhanced_code(), "5.1.1");
  EXPECT_FALSE(v[1].has_would_reject());
  EXPECT_EQ(v[1].reason_code(), v1::REASON_LISTED);
  EXPECT_EQ(v[2].enhanced_code(), "5.7.1");  // another domain: no shadow
  EXPECT_EQ(v[2].reason_code(), v1::REASON_RELAY_DENIED);
  EXPECT_EQ(m.recipients(Decision::kWouldReject, Source::kList).value() - would, 1u);
  EXPECT_EQ(m.recipients(Decision::kReject, Source::kList).value() - rejected, 0u);
  EXPECT_TRUE(wait_count(1)) << get().DebugString();

  // Two more would-be refusals reach the harvest defer threshold (3): the
  // client is then deferred 450 4.7.1, shadow domain or not.
  v = check({"ghost2@example.com", "ghost3@example.com"}, "192.0.2.7");
  EXPECT_TRUE(v[1].has_would_reject());
  EXPECT_TRUE(wait_count(3));
  bool blocked = false;
  for (int i = 0; i < 100 && !blocked; ++i) {
    v = check({"alice@example.com"}, "192.0.2.7");
    blocked = v[0].code() == 450u;
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(blocked);
  EXPECT_EQ(v[0].enhanced_code(), "4.7.1");
  EXPECT_EQ(v[0].reason_code(), v1::REASON_HARVEST_BLOCK);
  EXPECT_EQ(get().shadow().would_reject(), 3u);  // the block is no would-be refusal

  // Enforce: refused, no count kept.
  v1::Domain d = set_enforce(true);
  EXPECT_TRUE(d.enforce());
  EXPECT_FALSE(d.has_shadow());
  v = check({"ghost4@example.com"}, "192.0.2.8");
  EXPECT_EQ(v[0].decision(), v1::DECISION_REJECT);
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_FALSE(v[0].has_would_reject());
  EXPECT_FALSE(get().has_shadow());

  // Shadow again: the count starts over, with a new start time.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  d = set_enforce(false);
  EXPECT_EQ(d.shadow().would_reject(), 0u);
  EXPECT_GT(d.shadow().since_unix_ms(), before_ms);
  EXPECT_EQ(get().shadow().would_reject(), 0u);
  check({"ghost5@example.com"}, "192.0.2.8");
  EXPECT_TRUE(wait_count(1));
  // An update that leaves enforce as it is keeps the count.
  {
    grpc::ClientContext ctx;
    v1::UpdateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_local_part_case_sensitive(false);
    v1::Domain resp;
    ASSERT_TRUE(admin_->UpdateDomain(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.shadow().would_reject(), 1u);
    EXPECT_FALSE(resp.enforce());
  }
  // Deleting the domain deletes the count.
  {
    grpc::ClientContext ctx;
    v1::DeleteDomainRequest req;
    req.set_name("example.com");
    v1::DeleteDomainResponse resp;
    ASSERT_TRUE(admin_->DeleteDomain(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(redis_.cli({"EXISTS", store::keys::shadow("example.com")}), "0");
}

}  // namespace shadow
}  // namespace
}  // namespace doorman::directory::service
