// Callout verification (issue #4) end to end: the in-process directory
// (RedisPool + Callout + gRPC server) on a real redis-server, against a real
// Postfix back-end (tests/support/postfix_server.h) and scriptable fakes
// (tests/fakes/fake_smtp_server.h); two real doorman-directory processes on
// one Redis for the cross-replica single flight. Lifetimes and budgets are
// shortened through Settings / options so the suite stays fast.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "directory/callout/callout.h"
#include "directory/metrics.h"
#include "directory/service/server.h"
#include "directory/store/keys.h"
#include "tests/fakes/fake_smtp_server.h"
#include "tests/support/postfix_server.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::directory {
namespace {

namespace v1 = doorman::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Callout : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.start()) << redis_.error(); }
  void TearDown() override {
    if (server_) {
      server_->shutdown(100ms);
      server_->wait();
    }
    if (callout_) callout_->stop();
    if (pool_) pool_->stop();
  }

  // Starts the in-process directory with `s`.
  void start(callout::Settings s) {
    store::RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = 1000ms;
    ps.connections = 4;
    pool_ = std::make_unique<store::RedisPool>(ps);
    pool_->start();
    callout_ = std::make_unique<callout::Callout>(*pool_, s);
    callout_->start();
    service::Server::Options so;
    so.auth = auth::AdminAuth::with_token("callout-test-token");
    server_ = std::make_unique<service::Server>(*pool_, callout_.get(), so);
    ASSERT_EQ(server_->start("127.0.0.1:0"), "");
    connect(server_->port());
  }
  void connect(int port) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
    admin_ = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
        auth::bearer_interceptors("callout-test-token")));
    rcpt_ = v1::RecipientService::NewStub(channel);
  }
  static callout::Settings fast() {
    callout::Settings s;
    s.wait_budget = 2000ms;
    s.connect_timeout = 1000ms;
    s.command_timeout = 3000ms;
    s.probe_timeout = 5000ms;
    s.idle_timeout = 300ms;
    s.poll_interval = 20ms;
    s.rate = 1000;
    s.burst = 1000;
    return s;
  }
  void create(const std::string& name, const std::vector<std::string>& routes,
              v1::DomainMode mode = v1::DOMAIN_MODE_CALLOUT,
              v1::CatchAllPolicy policy = v1::CATCH_ALL_POLICY_UNSPECIFIED, bool fallback = false) {
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name(name);
    req.mutable_domain()->set_mode(mode);
    for (const auto& r : routes) req.mutable_domain()->add_routes(r);
    req.mutable_domain()->set_catch_all_policy(policy);
    if (fallback) req.mutable_domain()->set_callout_fallback(true);
    v1::Domain resp;
    grpc::Status s = admin_->CreateDomain(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::vector<v1::Verdict> check(const std::vector<std::string>& rcpts, v1::RecipientService::Stub* stub = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::CheckRecipientsRequest req;
    for (const auto& r : rcpts) req.add_recipients(r);
    v1::CheckRecipientsResponse resp;
    grpc::Status s = (stub ? stub : rcpt_.get())->CheckRecipients(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.verdicts().begin(), resp.verdicts().end()};
  }
  v1::Verdict check1(const std::string& rcpt) {
    auto v = check({rcpt});
    return v.empty() ? v1::Verdict() : v[0];
  }
  v1::CalloutEntry entry(const std::string& address) {
    grpc::ClientContext ctx;
    v1::CalloutAddressRequest req;
    req.set_address(address);
    v1::CalloutEntry resp;
    EXPECT_TRUE(admin_->GetCalloutEntry(&ctx, req, &resp).ok());
    return resp;
  }
  v1::Domain domain(const std::string& name) {
    grpc::ClientContext ctx;
    v1::GetDomainRequest req;
    req.set_name(name);
    v1::Domain d;
    EXPECT_TRUE(admin_->GetDomain(&ctx, req, &d).ok());
    return d;
  }
  bool wait_cached(const std::string& address, std::chrono::milliseconds timeout) {
    auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (entry(address).found()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  static size_t rcpts_for(const test::FakeSmtpServer& f, const std::string& addr) {
    size_t n = 0;
    for (const auto& [t, a] : f.rcpt_log()) n += a == "<" + addr + ">" ? 1 : 0;
    return n;
  }

  test::RedisServer redis_;
  std::unique_ptr<store::RedisPool> pool_;
  std::unique_ptr<callout::Callout> callout_;
  std::unique_ptr<service::Server> server_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::RecipientService::Stub> rcpt_;
};

// --- against a real Postfix -------------------------------------------------

class CalloutPostfix : public Callout {
 protected:
  void SetUp() override {
    Callout::SetUp();
    std::string why;
    if (!test::PostfixServer::available(&why)) GTEST_SKIP() << why;
    std::string error;
    ASSERT_TRUE(postfix_.start("example.test", {"alice", "bob"}, &error)) << error;
  }
  std::string route() const { return "127.0.0.1:" + std::to_string(postfix_.port()); }
  test::PostfixServer postfix_;
};

TEST_F(CalloutPostfix, ValidUnknownAndCacheHitWithoutANewProbe) {
  start(fast());
  create("example.test", {route()});
  auto v = check({"Alice@example.test", "nobody@example.test"});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].code(), 250u) << v[0].reason();
  EXPECT_EQ(v[0].source(), v1::SOURCE_PROBE);
  EXPECT_EQ(v[0].route().hosts(0), route());
  EXPECT_EQ(v[1].code(), 550u) << v[1].reason();
  EXPECT_EQ(v[1].enhanced_code(), "5.1.1");
  EXPECT_EQ(v[1].text(), "<nobody@example.test>: Recipient address rejected: User unknown");
  EXPECT_EQ(v[1].source(), v1::SOURCE_PROBE);
  ASSERT_TRUE(wait_cached("alice@example.test", 2s));
  ASSERT_TRUE(wait_cached("nobody@example.test", 2s));
  auto e = entry("alice@example.test");
  EXPECT_EQ(e.result(), "valid");
  EXPECT_EQ(e.source(), route());
  EXPECT_GT(e.expires_in_ms(), 6LL * 24 * 3600 * 1000);
  EXPECT_EQ(entry("nobody@example.test").result(), "unknown");
  // The domain was checked for catch-all in the same session: it is not one.
  EXPECT_EQ(domain("example.test").catch_all().state(), v1::CatchAllStatus::STATE_NORMAL);

  const uint64_t probes = callout_->probes_sent();
  auto again = check({"alice+tag@example.test", "NOBODY@example.test"});
  EXPECT_EQ(again[0].code(), 250u);
  EXPECT_EQ(again[0].source(), v1::SOURCE_CACHE);
  EXPECT_EQ(again[1].code(), 550u);
  EXPECT_EQ(again[1].source(), v1::SOURCE_CACHE);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(callout_->probes_sent(), probes);
}

TEST_F(CalloutPostfix, NegativeResultExpiresSoANewMailboxIsAccepted) {
  auto s = fast();
  s.negative_ttl = 1000ms;
  s.negative_refresh = 1000ms;
  start(s);
  create("example.test", {route()});
  EXPECT_EQ(check1("carol@example.test").code(), 550u);
  ASSERT_TRUE(wait_cached("carol@example.test", 2s));
  ASSERT_TRUE(postfix_.set_users({"alice", "bob", "carol"}));
  EXPECT_EQ(check1("carol@example.test").source(), v1::SOURCE_CACHE);
  std::this_thread::sleep_for(1200ms);  // negative lifetime over (and pooled sessions closed)
  EXPECT_FALSE(entry("carol@example.test").found());
  auto v = check1("carol@example.test");
  EXPECT_EQ(v.code(), 250u) << v.reason();
  EXPECT_EQ(v.source(), v1::SOURCE_PROBE);
}

TEST_F(CalloutPostfix, ForgetAndFlushClearTheCache) {
  start(fast());
  create("example.test", {route()});
  EXPECT_EQ(check1("dave@example.test").code(), 550u);
  ASSERT_TRUE(wait_cached("dave@example.test", 2s));
  ASSERT_TRUE(postfix_.set_users({"alice", "bob", "dave"}));
  std::this_thread::sleep_for(400ms);  // pooled sessions (old table) idle out
  {
    grpc::ClientContext ctx;
    v1::CalloutAddressRequest req;
    req.set_address("Dave@example.test");
    v1::ForgetCalloutResponse resp;
    ASSERT_TRUE(admin_->ForgetCalloutEntry(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.removed());
  }
  EXPECT_EQ(check1("dave@example.test").code(), 250u);
  ASSERT_TRUE(wait_cached("dave@example.test", 2s));
  grpc::ClientContext ctx;
  v1::FlushCalloutRequest req;
  req.set_domain("example.test");
  v1::FlushCalloutResponse resp;
  ASSERT_TRUE(admin_->FlushCalloutCache(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.removed(), 2u);  // dave and the catch-all status
  EXPECT_FALSE(entry("dave@example.test").found());
  EXPECT_EQ(domain("example.test").catch_all().state(), v1::CatchAllStatus::STATE_UNKNOWN);
}

TEST_F(CalloutPostfix, RefreshAheadServesTheCacheAndAFailedRefreshKeepsIt) {
  auto s = fast();
  s.positive_refresh = 400ms;
  start(s);
  create("example.test", {route()});
  EXPECT_EQ(check1("bob@example.test").code(), 250u);
  ASSERT_TRUE(wait_cached("bob@example.test", 2s));
  const int64_t first = entry("bob@example.test").checked_unix_ms();
  std::this_thread::sleep_for(500ms);
  // Due: still served from the cache, one background probe refreshes it.
  uint64_t probes = callout_->probes_sent();
  auto v = check({"bob@example.test", "bob@example.test"});
  EXPECT_EQ(v[0].source(), v1::SOURCE_CACHE);
  EXPECT_EQ(v[1].source(), v1::SOURCE_CACHE);
  auto until = Clock::now() + 3s;
  while (entry("bob@example.test").checked_unix_ms() == first && Clock::now() < until) std::this_thread::sleep_for(20ms);
  const int64_t second = entry("bob@example.test").checked_unix_ms();
  EXPECT_GT(second, first);
  EXPECT_EQ(callout_->probes_sent(), probes + 1);

  // The back-end goes away: the refresh fails, the good result stays.
  postfix_.stop();
  std::this_thread::sleep_for(500ms);
  probes = callout_->probes_sent();
  v = check({"bob@example.test"});
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[0].source(), v1::SOURCE_CACHE);
  until = Clock::now() + 3s;
  while (callout_->probes_sent() == probes && Clock::now() < until) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(300ms);
  auto e = entry("bob@example.test");
  EXPECT_EQ(e.result(), "valid");
  EXPECT_EQ(e.checked_unix_ms(), second);
}

// --- against scriptable fakes ------------------------------------------------

// Issue #14: a shadow-mode callout domain passes the back-end's 5xx to a
// live probe and to a cached one (with the cache's age), and still caches
// the answer as unknown; a greylisting 4xx stays a deferral.
TEST_F(Callout, ShadowModePassesCallout5xxAndCachesItAsUsual) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line.rfind("RCPT TO:<grey@", 0) == 0) return test::FakeAction{"450 4.7.1 Greylisted, try later\r\n", 0ms, false};
    if (line.rfind("RCPT TO:<", 0) != 0 || line.rfind("RCPT TO:<alice@", 0) == 0) return std::nullopt;
    return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
  });
  ASSERT_TRUE(fake.start());
  start(fast());
  create("shadow.test", {"127.0.0.1:" + std::to_string(fake.port())});
  {
    grpc::ClientContext ctx;
    v1::UpdateDomainRequest req;
    req.mutable_domain()->set_name("shadow.test");
    req.mutable_domain()->set_enforce(false);
    v1::Domain resp;
    ASSERT_TRUE(admin_->UpdateDomain(&ctx, req, &resp).ok());
  }
  v1::Verdict v = check1("nobody@shadow.test");
  EXPECT_EQ(v.decision(), v1::DECISION_ACCEPT) << v.reason();
  EXPECT_EQ(v.source(), v1::SOURCE_PROBE);
  EXPECT_EQ(v.reason_code(), v1::REASON_CALLOUT_UNKNOWN);
  ASSERT_TRUE(v.has_would_reject());
  EXPECT_EQ(v.would_reject().code(), 550u);
  EXPECT_EQ(v.route().hosts(0), "127.0.0.1:" + std::to_string(fake.port()));
  ASSERT_TRUE(wait_cached("nobody@shadow.test", 2s));
  EXPECT_EQ(entry("nobody@shadow.test").result(), "unknown");  // the cache as in enforce mode
  v = check1("nobody@shadow.test");
  EXPECT_EQ(v.decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v.source(), v1::SOURCE_CACHE);
  EXPECT_TRUE(v.has_would_reject());
  EXPECT_GE(v.cache_age_ms(), 0);
  EXPECT_EQ(rcpts_for(fake, "nobody@shadow.test"), 1u);  // answered from the cache
  v = check1("alice@shadow.test");
  EXPECT_EQ(v.code(), 250u);
  EXPECT_EQ(v.reason_code(), v1::REASON_CALLOUT_VALID);
  EXPECT_FALSE(v.has_would_reject());
  v = check1("grey@shadow.test");
  EXPECT_EQ(v.code(), 450u);
  EXPECT_EQ(v.reason_code(), v1::REASON_CALLOUT_TEMPFAIL);
  EXPECT_FALSE(v.has_would_reject());
}

