// Redis Sentinel support of the store (store/sentinel.h) and the replica
// acknowledgement of admin writes (store.h confirm_replicated).
//
// The parsers are tested on plain Reply values (no sockets). The rest runs
// against real processes on loopback: a redis-server primary, a replica and
// one redis-sentinel (quorum 1), each stopped by PID.
#include <gtest/gtest.h>

#include <signal.h>

#include <thread>

#include "directory/metrics.h"
#include "directory/store/pool.h"
#include "directory/store/sentinel.h"
#include "directory/store/store.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::directory::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::eventually;

Reply str(const std::string& s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = s;
  return r;
}

Reply arr(std::vector<Reply> e) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

Reply integer(int64_t v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}

TEST(SentinelParse, Endpoints) {
  std::vector<Endpoint> e;
  EXPECT_EQ(parse_endpoints("10.0.0.1:26379, sentinel-1.example:26380,[::1]:26381", &e), "");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].host, "10.0.0.1");
  EXPECT_EQ(e[0].port, 26379);
  EXPECT_EQ(e[1].host, "sentinel-1.example");
  EXPECT_EQ(e[2].host, "::1");
  EXPECT_EQ(e[2].str(), "[::1]:26381");
  for (const char* bad : {"", "host", "host:", ":26379", "host:0", "host:65536", "host:12x", "a:1,,b:2", "::1:26379",
                          "[::1]26379", "[::1", "a b:1"})
    EXPECT_NE(parse_endpoints(bad, &e), "") << bad;
}

TEST(SentinelParse, MasterAddr) {
  Endpoint e;
  EXPECT_TRUE(parse_master_addr(arr({str("10.1.2.3"), str("6379")}), &e));
  EXPECT_EQ(e.str(), "10.1.2.3:6379");
  EXPECT_FALSE(parse_master_addr(Reply{}, &e));  // nil: unknown master name
  EXPECT_FALSE(parse_master_addr(arr({str("10.1.2.3")}), &e));
  EXPECT_FALSE(parse_master_addr(arr({str("10.1.2.3"), str("x")}), &e));
  EXPECT_FALSE(parse_master_addr(arr({str(""), str("6379")}), &e));
}

TEST(SentinelParse, SwitchMaster) {
  Endpoint e;
  Reply m = arr({str("message"), str("+switch-master"), str("doorman 127.0.0.1 6379 127.0.0.1 6380")});
  ASSERT_TRUE(parse_switch_master(m, "doorman", &e));
  EXPECT_EQ(e.str(), "127.0.0.1:6380");
  EXPECT_FALSE(parse_switch_master(m, "other", &e));
  EXPECT_FALSE(parse_switch_master(arr({str("subscribe"), str("+switch-master"), integer(1)}), "doorman", &e));
  EXPECT_FALSE(parse_switch_master(arr({str("message"), str("+switch-master"), str("doorman 1 2 3")}), "doorman", &e));
  EXPECT_FALSE(
      parse_switch_master(arr({str("message"), str("+switch-master"), str("doorman a 1 b port")}), "doorman", &e));
}

TEST(SentinelParse, Role) {
  RoleInfo r;
  ASSERT_TRUE(parse_role(arr({str("master"), integer(42), arr({arr({str("127.0.0.1"), str("6380"), str("42")})})}), &r));
  EXPECT_EQ(r.role, "master");
  EXPECT_EQ(r.replicas, 1);
  ASSERT_TRUE(parse_role(arr({str("master"), integer(0), arr({})}), &r));
  EXPECT_EQ(r.replicas, 0);
  ASSERT_TRUE(parse_role(arr({str("slave"), str("127.0.0.1"), integer(6379), str("connected"), integer(1)}), &r));
  EXPECT_EQ(r.role, "slave");
  EXPECT_FALSE(parse_role(str("master"), &r));
  EXPECT_FALSE(parse_role(arr({}), &r));
}

