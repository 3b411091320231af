// The store against a real redis-server (started by the fixture): domains,
// address writes with normalisation, paging, replace, the group fetch in
// one round trip, the callout single flight and cache entries, and the
// harvest counters.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <thread>

#include "directory/store/console_sessions.h"
#include "directory/store/keys.h"
#include "directory/store/store.h"
#include "directory/store/sync_state.h"
#include "directory/sync/source.h"
#include "tests/support/redis_server.h"

namespace doorman::directory::store {
namespace {

namespace v1 = doorman::v1;

class DirectoryStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new test::RedisServer();
    ASSERT_TRUE(redis_->start()) << redis_->error();
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    redis_->cli({"FLUSHALL"});
    RedisConfig cfg;
    cfg.port = redis_->port();
    conn_ = std::make_unique<RedisConn>(cfg);
    ASSERT_TRUE(conn_->connect().ok());
  }
  v1::Domain make(const std::string& name, v1::DomainMode mode = v1::DOMAIN_MODE_LIST) {
    v1::Domain d;
    d.set_name(name);
    d.set_mode(mode);
    d.add_routes("127.0.0.1:2526");
    return d;
  }
  BatchResult add(const std::vector<std::string>& a, WriteOp op = WriteOp::kAdd) {
    DomainCache cache;
    BatchResult r;
    EXPECT_TRUE(write_addresses(*conn_, a, {op, "", ""}, &cache, &r).ok());
    return r;
  }
  // Every address of `domain` (with `prefix`), page by page; *pages = how many.
  std::set<std::string> list_all(const std::string& domain, uint32_t page_size, const std::string& prefix = "",
                                 int* pages = nullptr) {
    std::set<std::string> seen;
    std::string token;
    int n = 0;
    do {
      std::vector<std::string> page;
      std::string next;
      EXPECT_TRUE(list_addresses(*conn_, domain, page_size, token, &page, &next, prefix).ok());
      seen.insert(page.begin(), page.end());
      token = next;
    } while (!token.empty() && ++n < 1000);
    if (pages) *pages = n + 1;
    return seen;
  }
  static test::RedisServer* redis_;
  std::unique_ptr<RedisConn> conn_;
};
test::RedisServer* DirectoryStore::redis_ = nullptr;

TEST_F(DirectoryStore, DomainLifecycle) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  EXPECT_EQ(create_domain(*conn_, make("example.com")).code, Code::kAlreadyExists);
  v1::Domain got;
  ASSERT_TRUE(get_domain(*conn_, "example.com", &got).ok());
  EXPECT_EQ(got.mode(), v1::DOMAIN_MODE_LIST);
  EXPECT_EQ(got.subaddress_separator(), "+");
  EXPECT_EQ(redis_->cli({"HGET", keys::domain("example.com"), "routes"}), "127.0.0.1:2526");
  v1::Domain patch;
  patch.set_name("example.com");
  patch.set_mode(v1::DOMAIN_MODE_CALLOUT);
  patch.set_subaddress_separator("");
  v1::Domain updated;
  ASSERT_TRUE(update_domain(*conn_, patch, &updated).ok());
  EXPECT_EQ(updated.mode(), v1::DOMAIN_MODE_CALLOUT);
  EXPECT_EQ(updated.routes_size(), 1);
  EXPECT_EQ(updated.subaddress_separator(), "");
  std::vector<v1::Domain> all;
  ASSERT_TRUE(list_domains(*conn_, &all).ok());
  ASSERT_EQ(all.size(), 1u);
  uint64_t removed = 0;
  add({"a@example.com", "b@example.com"});
  ASSERT_TRUE(delete_domain(*conn_, "example.com", &removed).ok());
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(get_domain(*conn_, "example.com", &got).code, Code::kNotFound);
  EXPECT_EQ(delete_domain(*conn_, "example.com", &removed).code, Code::kNotFound);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::addresses("example.com")}), "0");
}

