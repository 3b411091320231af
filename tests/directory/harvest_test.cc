// Harvest defence (issue #7): per-client-IP unknown-recipient counts in
// Redis shared by directory replicas, the tarpit (delay_ms) and the defer
// (450 4.7.1) thresholds, Explain, and the in-memory fallback without Redis.
// In-process servers on loopback with a real redis-server.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <thread>

#include "directory/harvest/harvest.h"
#include "directory/metrics.h"
#include "directory/service/server.h"
#include "tests/support/redis_server.h"

namespace doorman::directory {
namespace {

namespace v1 = doorman::v1;
using namespace std::chrono_literals;

constexpr char kToken[] = "harvest-test-token";

harvest::Settings small() {
  harvest::Settings s;
  s.window = 60s;
  s.tarpit_threshold = 3;
  s.tarpit_delay = 1500ms;
  s.defer_threshold = 6;
  s.cooldown = 60s;
  return s;
}

// One directory replica: its own pool, Harvest and server, on a shared Redis.
struct Replica {
  std::unique_ptr<store::RedisPool> pool;
  std::unique_ptr<service::Server> server;
  std::unique_ptr<v1::RecipientService::Stub> rcpt;
  std::unique_ptr<v1::AdminService::Stub> admin;

  void start(int redis_port, const harvest::Settings& hs) {
    store::RedisPool::Settings ps;
    ps.redis.port = redis_port;
    ps.redis.timeout = 500ms;
    ps.connections = 1;
    pool = std::make_unique<store::RedisPool>(ps);
    pool->start();
    service::Server::Options so;
    so.auth = auth::AdminAuth::with_token(kToken);
    so.harvest = std::make_shared<harvest::Harvest>(hs);
    server = std::make_unique<service::Server>(*pool, nullptr, so);
    ASSERT_EQ(server->start("127.0.0.1:0"), "");
    const std::string addr = "127.0.0.1:" + std::to_string(server->port());
    rcpt = v1::RecipientService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
    admin = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        addr, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), auth::bearer_interceptors(kToken)));
  }
  void stop() {
    if (server) {
      server->shutdown(100ms);
      server->wait();
    }
    if (pool) pool->stop();
  }
  std::vector<v1::Verdict> check(const std::string& ip, const std::vector<std::string>& rcpts) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::CheckRecipientsRequest req;
    req.mutable_session()->set_client_ip(ip);
    req.mutable_session()->set_session_id("T1");
    for (const auto& r : rcpts) req.add_recipients(r);
    v1::CheckRecipientsResponse resp;
    grpc::Status s = rcpt->CheckRecipients(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.verdicts().begin(), resp.verdicts().end()};
  }
};

class Harvest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    a_.start(redis_.port(), small());
    grpc::ClientContext ctx;
    v1::CreateDomainRequest req;
    req.mutable_domain()->set_name("example.com");
    req.mutable_domain()->set_mode(v1::DOMAIN_MODE_LIST);
    req.mutable_domain()->add_routes("127.0.0.1:2526");
    v1::Domain d;
    ASSERT_TRUE(a_.admin->CreateDomain(&ctx, req, &d).ok());
    grpc::ClientContext ctx2;
    v1::AddressesRequest add;
    add.add_addresses("alice@example.com");
    v1::AddressesResponse added;
    ASSERT_TRUE(a_.admin->AddAddresses(&ctx2, add, &added).ok());
  }
  void TearDown() override {
    b_.stop();
    a_.stop();
  }
  // The shared count of `ip` in Redis, read as a replica would.
  uint64_t redis_count(const std::string& ip) {
    store::RedisConfig rc;
    rc.port = redis_.port();
    store::RedisConn conn(rc);
    if (!conn.connect().ok()) return 0;
    auto h = std::make_shared<harvest::Harvest>(small());
    int64_t now = harvest::now_ms();
    store::HarvestCounts counts;
    if (!store::read_harvest(conn, h->query(ip, now), &counts).ok()) return 0;
    return h->parse(ip, &counts, now).unknown;
  }
  // Recording happens after the reply: wait until Redis has it.
  void wait_count(const std::string& ip, uint64_t n) {
    for (int i = 0; i < 100 && redis_count(ip) < n; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(redis_count(ip), n);
  }

  test::RedisServer redis_;
  Replica a_, b_;
};

