// Tests of the test support itself: processes are reaped, ports work, the
// Redis fixture starts, restarts on the same port, and stops.
#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_certs.h"

namespace doorman::test {

TEST(Process, RunCapturesOutputAndExitCode) {
  RunResult r = run({"sh", "-c", "echo out; echo err >&2; cat; exit 3"}, std::chrono::seconds(5), "in\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\nin\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(Process, StopEscalatesToSigkill) {
  std::string dir = make_temp_dir("doorman-proc");
  Process p;
  ASSERT_TRUE(p.start({"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"}, dir + "/log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(p.running());
  int code = p.stop(std::chrono::milliseconds(200));
  EXPECT_EQ(code, 128 + 9);
  EXPECT_FALSE(p.running());
  remove_tree(dir);
}

TEST(TestPki, ChainsVerifyAndTheRogueClientDoesNot) {
  std::string dir = make_temp_dir("pki");
  TestPki pki = make_test_pki(dir);
  ASSERT_TRUE(pki.ok()) << pki.error;
  EXPECT_EQ(run({"openssl", "verify", "-CAfile", pki.ca_cert, "-purpose", "sslserver", pki.server_cert}).exit_code, 0);
  EXPECT_EQ(run({"openssl", "verify", "-CAfile", pki.ca_cert, "-purpose", "sslclient", pki.client_cert}).exit_code, 0);
  EXPECT_NE(run({"openssl", "verify", "-CAfile", pki.ca_cert, pki.rogue_client_cert}).exit_code, 0);
  EXPECT_NE(run({"openssl", "verify", "-CAfile", pki.ca_cert, "-purpose", "sslserver", pki.client_cert}).exit_code, 0);
  remove_tree(dir);
}

TEST(Ports, FreePortAndWait) {
  int port = free_tcp_port();
  ASSERT_GT(port, 0);
  EXPECT_FALSE(wait_for_port(port, std::chrono::milliseconds(50)));
}

TEST(RedisServerFixture, StartsRestartsOnSamePortAndStops) {
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.error();
  int port = redis.port();
  EXPECT_EQ(redis.cli({"SET", "k", "v"}), "OK");
  redis.stop();
  EXPECT_FALSE(redis.ping());
  ASSERT_TRUE(redis.start()) << redis.error();
  EXPECT_EQ(redis.port(), port);
  EXPECT_TRUE(redis.ping());
}

}  // namespace doorman::test