TEST_F(Callout, GreylistingIsNeverCachedAsUnknown) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line.rfind("RCPT TO:<grey@", 0) == 0) return test::FakeAction{"450 4.7.1 Greylisted, try later\r\n", 0ms, false};
    if (line.rfind("RCPT TO:<doorman-random-", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  start(fast());
  create("grey.test", {"127.0.0.1:" + std::to_string(fake.port())});
  auto v = check1("grey@grey.test");
  EXPECT_EQ(v.code(), 450u);
  EXPECT_EQ(v.enhanced_code(), "4.1.1");
  EXPECT_EQ(v.decision(), v1::DECISION_DEFER);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(entry("grey@grey.test").found());
  // Asked again: probed again (not answered from a cache).
  EXPECT_EQ(check1("grey@grey.test").code(), 450u);
  EXPECT_EQ(rcpts_for(fake, "grey@grey.test"), 2u);
}

TEST_F(Callout, SlowBackEndDefersWithinTheBudgetAndFillsTheCacheAfterwards) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line == "RCPT TO:<slow@slow.test>") return test::FakeAction{std::nullopt, 1200ms, false};
    if (line.rfind("RCPT TO:<doorman-random-", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  auto s = fast();
  s.wait_budget = 300ms;
  start(s);
  create("slow.test", {"127.0.0.1:" + std::to_string(fake.port())});
  auto t0 = Clock::now();
  auto v = check1("slow@slow.test");
  auto took = Clock::now() - t0;
  EXPECT_EQ(v.code(), 450u);
  EXPECT_EQ(v.enhanced_code(), "4.1.1");
  EXPECT_EQ(v.text(), "<slow@slow.test>: Recipient address verification in progress");
  EXPECT_LT(took, 800ms);
  EXPECT_GE(took, 250ms);
  ASSERT_TRUE(wait_cached("slow@slow.test", 3s));
  EXPECT_EQ(entry("slow@slow.test").result(), "valid");
  auto again = check1("slow@slow.test");
  EXPECT_EQ(again.code(), 250u);
  EXPECT_EQ(again.source(), v1::SOURCE_CACHE);
}

// Issue #16: a CheckBatch never waits for a probe. A check that needs one
// comes back "ask alone" (nothing probed, decided or counted for it), the
// other checks of the batch are answered; the check asked alone then waits
// for its probe, and once cached it is answered inside a batch.
TEST_F(Callout, ABatchSendsAProbingCheckBackAndAnswersTheOthers) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line == "RCPT TO:<slow@slow.test>") return test::FakeAction{std::nullopt, 600ms, false};
    if (line.rfind("RCPT TO:<doorman-random-", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  start(fast());
  create("slow.test", {"127.0.0.1:" + std::to_string(fake.port())});
  create("list.test", {"127.0.0.1:25"}, v1::DOMAIN_MODE_LIST);
  {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    req.add_addresses("alice@list.test");
    v1::AddressesResponse resp;
    ASSERT_TRUE(admin_->AddAddresses(&ctx, req, &resp).ok());
  }
  auto batch = [&](std::vector<std::vector<std::string>> groups) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::CheckBatchRequest req;
    for (auto& g : groups) {
      auto* c = req.add_checks();
      c->mutable_session()->set_client_ip("192.0.2.7");
      for (auto& r : g) c->add_recipients(r);
    }
    v1::CheckBatchResponse resp;
    grpc::Status st = rcpt_->CheckBatch(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  const uint64_t asked_alone = directory_metrics().batch_asked_alone().value();
  v1::CheckBatchResponse first = batch({{"alice@list.test"}, {"slow@slow.test", "alice@list.test"}, {"bob@list.test"}});
  ASSERT_EQ(first.results_size(), 3);
  ASSERT_EQ(first.results(0).response().verdicts_size(), 1);
  EXPECT_EQ(first.results(0).response().verdicts(0).code(), 250u);
  EXPECT_TRUE(first.results(1).ask_alone());
  EXPECT_EQ(first.results(1).response().verdicts_size(), 0);
  ASSERT_EQ(first.results(2).response().verdicts_size(), 1);
  EXPECT_EQ(first.results(2).response().verdicts(0).code(), 550u);
  EXPECT_FALSE(first.results(0).ask_alone());
  EXPECT_EQ(directory_metrics().batch_asked_alone().value(), asked_alone + 1);
  EXPECT_EQ(rcpts_for(fake, "slow@slow.test"), 0u);  // the batch started no probe
  EXPECT_FALSE(entry("slow@slow.test").found());

  // Asked alone, it waits for its probe.
  auto v = check({"slow@slow.test", "alice@list.test"});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].code(), 250u);
  EXPECT_EQ(v[0].source(), v1::SOURCE_PROBE);
  EXPECT_EQ(v[1].code(), 250u);
  EXPECT_EQ(rcpts_for(fake, "slow@slow.test"), 1u);

  // Cached now: answered inside a batch.
  v1::CheckBatchResponse cached = batch({{"slow@slow.test"}});
  ASSERT_EQ(cached.results_size(), 1);
  EXPECT_FALSE(cached.results(0).ask_alone());
  ASSERT_EQ(cached.results(0).response().verdicts_size(), 1);
  EXPECT_EQ(cached.results(0).response().verdicts(0).code(), 250u);
  EXPECT_EQ(cached.results(0).response().verdicts(0).source(), v1::SOURCE_CACHE);
  EXPECT_EQ(directory_metrics().batch_asked_alone().value(), asked_alone + 1);
}

