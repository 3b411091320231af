#include "directory/store/pool.h"

#include <algorithm>

#include "common/log.h"
#include "directory/metrics.h"

namespace doorman::directory::store {

RedisPool::RedisPool(Settings settings) : settings_(std::move(settings)) {}

RedisPool::~RedisPool() { stop(); }

void RedisPool::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  if (settings_.redis.locator && !wake_registered_) {
    wake_registered_ = true;
    // The lock orders the notice after a worker's predicate check.
    settings_.redis.locator->on_change([this] {
      { std::lock_guard<std::mutex> l(mu_); }
      cv_.notify_all();
    });
  }
  for (int i = 0; i < settings_.connections; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

void RedisPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

bool RedisPool::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || threads_.empty() || queue_.size() >= settings_.max_queue) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void RedisPool::worker_loop(int index) {
  using Clock = std::chrono::steady_clock;
  RedisConn conn(settings_.redis);
  auto backoff = settings_.backoff_min;
  auto next_attempt = Clock::now();
  bool was_connected = false;
  bool ever_connected = false;
  bool logged_down = false;
  uint64_t generation = primary_generation();

  auto try_connect = [&] {
    Status s = conn.connect();
    if (s.ok()) {
      backoff = settings_.backoff_min;
      if (ever_connected) directory_metrics().redis_reconnects().inc();
      ever_connected = true;
      if (logged_down) log::info("redis_reconnected").kv("worker", index).kv("addr", conn.target().str());
      logged_down = false;
      return;
    }
    if (!logged_down) log::warn("redis_unavailable").kv("worker", index).kv("error", s.message);
    logged_down = true;
    next_attempt = Clock::now() + backoff;
    backoff = std::min(backoff * 2, settings_.backoff_max);
  };

  for (;;) {
    if (const uint64_t g = primary_generation(); g != generation) {
      // A new primary: move there now, whatever the back-off said.
      generation = g;
      if (conn.connected() && conn.stale()) conn.disconnect();
      backoff = settings_.backoff_min;
      next_attempt = Clock::now();
    }
    if (!conn.connected() && Clock::now() >= next_attempt) try_connect();
    if (conn.connected() != was_connected) {
      was_connected = conn.connected();
      connected_ += was_connected ? 1 : -1;
    }
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return stopping_ || !queue_.empty() || primary_generation() != generation; };
      if (conn.connected()) {
        // Idle for a while: PING below, so a dead Redis is noticed (and
        // reported by health checking) before a request trips over it.
        if (!cv_.wait_for(lock, settings_.idle_ping, ready)) {
          lock.unlock();
          Reply pong;
          (void)conn.command({"PING"}, &pong);
          continue;
        }
      } else {
        cv_.wait_until(lock, next_attempt, ready);
      }
      if (queue_.empty() || primary_generation() != generation) {
        if (stopping_ && queue_.empty()) break;
        continue;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job(conn);
  }
  if (was_connected) --connected_;
}

}  // namespace doorman::directory::store