TEST_F(DirectoryStore, AddRemoveCountWithNormalisationAndErrors) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  BatchResult r = add({"Alice@Example.com", "alice+news@example.com", "\"b c\"@example.com", "x@other.org", "bad@"});
  EXPECT_EQ(r.changed, 2u);
  EXPECT_EQ(r.unchanged, 1u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].address, "bad@");
  EXPECT_EQ(r.errors[1].address, "x@other.org");
  uint64_t n = 0;
  ASSERT_TRUE(count_addresses(*conn_, "example.com", &n).ok());
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(redis_->cli({"SISMEMBER", keys::addresses("example.com"), "b c"}), "1");
  r = add({"ALICE@example.com", "nobody@example.com"}, WriteOp::kRemove);
  EXPECT_EQ(r.changed, 1u);
  EXPECT_EQ(r.unchanged, 1u);
  EXPECT_EQ(count_addresses(*conn_, "nope.org", &n).code, Code::kNotFound);
}

TEST_F(DirectoryStore, ListPagesCoverEveryAddress) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  std::vector<std::string> in;
  for (int i = 0; i < 2500; ++i) in.push_back("user" + std::to_string(i) + "@example.com");
  in.push_back("\"with space\"@example.com");
  add(in);
  int pages = 0;
  std::set<std::string> seen = list_all("example.com", 500, "", &pages);
  EXPECT_EQ(seen.size(), in.size());
  EXPECT_TRUE(seen.count("\"with space\"@example.com"));
  EXPECT_GT(pages, 1);
}

// Issue #13: the console's prefix search; glob characters are literal.
TEST_F(DirectoryStore, ListByPrefixFindsEveryMatchAndOnlyThose) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  std::vector<std::string> in;
  for (int i = 0; i < 2500; ++i) in.push_back("user" + std::to_string(i) + "@example.com");
  for (const char* a : {"a*b@example.com", "axb@example.com", "a?c@example.com"}) in.push_back(a);
  add(in);
  auto all_pages = [&](const std::string& prefix) { return list_all("example.com", 50, prefix); };
  auto users24 = all_pages("user24");
  EXPECT_EQ(users24.size(), 111u);  // user24, user240..249, user2400..2499
  for (const auto& a : users24) EXPECT_EQ(a.rfind("user24", 0), 0u) << a;
  EXPECT_EQ(all_pages("a*"), (std::set<std::string>{"a*b@example.com"}));
  EXPECT_EQ(all_pages("a?"), (std::set<std::string>{"a?c@example.com"}));
  EXPECT_TRUE(all_pages("nobody").empty());
}

// Issue #13: logged-out console sessions, shared by every replica.
TEST_F(DirectoryStore, ConsoleSessionRevocationExpires) {
  const std::string sid(32, 'a'), other(32, 'b');
  bool revoked = true;
  ASSERT_TRUE(console_session_revoked(*conn_, sid, &revoked).ok());
  EXPECT_FALSE(revoked);
  ASSERT_TRUE(revoke_console_session(*conn_, sid, 300).ok());
  ASSERT_TRUE(console_session_revoked(*conn_, sid, &revoked).ok());
  EXPECT_TRUE(revoked);
  ASSERT_TRUE(console_session_revoked(*conn_, other, &revoked).ok());
  EXPECT_FALSE(revoked);
  // Gone once the session would have expired anyway.
  for (int i = 0; i < 100 && revoked; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(console_session_revoked(*conn_, sid, &revoked).ok());
  }
  EXPECT_FALSE(revoked);
}

