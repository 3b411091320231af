// service/stats_recorder: this replica's counter growth reaches Redis exactly
// once, also when the pool is slow (a write still queued when the next
// interval comes) and across stop().
#include "directory/service/stats_recorder.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "directory/metrics.h"
#include "directory/store/stats.h"
#include "tests/support/redis_server.h"

namespace doorman::directory::service {
namespace {

class StatsRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    store::RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = std::chrono::milliseconds(2000);
    ps.connections = 1;  // one worker: a blocked job holds back the recorder's
    pool_ = std::make_unique<store::RedisPool>(ps);
    pool_->start();
  }

  // Accepted recipients Redis holds for the last two minutes (a minute may turn during the test).
  uint64_t recorded_accepted() {
    store::RedisConfig config;
    config.port = redis_.port();
    store::RedisConn conn(config);
    if (!conn.connect().ok()) return 0;
    const int64_t minute =
        std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
    store::StatCounts counts;
    if (!store::read_stats(conn, minute + 1, 3, &counts).ok()) return 0;
    return counts["accepted"];
  }

  test::RedisServer redis_;
  std::unique_ptr<store::RedisPool> pool_;
};

TEST_F(StatsRecorderTest, AWriteStillQueuedAtTheNextIntervalIsNotCountedTwice) {
  // Hold the only Redis worker until released: the recorder's writes queue behind it.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  ASSERT_TRUE(pool_->submit([released, &holding](store::RedisConn&) {
    holding.set_value();
    released.wait();
  }));
  holding.get_future().wait();

  directory_metrics().recipients(Decision::kAccept, Source::kList).inc(7);
  const uint64_t expected = counter_snapshot()["accepted"];
  ASSERT_GE(expected, 7u);

  StatsRecorder recorder(*pool_, std::chrono::milliseconds(20));
  recorder.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // about 15 intervals while Redis is "slow"
  release.set_value();

  for (int i = 0; i < 200 && recorded_accepted() < expected; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(recorded_accepted(), expected);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // more intervals: nothing new to add
  EXPECT_EQ(recorded_accepted(), expected);

  // Growth after the last interval is written by stop(), once.
  directory_metrics().recipients(Decision::kAccept, Source::kCache).inc(3);
  recorder.stop();
  EXPECT_EQ(recorded_accepted(), expected + 3);
}

TEST_F(StatsRecorderTest, AFailedWriteIsAddedToTheNextOne) {
  directory_metrics().recipients(Decision::kAccept, Source::kList).inc(2);
  const uint64_t expected = counter_snapshot()["accepted"];
  redis_.stop();
  StatsRecorder recorder(*pool_, std::chrono::milliseconds(20), std::chrono::milliseconds(500));
  recorder.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // writes fail or wait for a connection
  ASSERT_TRUE(redis_.restart()) << redis_.error();              // empty again: only the recorder writes
  for (int i = 0; i < 300 && recorded_accepted() < expected; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  recorder.stop();
  EXPECT_EQ(recorded_accepted(), expected);
}

}  // namespace
}  // namespace doorman::directory::service