TEST(SentinelOptions, BadSentinelListIsAClearStartUpError) {
  for (const auto& [value, says] : std::vector<std::pair<std::string, std::string>>{
           {"sentinel-0", "option redis-sentinel: 'sentinel-0': expected host:port"},
           {"a:26379,,b:26379", "option redis-sentinel: empty entry"},
           {"a:99999", "option redis-sentinel: 'a:99999': bad port"}}) {
    test::RunResult r = test::run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen=",
                                   "--admin-insecure", "--redis-sentinel", value});
    EXPECT_EQ(r.exit_code, 2) << value;
    EXPECT_NE(r.err.find(says), std::string::npos) << value << ": " << r.err;
  }
  test::RunResult r = test::run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen=",
                                 "--admin-insecure", "--redis-sentinel", "a:1", "--redis-master-name", "two words"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("option redis-master-name"), std::string::npos) << r.err;
  r = test::run({DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:0", "--http-listen=", "--admin-insecure",
                 "--redis-sentinel", "a:1", "--redis-sentinel-password-file", "/nonexistent/sentinel-password"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot read redis-sentinel-password-file"), std::string::npos) << r.err;
}

// A primary, one replica of it and one sentinel (quorum 1).
class SentinelStore : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_.set_args({"--repl-diskless-sync-delay", "0"});
    ASSERT_TRUE(primary_.start()) << primary_.error();
    replica_.set_args({"--replicaof", "127.0.0.1", std::to_string(primary_.port()), "--repl-diskless-sync-delay", "0"});
    ASSERT_TRUE(replica_.start()) << replica_.error();
    ASSERT_TRUE(eventually([&] { return replica_.cli({"INFO", "replication"}).find("master_link_status:up") !=
                                        std::string::npos; }))
        << replica_.cli({"INFO", "replication"});
    // Online (after its first sync) and acknowledging: a replica's first ACK comes up to a second later, and
    // until then WAIT cannot count it.
    ASSERT_TRUE(eventually([&] {
      std::string info = primary_.cli({"INFO", "replication"});
      return info.find("state=online") != std::string::npos && info.find("offset=0,") == std::string::npos;
    }));
    test::SentinelSettings s;
    s.primary_port = primary_.port();
    s.quorum = 1;
    ASSERT_TRUE(sentinel_.start(s)) << sentinel_.error();
  }

  std::shared_ptr<PrimaryLocator> locator() {
    SentinelConfig sc;
    sc.sentinels = {{"127.0.0.1", free_port_ = test::free_tcp_port()}, {"127.0.0.1", sentinel_.port()}};
    sc.master_name = "doorman";
    sc.timeout = milliseconds(300);
    sc.poll = milliseconds(200);
    return std::make_shared<PrimaryLocator>(sc);
  }

  test::RedisServer primary_;
  test::RedisServer replica_;
  test::RedisSentinel sentinel_;
  int free_port_ = 0;
};

TEST_F(SentinelStore, LocatorAsksPastADeadSentinelAndConnectsToThePrimary) {
  auto loc = locator();
  Endpoint e;
  ASSERT_TRUE(loc->refresh(&e).ok());  // the first sentinel listed does not exist
  EXPECT_EQ(e.port, primary_.port());
  RedisConfig rc;
  rc.locator = loc;
  RedisConn conn(rc);
  ASSERT_TRUE(conn.connect().ok());
  EXPECT_EQ(conn.target().port, primary_.port());
  EXPECT_FALSE(conn.stale());
  Reply r;
  ASSERT_TRUE(conn.command({"SET", "k", "v"}, &r).ok());
}

TEST_F(SentinelStore, NoSentinelNamesThePrimary) {
  SentinelConfig sc;
  sc.sentinels = {{"127.0.0.1", sentinel_.port()}};
  sc.master_name = "not-monitored";
  sc.timeout = milliseconds(300);
  auto loc = std::make_shared<PrimaryLocator>(sc);
  RedisConfig rc;
  rc.locator = loc;
  RedisConn conn(rc);
  Status s = conn.connect();
  EXPECT_EQ(s.code, Code::kUnavailable);
  EXPECT_NE(s.message.find("no sentinel names a primary"), std::string::npos) << s.message;
  EXPECT_EQ(directory_metrics().redis_primary_found().value(), 0);
}

TEST_F(SentinelStore, AReplicaIsRefusedAndReadonlyDropsTheConnection) {
  // A locator told the replica is the primary (as after a missed failover):
  // ROLE at connect refuses it.
  auto loc = locator();
  loc->adopt({"127.0.0.1", replica_.port()}, false);
  RedisConfig rc;
  rc.locator = loc;
  rc.timeout = milliseconds(300);
  RedisConn conn(rc);
  Status s = conn.connect();
  EXPECT_EQ(s.code, Code::kUnavailable);
  EXPECT_NE(s.message.find("is no primary"), std::string::npos) << s.message;
  // ... and asked the sentinels again: the next attempt goes to the primary.
  EXPECT_EQ(loc->current()->port, primary_.port());
  ASSERT_TRUE(conn.connect().ok());

  // A plain connection to a node that is demoted under it: the write gets
  // READONLY, the round trip fails as kUnavailable and the connection is
  // dropped instead of being used again.
  RedisConfig plain;
  plain.port = replica_.port();
  RedisConn direct(plain);
  ASSERT_TRUE(direct.connect().ok());
  std::vector<Reply> out;
  s = direct.pipeline({{"SET", "k", "v"}}, &out);
  EXPECT_EQ(s.code, Code::kUnavailable);
  EXPECT_NE(s.message.find("READONLY"), std::string::npos) << s.message;
  EXPECT_FALSE(direct.connected());
}