TEST_F(DirectoryStore, ReplaceIsAtomicAndCounts) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  add({"a@example.com", "b@example.com", "c@example.com"});
  std::string tmp = keys::tmp_replace("example.com", "t1");
  ASSERT_TRUE(replace_begin(*conn_, "example.com", tmp).ok());
  DomainCache cache;
  BatchResult r;
  WriteTarget target{WriteOp::kAdd, "example.com", tmp};
  ASSERT_TRUE(write_addresses(*conn_, {"b@example.com", "c@example.com", "d@example.com", "e@other.org"}, target,
                              &cache, &r).ok());
  EXPECT_EQ(r.errors.size(), 1u);
  // Until the commit the live list is untouched.
  EXPECT_EQ(redis_->cli({"SCARD", keys::addresses("example.com")}), "3");
  ReplaceCounts counts;
  ASSERT_TRUE(replace_commit(*conn_, "example.com", tmp, &counts).ok());
  EXPECT_EQ(counts.added, 1u);
  EXPECT_EQ(counts.removed, 1u);
  EXPECT_EQ(counts.unchanged, 2u);
  EXPECT_EQ(redis_->cli({"SCARD", keys::addresses("example.com")}), "3");
  EXPECT_EQ(redis_->cli({"TTL", keys::addresses("example.com")}), "-1");
  EXPECT_EQ(redis_->cli({"EXISTS", tmp}), "0");
  // Replacing with nothing empties the list.
  ASSERT_TRUE(replace_begin(*conn_, "example.com", tmp).ok());
  ASSERT_TRUE(replace_commit(*conn_, "example.com", tmp, &counts).ok());
  EXPECT_EQ(counts.removed, 3u);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::addresses("example.com")}), "0");
  EXPECT_EQ(replace_begin(*conn_, "nope.org", tmp).code, Code::kNotFound);
}

TEST_F(DirectoryStore, GroupFetchIsOneRoundTrip) {
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  v1::Domain cs = make("cs.example");
  cs.set_local_part_case_sensitive(true);
  ASSERT_TRUE(create_domain(*conn_, cs).ok());
  add({"alice@example.com", "Bob@cs.example"});
  std::vector<smtp::Mailbox> group = {{"Alice+x", "Example.com"}, {"zed", "example.com"}, {"Bob", "cs.example"},
                                      {"bob", "cs.example"}, {"a", "other.org"}};
  redis_->cli({"CONFIG", "RESETSTAT"});
  uint64_t before = conn_->round_trips();
  GroupFacts facts;
  ASSERT_TRUE(fetch_group(*conn_, group, &facts).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  ASSERT_EQ(facts.size(), 3u);
  EXPECT_TRUE(facts["example.com"].listed.count("alice"));
  EXPECT_FALSE(facts["example.com"].listed.count("zed"));
  EXPECT_TRUE(facts["cs.example"].listed.count("Bob"));
  EXPECT_FALSE(facts["cs.example"].listed.count("bob"));
  EXPECT_FALSE(facts["other.org"].config.has_value());
  // 3 domains: one HGETALL and one SMISMEMBER each, nothing else.
  std::string stats = redis_->cli({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_hgetall:calls=3"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_smismember:calls=3"), std::string::npos) << stats;
}

TEST_F(DirectoryStore, CustomSeparatorNeedsAtMostOneMoreRoundTrip) {
  v1::Domain d = make("example.com");
  d.set_subaddress_separator("-");
  ASSERT_TRUE(create_domain(*conn_, d).ok());
  add({"alice@example.com"});
  uint64_t before = conn_->round_trips();
  GroupFacts facts;
  ASSERT_TRUE(fetch_group(*conn_, {{"alice-x", "example.com"}}, &facts).ok());
  EXPECT_EQ(conn_->round_trips() - before, 2u);
  EXPECT_TRUE(facts["example.com"].listed.count("alice"));
}

TEST_F(DirectoryStore, BrokenConnectionFailsFast) {
  RedisConfig cfg;
  cfg.port = test::free_tcp_port();
  RedisConn dead(cfg);
  EXPECT_EQ(dead.connect().code, Code::kUnavailable);
  GroupFacts facts;
  EXPECT_EQ(fetch_group(dead, {{"a", "example.com"}}, &facts).code, Code::kUnavailable);
}

// Issue #12: the marker of a configured store. Admin writes that configure
// the store set it; the lookup refuses to answer without it (a Redis that
// lost its data must not make every recipient unknown).
TEST_F(DirectoryStore, MarkerIsWrittenByAdminWritesAndRequiredByLookups) {
  GroupFacts facts;
  Status s = fetch_group(*conn_, {{"a", "example.com"}}, &facts);  // a fresh store
  EXPECT_EQ(s.code, Code::kFailedPrecondition);
  EXPECT_EQ(s.message, kNotConfiguredMessage);
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "1");
  EXPECT_TRUE(fetch_group(*conn_, {{"a", "example.com"}}, &facts).ok());
  // Gone (FLUSHALL, a restart without persistence): refused, but the
  // harvest read of the pipeline still answers.
  redis_->cli({"DEL", keys::configured()});
  redis_->cli({"SET", keys::harvest("192.0.2.1", 7), "3"});
  const HarvestQuery query{"192.0.2.1", 7, 10};
  std::optional<HarvestCounts> harvest;
  s = fetch_group(*conn_, {{"a", "example.com"}}, &facts, &query, &harvest);
  EXPECT_EQ(s.code, Code::kFailedPrecondition);
  ASSERT_TRUE(harvest.has_value());
  EXPECT_EQ(harvest->unknown, 3u);
  v1::Domain out;
  ASSERT_TRUE(update_domain(*conn_, make("example.com"), &out).ok());
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "1");
  redis_->cli({"DEL", keys::configured()});
  const std::string tmp = keys::tmp_replace("example.com", "m1");
  ASSERT_TRUE(replace_begin(*conn_, "example.com", tmp).ok());
  ReplaceCounts counts;
  ASSERT_TRUE(replace_commit(*conn_, "example.com", tmp, &counts).ok());
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "1");
  // Adding addresses and deleting a domain do not configure a store.
  redis_->cli({"DEL", keys::configured()});
  add({"alice@example.com"});
  uint64_t removed = 0;
  EXPECT_EQ(delete_domain(*conn_, "nope.example", &removed).code, Code::kNotFound);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "0");
  // check_marker: absent; the migration sets it only when domains exist.
  bool present = true, migrated = true;
  ASSERT_TRUE(check_marker(*conn_, false, &present, &migrated).ok());
  EXPECT_FALSE(present);
  EXPECT_FALSE(migrated);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "0");
  ASSERT_TRUE(check_marker(*conn_, true, &present, &migrated).ok());
  EXPECT_TRUE(present);
  EXPECT_TRUE(migrated);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "1");
  ASSERT_TRUE(check_marker(*conn_, true, &present, &migrated).ok());
  EXPECT_TRUE(present);
  EXPECT_FALSE(migrated);
  redis_->cli({"FLUSHALL"});
  ASSERT_TRUE(check_marker(*conn_, true, &present, &migrated).ok());
  EXPECT_FALSE(present);  // nothing to migrate in an empty store
  EXPECT_EQ(redis_->cli({"EXISTS", keys::configured()}), "0");
}

