// A fixed pool of Redis worker threads, each owning one blocking RedisConn.
//
// submit() queues a job (mutex + condition variable); a free worker runs it
// with its connection. gRPC handlers submit and return at once; the job
// finishes the RPC itself. The one exception is run_or_submit() (below):
// at most one gRPC thread at a time runs a job itself.
//
// Reconnection: a worker whose connection broke reconnects with exponential
// back-off (100 ms doubling to 5 s), also while idle, so a Redis restart is
// recovered without restarting the directory. While a worker is
// disconnected its jobs still run at once and see connected() == false:
// they fail fast with kUnavailable instead of waiting for the back-off.
//
// Sentinel mode (settings.redis.locator, sentinel.h): when the locator's
// primary changes, every worker reconnects before its next job (an idle one
// at once: the locator wakes the pool), without back-off. A lost connection
// or a READONLY reply is retried the same way as with a fixed host.
// Reconnections are counted (doorman_directory_redis_reconnects_total).
//
// Inline (issue #16): run_or_submit() runs a job on the calling thread (a
// gRPC callback thread) with the pool's one inline connection when that
// connection is free and up, instead of waking a worker: on a 2-core machine
// the hand-off (a futex wake and two context switches per call) cost more
// than the Redis round trip. At most one job runs inline at a time (a
// try-lock), so one gRPC thread at most ever waits for Redis, for at most
// the command timeout; every other call goes to the workers as before. The
// inline connection is used only while the workers have a connection (Redis
// is up: otherwise the job goes to a worker and fails fast there), is
// re-made at most once per idle_ping, is PINGed first when it sat idle for
// idle_ping, and follows a Sentinel failover (stale: re-made).
//
// Limits: the queue is bounded (max_queue); submit() returns false when it is
// full or the pool is stopping, and the caller fails the request. stop()
// runs the jobs still queued (so every RPC is finished) and joins.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "directory/store/redis.h"

namespace doorman::directory::store {

class RedisPool {
 public:
  using Job = std::function<void(RedisConn&)>;

  struct Settings {
    RedisConfig redis;
    int connections = 4;
    size_t max_queue = 10000;
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    std::chrono::milliseconds idle_ping{1000};
  };

  explicit RedisPool(Settings settings);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // Starts the workers; each tries to connect at once (failures are retried
  // in the background, they do not fail start()).
  void start();
  void stop();

  bool submit(Job job);
  // Inline when possible (see above), else submit(); true when it ran or
  // was queued.
  bool run_or_submit(Job job);

  // Number of workers whose connection is currently up.
  int connected_count() const { return connected_.load(); }
  // Jobs run_or_submit() ran on the calling thread (for tests).
  uint64_t inline_jobs() const { return inline_jobs_.load(); }

 private:
  void worker_loop(int index);
  uint64_t primary_generation() const {
    return settings_.redis.locator ? settings_.redis.locator->generation() : 0;
  }

  Settings settings_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::atomic<int> connected_{0};
  bool wake_registered_ = false;

  // Under inline_mu_: whether the inline connection may take a job now.
  bool inline_ready_locked();
  std::mutex inline_mu_;  // held while a job runs inline
  std::unique_ptr<RedisConn> inline_conn_;
  std::chrono::steady_clock::time_point inline_last_use_{}, inline_next_connect_{};
  bool inline_open_ = false;  // between start() and stop()
  std::atomic<uint64_t> inline_jobs_{0};
};

}  // namespace doorman::directory::store
