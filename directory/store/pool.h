// A fixed pool of Redis worker threads, each owning one blocking RedisConn.
//
// submit() queues a job (mutex + condition variable); a free worker runs it
// with its connection. gRPC handlers submit and return at once, so no gRPC
// thread ever waits for Redis; the job finishes the RPC itself.
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
// Limits: the queue is bounded (max_queue); submit() returns false when it is
// full or the pool is stopping, and the caller fails the request. stop()
// runs the jobs still queued (so every RPC is finished) and joins.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
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

  // Number of workers whose connection is currently up.
  int connected_count() const { return connected_.load(); }

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
};

}  // namespace doorman::directory::store