// The harvest counters (harvest_counts.h): the write of one call is one
// round trip; the read is one MGET, alone or inside the lookup pipeline.
TEST_F(DirectoryStore, HarvestCountsAreWrittenAndReadInOneRoundTripEach) {
  const HarvestQuery query{"192.0.2.1", 100, 10};
  HarvestCounts counts;
  ASSERT_TRUE(read_harvest(*conn_, query, &counts).ok());  // nothing yet
  EXPECT_EQ(counts.unknown, 0u);
  EXPECT_EQ(counts.blocked_until_ms, 0);
  uint64_t before = conn_->round_trips();
  HarvestWrite w;
  w.ip = "192.0.2.1";
  w.bucket = 100;
  w.unknown = 2;
  w.bucket_ttl_ms = 60000;
  ASSERT_TRUE(record_harvest(*conn_, w).ok());
  w.bucket = 95;
  w.unknown = 3;
  w.block_until_ms = 123456789;
  w.block_ttl_ms = 30000;
  ASSERT_TRUE(record_harvest(*conn_, w).ok());
  EXPECT_EQ(conn_->round_trips() - before, 2u);
  const std::string ttl = redis_->cli({"PTTL", keys::harvest("192.0.2.1", 100)});
  EXPECT_GT(std::stoll(ttl), 50000);
  EXPECT_LE(std::stoll(ttl), 60000);
  EXPECT_EQ(redis_->cli({"GET", keys::harvest_block("192.0.2.1")}), "123456789");
  EXPECT_GT(std::stoll(redis_->cli({"PTTL", keys::harvest_block("192.0.2.1")})), 20000);
  // Sub-windows outside the query (90 is 11 back) do not count; other IPs are separate.
  redis_->cli({"SET", keys::harvest("192.0.2.1", 90), "50"});
  redis_->cli({"SET", keys::harvest("192.0.2.2", 100), "50"});
  before = conn_->round_trips();
  ASSERT_TRUE(read_harvest(*conn_, query, &counts).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  EXPECT_EQ(counts.unknown, 5u);
  EXPECT_EQ(counts.blocked_until_ms, 123456789);
  // A block alone, and nothing at all (no round trip).
  HarvestWrite block;
  block.ip = "192.0.2.3";
  block.block_until_ms = 42;
  block.block_ttl_ms = 30000;
  ASSERT_TRUE(record_harvest(*conn_, block).ok());
  EXPECT_EQ(redis_->cli({"GET", keys::harvest_block("192.0.2.3")}), "42");
  EXPECT_EQ(redis_->cli({"EXISTS", keys::harvest("192.0.2.3", 0)}), "0");
  before = conn_->round_trips();
  ASSERT_TRUE(record_harvest(*conn_, HarvestWrite{"192.0.2.4", 1, 0, 1000, 0, 0}).ok());
  EXPECT_EQ(conn_->round_trips(), before);
  // Folded into the lookup: still one round trip.
  ASSERT_TRUE(create_domain(*conn_, make("example.com")).ok());
  GroupFacts facts;
  std::optional<HarvestCounts> folded;
  before = conn_->round_trips();
  ASSERT_TRUE(fetch_group(*conn_, {{"a", "example.com"}}, &facts, &query, &folded).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  ASSERT_TRUE(folded.has_value());
  EXPECT_EQ(folded->unknown, 5u);
  EXPECT_EQ(folded->blocked_until_ms, 123456789);
}

TEST_F(DirectoryStore, HarvestFailuresAreStatusValues) {
  // A key of the wrong type: the command fails, a status says so.
  redis_->cli({"SADD", keys::harvest("192.0.2.9", 5), "x"});
  HarvestWrite w{"192.0.2.9", 5, 1, 1000, 0, 0};
  EXPECT_EQ(record_harvest(*conn_, w).code, Code::kUnavailable);
  RedisConfig cfg;
  cfg.port = test::free_tcp_port();
  RedisConn dead(cfg);
  EXPECT_EQ(dead.connect().code, Code::kUnavailable);
  HarvestCounts counts;
  EXPECT_EQ(read_harvest(dead, {"192.0.2.9", 5, 10}, &counts).code, Code::kUnavailable);
  EXPECT_EQ(record_harvest(dead, w).code, Code::kUnavailable);
  GroupFacts facts;
  std::optional<HarvestCounts> folded = HarvestCounts{};
  const HarvestQuery query{"192.0.2.9", 5, 10};
  EXPECT_EQ(fetch_group(dead, {{"a", "example.com"}}, &facts, &query, &folded).code, Code::kUnavailable);
  EXPECT_FALSE(folded.has_value());
}

// The callout single flight (callout_cache.h): claim, progress, release, one
// round trip each, on the lock of the address or of the catch-all probe.
TEST_F(DirectoryStore, ProbeClaimIsOneOwnerAtATime) {
  const int64_t now = unix_ms_now();
  const CacheEntry valid{"valid", now, now + 60000, "127.0.0.1:2526", "250 2.1.5 Ok"};
  const CacheEntry normal{"normal", now, now + 60000, "127.0.0.1:2526", "550 5.1.1 no"};
  const ProbeSubject alice{"example.com", "alice", false};
  uint64_t before = conn_->round_trips();
  ProbeClaim claim;
  ASSERT_TRUE(claim_probe(*conn_, alice, "t1", 10000, &claim).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  EXPECT_TRUE(claim.acquired);
  EXPECT_FALSE(claim.entry.has_value());
  EXPECT_FALSE(claim.catch_all.has_value());
  EXPECT_EQ(redis_->cli({"GET", keys::callout_lock("example.com", "alice")}), "t1");
  const int64_t lock_ttl = std::stoll(redis_->cli({"PTTL", keys::callout_lock("example.com", "alice")}));
  EXPECT_GT(lock_ttl, 5000);
  EXPECT_LE(lock_ttl, 10000);
  // Another replica: no lock, but it sees what is cached.
  ASSERT_TRUE(write_address_result(*conn_, "example.com", "alice", valid, 60000).ok());
  ASSERT_TRUE(write_catch_all_status(*conn_, "example.com", normal, 60000).ok());
  ASSERT_TRUE(claim_probe(*conn_, alice, "t2", 10000, &claim).ok());
  EXPECT_FALSE(claim.acquired);
  ASSERT_TRUE(claim.entry.has_value());
  EXPECT_EQ(claim.entry->result, "valid");
  ASSERT_TRUE(claim.catch_all.has_value());
  EXPECT_EQ(claim.catch_all->result, "normal");
  // Its progress: the answer and the lock still held.
  ProbeProgress progress;
  before = conn_->round_trips();
  ASSERT_TRUE(read_probe_progress(*conn_, alice, &progress).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  ASSERT_TRUE(progress.entry.has_value());
  EXPECT_EQ(progress.entry->backend, "127.0.0.1:2526");
  EXPECT_EQ(progress.catch_all->result, "normal");
  EXPECT_TRUE(progress.claimed);
  // Only the owner releases.
  ASSERT_TRUE(release_probe_claim(*conn_, alice, "t2").ok());
  EXPECT_EQ(redis_->cli({"EXISTS", keys::callout_lock("example.com", "alice")}), "1");
  before = conn_->round_trips();
  ASSERT_TRUE(release_probe_claim(*conn_, alice, "t1").ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::callout_lock("example.com", "alice")}), "0");
  ASSERT_TRUE(read_probe_progress(*conn_, alice, &progress).ok());
  EXPECT_FALSE(progress.claimed);
  // The catch-all probe has its own lock; its entry is the domain's status.
  const ProbeSubject random{"example.com", "", true};
  ASSERT_TRUE(claim_probe(*conn_, random, "t3", 10000, &claim).ok());
  EXPECT_TRUE(claim.acquired);
  EXPECT_EQ(redis_->cli({"GET", keys::callout_domain_lock("example.com")}), "t3");
  ASSERT_TRUE(claim.entry.has_value());
  EXPECT_EQ(claim.entry->result, "normal");
  ASSERT_TRUE(claim_probe(*conn_, alice, "t4", 10000, &claim).ok());
  EXPECT_TRUE(claim.acquired);  // the address's lock is another one
  ASSERT_TRUE(release_probe_claim(*conn_, random, "t3").ok());
  EXPECT_EQ(redis_->cli({"EXISTS", keys::callout_domain_lock("example.com")}), "0");
  EXPECT_EQ(redis_->cli({"EXISTS", keys::callout_lock("example.com", "alice")}), "1");
}

TEST_F(DirectoryStore, CalloutResultsAreReadWrittenAndForgotten) {
  const int64_t now = unix_ms_now();
  const CacheEntry catch_all{"catch-all", now, now + 60000, "127.0.0.1:2526", "250 ok"};
  const CacheEntry unknown{"unknown", now, now + 30000, "127.0.0.1:2526", "550 5.1.1 no such user"};
  std::optional<CacheEntry> got;
  ASSERT_TRUE(read_catch_all_status(*conn_, "example.com", &got).ok());
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(write_catch_all_status(*conn_, "example.com", catch_all, 60000).ok());
  ASSERT_TRUE(read_catch_all_status(*conn_, "example.com", &got).ok());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->result, "catch-all");
  EXPECT_EQ(got->checked_ms, now);
  EXPECT_GT(std::stoll(redis_->cli({"PTTL", keys::callout_domain("example.com")})), 50000);
  // An address's result, with Redis's remaining lifetime, in one round trip.
  ASSERT_TRUE(write_address_result(*conn_, "example.com", "bob", unknown, 30000).ok());
  int64_t pttl = 0;
  uint64_t before = conn_->round_trips();
  ASSERT_TRUE(read_address_result(*conn_, "example.com", "bob", &got, &pttl).ok());
  EXPECT_EQ(conn_->round_trips() - before, 1u);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->result, "unknown");
  EXPECT_EQ(got->reply, "550 5.1.1 no such user");
  EXPECT_GT(pttl, 20000);
  EXPECT_LE(pttl, 30000);
  ASSERT_TRUE(read_address_result(*conn_, "example.com", "nobody", &got, &pttl).ok());
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(pttl, -2);
  redis_->cli({"SET", keys::callout("example.com", "junk"), "not an entry"});
  ASSERT_TRUE(read_address_result(*conn_, "example.com", "junk", &got, &pttl).ok());
  EXPECT_FALSE(got.has_value());  // malformed counts as not cached
  EXPECT_EQ(pttl, -1);
  bool removed = false;
  ASSERT_TRUE(forget_address_result(*conn_, "example.com", "bob", &removed).ok());
  EXPECT_TRUE(removed);
  ASSERT_TRUE(forget_address_result(*conn_, "example.com", "bob", &removed).ok());
  EXPECT_FALSE(removed);
  EXPECT_EQ(redis_->cli({"EXISTS", keys::callout("example.com", "bob")}), "0");
  // Redis away: status values, no verdicts.
  RedisConfig cfg;
  cfg.port = test::free_tcp_port();
  RedisConn dead(cfg);
  EXPECT_EQ(dead.connect().code, Code::kUnavailable);
  ProbeClaim claim;
  EXPECT_EQ(claim_probe(dead, {"example.com", "bob", false}, "t", 1000, &claim).code, Code::kUnavailable);
  ProbeProgress progress;
  EXPECT_EQ(read_probe_progress(dead, {"example.com", "bob", false}, &progress).code, Code::kUnavailable);
  EXPECT_EQ(release_probe_claim(dead, {"example.com", "bob", false}, "t").code, Code::kUnavailable);
  EXPECT_EQ(read_address_result(dead, "example.com", "bob", &got, &pttl).code, Code::kUnavailable);
  EXPECT_EQ(forget_address_result(dead, "example.com", "bob", &removed).code, Code::kUnavailable);
}