TEST_F(Callout, CatchAllBackEndIsDetectedAndReported) {
  test::FakeSmtpServer fake;  // accepts every RCPT
  ASSERT_TRUE(fake.start());
  start(fast());
  const std::string route = "127.0.0.1:" + std::to_string(fake.port());
  create("any.test", {route});
  create("strict.test", {route}, v1::DOMAIN_MODE_CALLOUT, v1::CATCH_ALL_POLICY_DEFER);
  auto v = check1("whoever@any.test");
  EXPECT_EQ(v.code(), 250u);
  EXPECT_EQ(v.source(), v1::SOURCE_POLICY);
  EXPECT_NE(v.reason().find("catch-all"), std::string::npos) << v.reason();
  auto d = domain("any.test");
  EXPECT_EQ(d.catch_all().state(), v1::CatchAllStatus::STATE_CATCH_ALL);
  EXPECT_NE(d.catch_all().warning().find("back-end accepts any address"), std::string::npos);
  // Later checks do not probe addresses of a catch-all domain.
  const size_t rcpts = fake.rcpt_commands();
  EXPECT_EQ(check1("other@any.test").source(), v1::SOURCE_POLICY);
  EXPECT_EQ(fake.rcpt_commands(), rcpts);
  EXPECT_FALSE(entry("whoever@any.test").found());
  // Policy defer.
  auto s = check1("someone@strict.test");
  EXPECT_EQ(s.code(), 451u);
  EXPECT_EQ(s.enhanced_code(), "4.4.3");
  // ListDomains reports it too.
  grpc::ClientContext ctx;
  v1::ListDomainsResponse list;
  ASSERT_TRUE(admin_->ListDomains(&ctx, v1::ListDomainsRequest(), &list).ok());
  for (const auto& x : list.domains()) EXPECT_EQ(x.catch_all().state(), v1::CatchAllStatus::STATE_CATCH_ALL);
}