TEST_F(Harvest, TarpitPastTheFirstThreshold) {
  const std::string ip = "192.0.2.1";
  auto v = a_.check(ip, {"nobody1@example.com", "nobody2@example.com", "alice@example.com"});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[0].delay_ms(), 0u);
  EXPECT_EQ(v[2].decision(), v1::DECISION_ACCEPT);
  wait_count(ip, 2);
  const uint64_t tarpits = directory_metrics().harvest_actions(HarvestAction::kTarpit).value();
  // The third unknown reaches the threshold: it and everything after it in
  // this call wait - accepts too, so the delay reveals nothing.
  v = a_.check(ip, {"nobody3@example.com", "alice@example.com", "someone@unguarded.test"});
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  EXPECT_EQ(v[1].decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v[1].delay_ms(), 1500u);
  EXPECT_EQ(v[2].decision(), v1::DECISION_REJECT);  // relay denied
  EXPECT_EQ(v[2].delay_ms(), 1500u);
  EXPECT_EQ(directory_metrics().harvest_actions(HarvestAction::kTarpit).value() - tarpits, 3u);
  // Past the threshold, a call's accepts wait like its rejections.
  v = a_.check(ip, {"alice@example.com"});
  EXPECT_EQ(v[0].decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  wait_count(ip, 3);
  // Another IP is unaffected.
  v = a_.check("198.51.100.7", {"nobody1@example.com"});
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[0].delay_ms(), 0u);
  // No client IP (or not an IP): not counted.
  v = a_.check("", {"nobody1@example.com"});
  EXPECT_EQ(v[0].delay_ms(), 0u);
  v = a_.check("doorman:v1:domains", {"nobody1@example.com"});
  EXPECT_EQ(v[0].delay_ms(), 0u);
}