TEST_F(DirectoryStore, ReplaceKeyAndMarkerName) {
  EXPECT_EQ(replace_key("example.com", "n1"), keys::tmp_replace("example.com", "n1"));
  EXPECT_NE(replace_key("example.com", "n1"), replace_key("example.com", "n2"));
  EXPECT_EQ(marker_name(), keys::configured());
}

// The LDAP sync's store functions (sync_state.h): one lease holder, the
// diff applied whole or not at all, the wait for a first sync.
void make_example(RedisConn& conn) {
  v1::Domain d;
  d.set_name("example.com");
  d.set_mode(v1::DOMAIN_MODE_LIST);
  d.add_routes("127.0.0.1:25");
  ASSERT_TRUE(create_domain(conn, d).ok());
}

TEST_F(DirectoryStore, SyncLeaseHasOneHolderAndOnlyItsOwnerRenewsOrReleasesIt) {
  bool got = false, held = false;
  ASSERT_TRUE(acquire_sync_lease(*conn_, "a 1", std::chrono::milliseconds(5000), &got).ok());
  EXPECT_TRUE(got);
  ASSERT_TRUE(acquire_sync_lease(*conn_, "b 2", std::chrono::milliseconds(5000), &got).ok());
  EXPECT_FALSE(got);
  ASSERT_TRUE(renew_sync_lease(*conn_, "b 2", std::chrono::milliseconds(5000), &held).ok());
  EXPECT_FALSE(held);
  ASSERT_TRUE(release_sync_lease(*conn_, "b 2").ok());  // not b's: stays
  SyncState st;
  ASSERT_TRUE(read_sync_state(*conn_, &st).ok());
  EXPECT_EQ(st.lease_holder, "a");
  ASSERT_TRUE(renew_sync_lease(*conn_, "a 1", std::chrono::milliseconds(5000), &held).ok());
  EXPECT_TRUE(held);
  ASSERT_TRUE(release_sync_lease(*conn_, "a 1").ok());
  ASSERT_TRUE(acquire_sync_lease(*conn_, "b 2", std::chrono::milliseconds(5000), &got).ok());
  EXPECT_TRUE(got);
}