TEST_F(Callout, ConnectionRefusedDefersAndFailsOverToTheNextRoute) {
  int closed = test::free_tcp_port();
  start(fast());
  create("down.test", {"127.0.0.1:" + std::to_string(closed)});
  auto v = check1("a@down.test");
  EXPECT_EQ(v.decision(), v1::DECISION_DEFER);
  EXPECT_EQ(v.code(), 451u);
  EXPECT_EQ(v.enhanced_code(), "4.4.3");
  EXPECT_EQ(v.text().find("127.0.0.1"), std::string::npos) << "reply text must not name the back-end";
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(entry("a@down.test").found());

  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line.rfind("RCPT TO:<doorman-random-", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  create("two.test", {"127.0.0.1:" + std::to_string(closed), "127.0.0.1:" + std::to_string(fake.port())});
  auto w = check1("b@two.test");
  EXPECT_EQ(w.code(), 250u) << w.reason();
  EXPECT_EQ(rcpts_for(fake, "b@two.test"), 1u);
}

TEST_F(Callout, ListWithCalloutFallback) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line.rfind("RCPT", 0) == 0 && line != "RCPT TO:<legacy@mixed.test>")
      return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  start(fast());
  create("mixed.test", {"127.0.0.1:" + std::to_string(fake.port())}, v1::DOMAIN_MODE_LIST,
         v1::CATCH_ALL_POLICY_UNSPECIFIED, true);
  {
    grpc::ClientContext ctx;
    v1::AddressesRequest req;
    req.add_addresses("listed@mixed.test");
    v1::AddressesResponse resp;
    ASSERT_TRUE(admin_->AddAddresses(&ctx, req, &resp).ok());
  }
  auto v = check({"listed@mixed.test", "legacy@mixed.test", "nobody@mixed.test"});
  EXPECT_EQ(v[0].source(), v1::SOURCE_LIST);
  EXPECT_EQ(v[1].code(), 250u);
  EXPECT_EQ(v[1].source(), v1::SOURCE_PROBE);
  EXPECT_EQ(v[2].code(), 550u);
  EXPECT_EQ(v[2].source(), v1::SOURCE_PROBE);
  EXPECT_EQ(rcpts_for(fake, "listed@mixed.test"), 0u);
}