TEST_F(Harvest, DeferPastTheSecondThresholdForTheCooldown) {
  const std::string ip = "2001:db8::25";
  a_.check(ip, {"u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com", "u5@example.com"});
  const std::string id = "2001:db8::/64";  // IPv6 is counted per /64
  wait_count(id, 5);
  const uint64_t defers = directory_metrics().harvest_actions(HarvestAction::kDefer).value();
  // The sixth unknown crosses the defer threshold: from the next call on,
  // every recipient of the IP is deferred - valid ones too.
  auto v = a_.check(ip, {"u6@example.com"});
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  bool deferred = false;
  for (int i = 0; i < 100 && !deferred; ++i) {
    v = a_.check(ip, {"alice@example.com", "u7@example.com"});
    deferred = v[0].decision() == v1::DECISION_DEFER;
    if (!deferred) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(deferred);
  for (const auto& x : v) {
    EXPECT_EQ(x.decision(), v1::DECISION_DEFER);
    EXPECT_EQ(x.code(), 450u);
    EXPECT_EQ(x.enhanced_code(), "4.7.1");
    EXPECT_EQ(x.source(), v1::SOURCE_LIMIT);
  }
  EXPECT_EQ(v[0].text(), "<alice@example.com>: Too many unknown recipients, try again later");
  EXPECT_GE(directory_metrics().harvest_actions(HarvestAction::kDefer).value() - defers, 2u);
  EXPECT_GE(directory_metrics().recipients(Decision::kDefer, Source::kLimit).value(), 2u);
  // Deferred calls do not count (the count stays at 6).
  EXPECT_EQ(redis_count(id), 6u);
  // Another IP is unaffected.
  v = a_.check("192.0.2.99", {"alice@example.com", "u1@example.com"});
  EXPECT_EQ(v[0].decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v[1].code(), 550u);
  EXPECT_EQ(v[1].delay_ms(), 0u);
  // Explain shows the state of the session's client IP.
  grpc::ClientContext ctx;
  v1::ExplainRequest req;
  req.set_address("alice@example.com");
  req.mutable_session()->set_client_ip(ip);
  v1::ExplainResponse resp;
  ASSERT_TRUE(a_.admin->Explain(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.verdict().code(), 450u);
  std::string steps;
  for (const auto& s : resp.steps()) steps += s + "\n";
  EXPECT_NE(steps.find("harvest: client 2001:db8::/64: 6 unknown"), std::string::npos) << steps;
  EXPECT_NE(steps.find("deferred (450 4.7.1)"), std::string::npos) << steps;
}

TEST_F(Harvest, TwoReplicasShareTheCount) {
  b_.start(redis_.port(), small());
  const std::string ip = "203.0.113.5";
  auto v = a_.check(ip, {"x1@example.com", "x2@example.com"});
  EXPECT_EQ(v[1].delay_ms(), 0u);
  wait_count(ip, 2);
  // The other replica sees the first one's count: its third unknown trips
  // the tarpit.
  v = b_.check(ip, {"x3@example.com"});
  EXPECT_EQ(v[0].code(), 550u);
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  wait_count(ip, 3);
  v = a_.check(ip, {"x4@example.com", "x5@example.com", "x6@example.com"});
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  wait_count(ip, 6);
  // ... and the defer set through one replica holds on the other.
  bool deferred = false;
  for (int i = 0; i < 100 && !deferred; ++i) {
    v = b_.check(ip, {"alice@example.com"});
    deferred = v[0].decision() == v1::DECISION_DEFER;
    if (!deferred) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(deferred);
}

// Issue #12: one call of 200 recipients is judged in order, not against the
// count read before it. Tarpit at 10, defer at 20; known addresses at
// 15, 50, 120 and 199, unknown ones everywhere else.
TEST_F(Harvest, ThresholdsReactWithinOneCall) {
  harvest::Settings hs = small();
  hs.tarpit_threshold = 10;
  hs.defer_threshold = 20;
  b_.start(redis_.port(), hs);
  const std::string ip = "198.51.100.20";
  std::vector<std::string> rcpts;
  for (int i = 0; i < 200; ++i) {
    bool known = i == 15 || i == 50 || i == 120 || i == 199;
    rcpts.push_back(known ? "alice@example.com" : "nobody" + std::to_string(i) + "@example.com");
  }
  const uint64_t defers = directory_metrics().harvest_actions(HarvestAction::kDefer).value();
  auto v = b_.check(ip, rcpts);
  ASSERT_EQ(v.size(), 200u);
  // Before the 10th unknown (index 9): plain verdicts.
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(v[i].code(), 550u) << i;
    EXPECT_EQ(v[i].delay_ms(), 0u) << i;
  }
  // From the 10th unknown on, every verdict waits, the accept too.
  for (int i = 9; i <= 20; ++i) EXPECT_EQ(v[i].delay_ms(), 1500u) << i;
  EXPECT_EQ(v[15].decision(), v1::DECISION_ACCEPT);
  // Index 20 is the 20th unknown: it keeps its own verdict ...
  EXPECT_EQ(v[20].code(), 550u);
  EXPECT_EQ(v[20].enhanced_code(), "5.1.1");
  // ... and everything after it is exactly the deferral, known or not.
  for (int i = 21; i < 200; ++i)
    EXPECT_EQ(v[i].SerializeAsString(), harvest::defer_verdict(rcpts[i]).SerializeAsString()) << i;
  for (int i : {50, 120, 199}) {
    EXPECT_EQ(v[i].code(), 450u) << i;
    EXPECT_EQ(v[i].enhanced_code(), "4.7.1") << i;
    EXPECT_EQ(v[i].delay_ms(), 0u) << i;
  }
  // Replace the address by a placeholder: known and unknown look the same.
  auto blind = [](v1::Verdict x, const std::string& rcpt) {
    std::string t = x.text();
    t.replace(0, rcpt.size() + 2, "<>");
    x.set_text(t);
    return x.SerializeAsString();
  };
  EXPECT_EQ(blind(v[50], rcpts[50]), blind(v[51], rcpts[51]));
  EXPECT_EQ(blind(v[199], rcpts[199]), blind(v[198], rcpts[198]));
  EXPECT_EQ(directory_metrics().harvest_actions(HarvestAction::kDefer).value() - defers, 179u);
  // The count holds the 20 unknowns that were revealed, and the IP is
  // blocked from the next call on.
  wait_count(ip, 20);
  bool deferred = false;
  for (int i = 0; i < 100 && !deferred; ++i) {
    v = b_.check(ip, {"alice@example.com"});
    deferred = v[0].decision() == v1::DECISION_DEFER;
    if (!deferred) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(deferred);
}

// Issue #16: the checks of one CheckBatch call are counted in order, so
// several groups of one client in one batch get exactly the verdicts (tarpit,
// defer) and leave exactly the count that the same calls made one after the
// other give.
TEST_F(Harvest, ABatchCountsAsTheSameCallsInARow) {
  // Thresholds: tarpit at 3, defer at 6 (small()). Per group: the client ("X" or "Y") and the recipients.
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {
      {"X", {"nobody1@example.com", "nobody2@example.com"}},
      {"X", {"nobody3@example.com", "alice@example.com"}},  // reaches the tarpit
      {"Y", {"nobody9@example.com"}},                        // another client in between
      {"X", {"nobody4@example.com", "nobody5@example.com", "nobody6@example.com", "alice@example.com"}},  // defer
      {"X", {"alice@example.com"}},  // blocked
  };
  // In a row: client X is 192.0.2.10, Y 192.0.2.11; each call's count is in Redis before the next.
  const std::map<std::string, std::string> seq_ip = {{"X", "192.0.2.10"}, {"Y", "192.0.2.11"}};
  const std::map<std::string, std::string> batch_ip = {{"X", "192.0.2.20"}, {"Y", "192.0.2.21"}};
  std::vector<std::vector<v1::Verdict>> in_a_row;
  std::map<std::string, uint64_t> unknown_so_far;
  for (const auto& [who, rcpts] : groups) {
    in_a_row.push_back(a_.check(seq_ip.at(who), rcpts));
    for (const auto& v : in_a_row.back()) unknown_so_far[who] += harvest::is_unknown(v) ? 1 : 0;
    wait_count(seq_ip.at(who), unknown_so_far[who]);
  }
  // Sanity: the sequence did reach the tarpit and the defer.
  EXPECT_EQ(in_a_row[1][0].delay_ms(), 1500u);
  EXPECT_EQ(in_a_row[3][3].code(), 450u);
  EXPECT_EQ(in_a_row[4][0].enhanced_code(), "4.7.1");

  v1::CheckBatchRequest req;
  for (const auto& [who, rcpts] : groups) {
    auto* c = req.add_checks();
    c->mutable_session()->set_client_ip(batch_ip.at(who));
    for (const auto& r : rcpts) c->add_recipients(r);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::CheckBatchResponse resp;
  ASSERT_TRUE(a_.rcpt->CheckBatch(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), static_cast<int>(groups.size()));
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& got = resp.results(static_cast<int>(i)).response().verdicts();
    ASSERT_EQ(got.size(), static_cast<int>(in_a_row[i].size())) << i;
    for (int k = 0; k < got.size(); ++k) {
      const auto& want = in_a_row[i][static_cast<size_t>(k)];
      EXPECT_EQ(got[k].decision(), want.decision()) << i << "/" << k;
      EXPECT_EQ(got[k].code(), want.code()) << i << "/" << k;
      EXPECT_EQ(got[k].enhanced_code(), want.enhanced_code()) << i << "/" << k;
      EXPECT_EQ(got[k].delay_ms(), want.delay_ms()) << i << "/" << k;
      EXPECT_EQ(got[k].source(), want.source()) << i << "/" << k;
    }
  }
  wait_count(batch_ip.at("X"), redis_count(seq_ip.at("X")));
  wait_count(batch_ip.at("Y"), redis_count(seq_ip.at("Y")));
}

TEST(HarvestCall, ApplyToCallWalksInOrder) {
  harvest::Settings s = small();  // tarpit 3, defer 6
  harvest::Harvest h(s);
  auto unknown = [] {
    v1::Verdict v;
    v.set_decision(v1::DECISION_REJECT);
    v.set_code(550);
    v.set_enhanced_code("5.1.1");
    v.set_source(v1::SOURCE_LIST);
    return v;
  };
  auto accept = [] {
    v1::Verdict v;
    v.set_decision(v1::DECISION_ACCEPT);
    v.set_code(250);
    v.set_source(v1::SOURCE_LIST);
    return v;
  };
  // Count 1 before: the call's 2nd unknown reaches 3 (tarpit), its 5th
  // reaches 6 (defer); the rest is deferred.
  harvest::State before;
  before.unknown = 1;
  std::vector<v1::Verdict> v = {accept(), unknown(), unknown(), accept(), unknown(), unknown(), unknown(), accept()};
  std::vector<std::string> rcpts = {"a@x", "b@x", "c@x", "d@x", "e@x", "f@x", "g@x", "h@x"};
  harvest::CallOutcome o = h.apply_to_call(before, rcpts, &v);
  EXPECT_EQ(o.unknown, 5u);
  EXPECT_EQ(o.tarpitted, 5u);
  EXPECT_EQ(o.deferred, 1u);
  EXPECT_EQ(v[0].delay_ms(), 0u);
  EXPECT_EQ(v[1].delay_ms(), 0u);
  EXPECT_EQ(v[2].delay_ms(), 1500u);  // the 3rd unknown: tarpit from here on
  EXPECT_EQ(v[3].delay_ms(), 1500u);  // an accept after the crossing
  EXPECT_EQ(v[3].decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(v[6].code(), 550u);       // the 6th unknown crosses the defer threshold and is kept
  EXPECT_EQ(v[6].delay_ms(), 1500u);
  EXPECT_EQ(v[7].SerializeAsString(), harvest::defer_verdict("h@x").SerializeAsString());
  EXPECT_TRUE(h.crosses_defer(before, o.unknown));
  // Already past both before the call: everything deferred, nothing counted.
  before.unknown = 6;
  v = {accept(), unknown()};
  o = h.apply_to_call(before, {"a@x", "b@x"}, &v);
  EXPECT_EQ(o.unknown, 0u);
  EXPECT_EQ(o.deferred, 2u);
  EXPECT_EQ(v[0].SerializeAsString(), harvest::defer_verdict("a@x").SerializeAsString());
}

// Issue #12: the addresses of one IPv6 /64 are one client.
TEST_F(Harvest, Ipv6ClientsAreCountedPerPrefix) {
  a_.check("2001:db8:1:2::a", {"p1@example.com", "p2@example.com"});
  wait_count("2001:db8:1:2::/64", 2);
  auto v = a_.check("2001:db8:1:2:ffff::b", {"p3@example.com"});  // same /64: the 3rd unknown
  EXPECT_EQ(v[0].delay_ms(), 1500u);
  v = a_.check("2001:db8:1:3::a", {"p4@example.com"});  // the next /64 is someone else
  EXPECT_EQ(v[0].delay_ms(), 0u);
  // IPv4-mapped IPv6 is the IPv4 address.
  a_.check("::ffff:192.0.2.77", {"q1@example.com"});
  wait_count("192.0.2.77", 1);
}

TEST(HarvestMemory, WithoutRedisTheReplicaCountsInMemory) {
  auto h = std::make_shared<harvest::Harvest>(small());
  const std::string ip = "192.0.2.50";
  const int64_t now = harvest::now_ms();
  harvest::State s = h->parse(ip, nullptr, now);  // the read failed
  EXPECT_TRUE(s.from_memory);
  EXPECT_EQ(s.unknown, 0u);
  EXPECT_FALSE(h->record_on(nullptr, ip, s, 2, now));  // no Redis: memory
  s = h->parse(ip, nullptr, now + 1);
  EXPECT_EQ(s.unknown, 2u);
  EXPECT_FALSE(h->tarpitted(s, 0));
  EXPECT_TRUE(h->tarpitted(s, 1));
  h->record_on(nullptr, ip, s, 4, now + 2);  // crosses the defer threshold
  s = h->parse(ip, nullptr, now + 3);
  EXPECT_EQ(s.unknown, 6u);
  EXPECT_TRUE(h->deferred(s));
  EXPECT_EQ(directory_metrics().harvest_fallback().value(), 1.0);
  // The window slides: a window later the count is gone; the block lasts
  // its cooldown.
  s = h->parse(ip, nullptr, now + 61000);
  EXPECT_EQ(s.unknown, 0u);
  EXPECT_FALSE(h->deferred(s));
  // Other IPs are separate; the map is bounded (least recently used out).
  EXPECT_EQ(h->parse("192.0.2.51", nullptr, now).unknown, 0u);
  harvest::Settings tiny = small();
  tiny.memory_ips = 2;
  auto t = std::make_shared<harvest::Harvest>(tiny);
  harvest::State zero;
  t->record_on(nullptr, "10.0.0.1", zero, 1, now);
  t->record_on(nullptr, "10.0.0.2", zero, 1, now);
  t->record_on(nullptr, "10.0.0.1", zero, 1, now);  // 10.0.0.1 is the most recent
  t->record_on(nullptr, "10.0.0.3", zero, 1, now);  // drops 10.0.0.2
  EXPECT_EQ(t->parse("10.0.0.1", nullptr, now).unknown, 2u);
  EXPECT_EQ(t->parse("10.0.0.2", nullptr, now).unknown, 0u);
  EXPECT_EQ(t->parse("10.0.0.3", nullptr, now).unknown, 1u);
}

TEST(HarvestMemory, UsableIpAndUnknownVerdicts) {
  harvest::Harvest h(small());
  EXPECT_EQ(h.usable_ip("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(h.usable_ip("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(h.usable_ip("2001:DB8::1"), "2001:db8::/64");
  EXPECT_EQ(h.usable_ip("2001:db8:0:0:ffff:ffff:ffff:ffff"), "2001:db8::/64");
  harvest::Settings per_address = small();
  per_address.ipv6_prefix = 128;
  EXPECT_EQ(harvest::Harvest(per_address).usable_ip("2001:DB8::1"), "2001:db8::1");
  harvest::Settings wide = small();
  wide.ipv6_prefix = 48;
  EXPECT_EQ(harvest::Harvest(wide).usable_ip("2001:db8:1:2::1"), "2001:db8:1::/48");
  EXPECT_EQ(h.usable_ip(""), "");
  EXPECT_EQ(h.usable_ip("fe80::1%eth0"), "");
  EXPECT_EQ(h.usable_ip("1.2.3.4 x"), "");
  EXPECT_EQ(h.usable_ip("a:b:*"), "");
  harvest::Settings off = small();
  off.enabled = false;
  EXPECT_EQ(harvest::Harvest(off).usable_ip("192.0.2.1"), "");
  v1::Verdict v;
  v.set_decision(v1::DECISION_REJECT);
  v.set_code(550);
  v.set_enhanced_code("5.1.1");
  v.set_source(v1::SOURCE_LIST);
  EXPECT_TRUE(harvest::is_unknown(v));
  v.set_source(v1::SOURCE_POLICY);
  EXPECT_FALSE(harvest::is_unknown(v));
  // Issue #14: a shadow-mode pass of an unknown recipient counts as enforce
  // mode would (an ACCEPT carrying WouldReject 550 5.1.1).
  v1::Verdict pass;
  pass.set_decision(v1::DECISION_ACCEPT);
  pass.set_code(250);
  pass.set_source(v1::SOURCE_LIST);
  EXPECT_FALSE(harvest::is_unknown(pass));
  pass.mutable_would_reject()->set_code(550);
  pass.mutable_would_reject()->set_enhanced_code("5.1.1");
  EXPECT_TRUE(harvest::is_unknown(pass));
}

}  // namespace
}  // namespace doorman::directory