TEST_F(DirectoryStore, SyncDiffIsAppliedWholeAndNotAtAllWithoutTheLease) {
  make_example(*conn_);
  bool got = false, applied = false;
  ASSERT_TRUE(acquire_sync_lease(*conn_, "a 1", std::chrono::milliseconds(5000), &got).ok());
  std::vector<std::string> add;
  for (int i = 0; i < 2500; ++i) add.push_back("u" + std::to_string(i));  // three SADD chunks
  ASSERT_TRUE(apply_list_diff(*conn_, "example.com", add, {}, "a 1", false, &applied).ok());
  EXPECT_TRUE(applied);
  EXPECT_EQ(redis_->cli({"SCARD", "doorman:v1:addresses:example.com"}), "2500");
  // Another holder now: nothing is written.
  redis_->cli({"SET", "doorman:v1:sync-lease", "b 2"});
  ASSERT_TRUE(apply_list_diff(*conn_, "example.com", {"new"}, {"u1", "u2"}, "a 1", false, &applied).ok());
  EXPECT_FALSE(applied);
  EXPECT_EQ(redis_->cli({"SCARD", "doorman:v1:addresses:example.com"}), "2500");
  ASSERT_TRUE(apply_list_diff(*conn_, "example.com", {"new"}, {"u1", "u2"}, "b 2", false, &applied).ok());
  EXPECT_TRUE(applied);
  v1::Domain cfg;
  std::unordered_set<std::string> members;
  ASSERT_TRUE(read_list(*conn_, "example.com", &cfg, &members).ok());
  EXPECT_EQ(members.size(), 2499u);
  EXPECT_TRUE(members.count("new"));
  EXPECT_FALSE(members.count("u1"));
}