TEST_F(Callout, RateLimitIsNeverExceededAtTheBackEnd) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line.rfind("RCPT", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  auto s = fast();
  s.rate = 10;
  s.burst = 3;
  s.wait_budget = 200ms;
  start(s);
  create("burst.test", {"127.0.0.1:" + std::to_string(fake.port())});
  std::vector<std::string> rcpts;
  for (int i = 0; i < 20; ++i) rcpts.push_back("u" + std::to_string(i) + "@burst.test");
  auto v = check(rcpts);
  ASSERT_EQ(v.size(), rcpts.size());
  // Every address (and the random catch-all probe) reaches the back-end
  // eventually, at most burst + rate * window in any window.
  ASSERT_TRUE(fake.wait_for_commands("RCPT", 21, 5s)) << fake.rcpt_commands();
  auto log = fake.rcpt_log();
  for (size_t i = 0; i < log.size(); ++i) {
    for (auto window : {250ms, 500ms, 1000ms}) {
      size_t n = 0;
      for (size_t j = i; j < log.size() && log[j].first - log[i].first < window; ++j) ++n;
      double allowed = s.burst + s.rate * std::chrono::duration<double>(window).count() + 1;
      EXPECT_LE(static_cast<double>(n), allowed) << "window " << window.count() << "ms from RCPT " << i;
    }
  }
  auto total = std::chrono::duration<double>(log.back().first - log.front().first).count();
  EXPECT_GE(total, (21.0 - s.burst) / s.rate - 0.2);
}