TEST_F(SentinelStore, PoolFollowsAPrimaryChangeAtOnce) {
  auto loc = locator();
  RedisPool::Settings ps;
  ps.redis.locator = loc;
  ps.redis.timeout = milliseconds(300);
  ps.connections = 2;
  ps.idle_ping = seconds(30);  // only the change may wake the workers
  RedisPool pool(ps);
  pool.start();
  ASSERT_TRUE(eventually([&] { return pool.connected_count() == 2; }));
  const uint64_t reconnects = directory_metrics().redis_reconnects().value();
  // Promote the replica by hand and tell the locator, as a +switch-master would.
  ASSERT_EQ(replica_.cli({"REPLICAOF", "NO", "ONE"}), "OK");
  loc->adopt({"127.0.0.1", replica_.port()}, true);
  ASSERT_TRUE(eventually([&] { return directory_metrics().redis_reconnects().value() >= reconnects + 2; },
                         seconds(3)));
  std::atomic<int> port{0};
  std::atomic<bool> done{false};
  ASSERT_TRUE(pool.submit([&](RedisConn& conn) {
    port = conn.target().port;
    done = true;
  }));
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(port.load(), replica_.port());
  pool.stop();
}

TEST_F(SentinelStore, WatcherFollowsASentinelFailover) {
  auto loc = locator();
  ASSERT_TRUE(loc->refresh().ok());
  const uint64_t failovers = directory_metrics().redis_failovers().value();
  loc->start();
  // Let the watcher subscribe (past the dead first sentinel) before the failover.
  ASSERT_TRUE(eventually([&] { return sentinel_.cli({"CLIENT", "LIST"}).find(" sub=1 ") !=
                                      std::string::npos; }));
  ASSERT_TRUE(eventually([&] { return sentinel_.cli({"SENTINEL", "replicas", "doorman"}).find("slave") !=
                                      std::string::npos; }));
  ASSERT_EQ(sentinel_.cli({"SENTINEL", "FAILOVER", "doorman"}), "OK");
  ASSERT_TRUE(eventually([&] { return loc->current()->port == replica_.port(); }, seconds(20)))
      << sentinel_.read_log();
  EXPECT_TRUE(eventually([&] { return directory_metrics().redis_failovers().value() == failovers + 1; }));
  EXPECT_TRUE(eventually([&] { return directory_metrics().redis_primary_found().value() == 1; }));
  loc->stop();
}

TEST_F(SentinelStore, AdminWritesWaitForTheReplica) {
  RedisConfig rc;
  rc.port = primary_.port();
  rc.timeout = milliseconds(300);
  rc.replica_wait = milliseconds(400);
  RedisConn conn(rc);
  ASSERT_TRUE(conn.connect().ok());
  Reply r;
  ASSERT_TRUE(conn.command({"SET", "k", "1"}, &r).ok());
  Status first = confirm_replicated(conn);
  ASSERT_TRUE(first.ok()) << first.message << "\n" << primary_.cli({"INFO", "replication"});
  EXPECT_EQ(replica_.cli({"GET", "k"}), "1");  // WAIT returned: the replica has it

  // A replica that stopped acknowledging (frozen): the write is not confirmed.
  ASSERT_TRUE(replica_.running());
  ::kill(replica_.pid(), SIGSTOP);
  ASSERT_TRUE(conn.command({"SET", "k", "2"}, &r).ok());
  const auto started = std::chrono::steady_clock::now();
  Status s = confirm_replicated(conn);
  const auto took = std::chrono::steady_clock::now() - started;
  ::kill(replica_.pid(), SIGCONT);
  EXPECT_EQ(s.code, Code::kUnavailable);
  EXPECT_NE(s.message.find("no replica confirmed it within 400 ms"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("retry"), std::string::npos) << s.message;
  EXPECT_GE(took, milliseconds(350));
  EXPECT_TRUE(conn.connected());  // WAIT's wait is longer than the command timeout: no I/O error

  // No replicas at all: nothing to wait for.
  replica_.stop();
  ASSERT_TRUE(eventually([&] { return primary_.cli({"ROLE"}).find("127.0.0.1") == std::string::npos; }));
  ASSERT_TRUE(conn.command({"SET", "k", "3"}, &r).ok());
  EXPECT_TRUE(confirm_replicated(conn).ok());
}

}  // namespace
}  // namespace doorman::directory::store