TEST_F(DirectoryStore, SyncANewSourceMakesAnEmptyListWaitForItsFirstSync) {
  make_example(*conn_);
  v1::LdapSource s;
  s.set_name("corp");
  s.set_url("ldap://127.0.0.1:1");
  s.set_base_dn("dc=example,dc=com");
  s.add_domains("example.com");
  ASSERT_EQ(sync::validate_source(&s), "");
  bool changed = false;
  ASSERT_TRUE(put_sync_source(*conn_, s, &changed).ok());
  EXPECT_TRUE(changed);
  v1::Domain d;
  ASSERT_TRUE(get_domain(*conn_, "example.com", &d).ok());
  EXPECT_TRUE(d.ldap_sync_pending());
  ASSERT_TRUE(put_sync_source(*conn_, s, &changed).ok());
  EXPECT_FALSE(changed);
  bool got = false, applied = false;
  ASSERT_TRUE(acquire_sync_lease(*conn_, "a 1", std::chrono::milliseconds(5000), &got).ok());
  ASSERT_TRUE(apply_list_diff(*conn_, "example.com", {"alice"}, {}, "a 1", true, &applied).ok());
  ASSERT_TRUE(get_domain(*conn_, "example.com", &d).ok());
  EXPECT_FALSE(d.ldap_sync_pending());
  SyncState st;
  ASSERT_TRUE(read_sync_state(*conn_, &st).ok());
  ASSERT_EQ(st.sources.size(), 1u);
  EXPECT_EQ(st.sources[0].SerializeAsString(), s.SerializeAsString());
}

}  // namespace
}  // namespace doorman::directory::store
