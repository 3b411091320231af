// RedisPool::run_or_submit (directory/store/pool.h) against a real
// redis-server: a job runs on the calling thread while the inline connection
// is free and Redis is up; otherwise it goes to a worker, as submit() does.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "directory/metrics.h"
#include "directory/store/pool.h"
#include "tests/support/redis_server.h"

namespace doorman::directory::store {
namespace {

using namespace std::chrono_literals;

class RedisPoolInline : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = 500ms;
    ps.connections = 2;
    ps.backoff_min = 50ms;
    ps.backoff_max = 100ms;
    ps.idle_ping = 200ms;
    pool_ = std::make_unique<RedisPool>(ps);
    pool_->start();
    ASSERT_TRUE(wait_connected(2));
  }
  bool wait_connected(int n) {
    for (int i = 0; i < 200; ++i) {
      if (pool_->connected_count() >= n) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }
  // Runs a PING through run_or_submit and waits for it: on which thread it
  // ran, and whether Redis answered.
  struct Ran {
    std::thread::id thread;
    bool pong = false;
  };
  std::optional<Ran> ping() {
    auto done = std::make_shared<std::promise<Ran>>();
    auto result = done->get_future();
    if (!pool_->run_or_submit([done](RedisConn& conn) {
          Reply r;
          Ran ran{std::this_thread::get_id(), conn.command({"PING"}, &r).ok() && r.str == "PONG"};
          done->set_value(ran);
        }))
      return std::nullopt;
    if (result.wait_for(5s) != std::future_status::ready) return std::nullopt;
    return result.get();
  }

  test::RedisServer redis_;
  std::unique_ptr<RedisPool> pool_;
};

TEST_F(RedisPoolInline, RunsOnTheCallingThreadWhenRedisIsUp) {
  const uint64_t before = pool_->inline_jobs();
  const uint64_t counted = directory_metrics().redis_inline_jobs().value();
  auto ran = ping();
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->thread, std::this_thread::get_id());
  EXPECT_TRUE(ran->pong);
  EXPECT_EQ(pool_->inline_jobs(), before + 1);
  EXPECT_EQ(directory_metrics().redis_inline_jobs().value(), counted + 1);
  // Idle past idle_ping: PINGed first, still inline.
  std::this_thread::sleep_for(300ms);
  ran = ping();
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->thread, std::this_thread::get_id());
  EXPECT_TRUE(ran->pong);
}

TEST_F(RedisPoolInline, AJobArrivingWhileOneRunsInlineGoesToAWorker) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<std::thread::id> first_started;
  auto first_thread = first_started.get_future();
  std::thread holder([&] {
    pool_->run_or_submit([&](RedisConn&) {
      first_started.set_value(std::this_thread::get_id());
      released.wait();
    });
  });
  ASSERT_EQ(first_thread.wait_for(5s), std::future_status::ready);
  const std::thread::id inline_thread = first_thread.get();
  EXPECT_EQ(inline_thread, holder.get_id());
  // The inline connection is busy: this one is answered by a worker, at once.
  auto ran = ping();
  ASSERT_TRUE(ran);
  EXPECT_NE(ran->thread, std::this_thread::get_id());
  EXPECT_NE(ran->thread, inline_thread);
  EXPECT_TRUE(ran->pong);
  release.set_value();
  holder.join();
}

TEST_F(RedisPoolInline, RedisDownGoesToTheWorkersThenInlineAgainAfterItIsBack) {
  ASSERT_TRUE(ping());  // the inline connection is made
  redis_.kill();
  // The workers notice (a failed round trip or their idle PING); until then
  // a job may still run inline and fail: never a PONG from nowhere.
  bool to_workers = false;
  for (int i = 0; i < 100 && !to_workers; ++i) {
    auto ran = ping();
    ASSERT_TRUE(ran);
    EXPECT_FALSE(ran->pong);
    to_workers = ran->thread != std::this_thread::get_id();
    if (!to_workers) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(to_workers) << "with Redis down, jobs still ran inline";
  ASSERT_TRUE(redis_.start()) << redis_.error();
  ASSERT_TRUE(wait_connected(1));
  bool back_inline = false;
  for (int i = 0; i < 100 && !back_inline; ++i) {
    auto ran = ping();
    ASSERT_TRUE(ran);
    back_inline = ran->thread == std::this_thread::get_id() && ran->pong;
    if (!back_inline) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back_inline) << "the inline connection was not made again";
}

TEST_F(RedisPoolInline, AJobThatAsksAgainFromInsideAnInlineJobIsQueued) {
  std::promise<std::thread::id> inner;
  auto inner_thread = inner.get_future();
  std::thread::id outer_thread;
  ASSERT_TRUE(pool_->run_or_submit([&](RedisConn&) {
    outer_thread = std::this_thread::get_id();
    EXPECT_TRUE(pool_->run_or_submit([&](RedisConn&) { inner.set_value(std::this_thread::get_id()); }));
  }));
  EXPECT_EQ(outer_thread, std::this_thread::get_id());
  ASSERT_EQ(inner_thread.wait_for(5s), std::future_status::ready);
  EXPECT_NE(inner_thread.get(), std::this_thread::get_id());
}

TEST_F(RedisPoolInline, NothingRunsAfterStop) {
  pool_->stop();
  std::atomic<bool> ran{false};
  EXPECT_FALSE(pool_->run_or_submit([&](RedisConn&) { ran = true; }));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace doorman::directory::store