// --- two directory processes on one Redis -------------------------------------

TEST_F(Callout, TwoReplicasFiftyConcurrentChecksMakeOneProbe) {
  test::FakeSmtpServer fake;
  fake.set_responder([](const std::string& line) -> std::optional<test::FakeAction> {
    if (line == "RCPT TO:<shared@replicas.test>") return test::FakeAction{std::nullopt, 300ms, false};
    if (line.rfind("RCPT TO:<doorman-random-", 0) == 0) return test::FakeAction{"550 5.1.1 No such user\r\n", 0ms, false};
    return std::nullopt;
  });
  ASSERT_TRUE(fake.start());
  std::string dir = test::make_temp_dir("doorman-replicas");
  test::Process replicas[2];
  int ports[2];
  for (int i = 0; i < 2; ++i) {
    ports[i] = test::free_tcp_port();
    ASSERT_TRUE(replicas[i].start({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(ports[i]),
                                   "--http-listen=", "--admin-insecure", "--redis-port", std::to_string(redis_.port()), "--callout-wait", "2s",
                                   "--callout-poll", "20ms"},
                                  dir + "/directory" + std::to_string(i) + ".log"));
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(test::wait_for_port(ports[i], 10s)) << replicas[i].read_log();
  connect(ports[0]);
  create("replicas.test", {"127.0.0.1:" + std::to_string(fake.port())});
  std::unique_ptr<v1::RecipientService::Stub> stubs[2];
  for (int i = 0; i < 2; ++i)
    stubs[i] = v1::RecipientService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(ports[i]), grpc::InsecureChannelCredentials()));
  std::vector<std::future<v1::Verdict>> results;
  for (int i = 0; i < 50; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      auto v = check({"shared@replicas.test"}, stubs[i % 2].get());
      return v.empty() ? v1::Verdict() : v[0];
    }));
  }
  int accepted = 0;
  for (auto& r : results) accepted += r.get().code() == 250u ? 1 : 0;
  EXPECT_EQ(accepted, 50);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rcpts_for(fake, "shared@replicas.test"), 1u);
  // Close our channels first: a gRPC server's shutdown waits for open
  // client connections until its grace period ends.
  for (auto& s : stubs) s.reset();
  admin_.reset();
  rcpt_.reset();
  for (auto& r : replicas) EXPECT_EQ(r.stop(), 0) << r.read_log();
  test::remove_tree(dir);
}

}  // namespace
}  // namespace doorman::directory
