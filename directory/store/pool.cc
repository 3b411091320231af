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
  std::lock_guard<std::mutex> inline_lock(inline_mu_);
  if (!inline_conn_) inline_conn_ = std::make_unique<RedisConn>(settings_.redis);
  inline_open_ = true;
}

void RedisPool::stop() {
  {
    // Waits for a job running inline.
    std::lock_guard<std::mutex> inline_lock(inline_mu_);
    inline_open_ = false;
    if (inline_conn_) inline_conn_->disconnect();
  }
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

bool RedisPool::inline_ready_locked() {
  using Clock = std::chrono::steady_clock;
  if (!inline_open_) return false;
  // The workers have no connection: Redis is down (or not there yet); their
  // jobs fail fast, and so does this one through them.
  if (connected_.load() == 0) return false;
  const auto now = Clock::now();
  if (inline_conn_->connected() && inline_conn_->stale()) inline_conn_->disconnect();
  if (!inline_conn_->connected()) {
    if (now < inline_next_connect_) return false;
    inline_next_connect_ = now + settings_.idle_ping;
    if (!inline_conn_->connect().ok()) return false;
  } else if (now - inline_last_use_ >= settings_.idle_ping) {
    // Idle for a while: it must still answer before a job relies on it.
    Reply pong;
    if (!inline_conn_->command({"PING"}, &pong).ok()) {
      inline_conn_->disconnect();
      return false;
    }
  }
  return true;
}

namespace {
// Set while this thread runs a job inline: a job that calls run_or_submit
// again queues (try_lock on a mutex the thread holds is undefined).
thread_local bool running_inline = false;
}  // namespace

bool RedisPool::run_or_submit(Job job) {
  if (!running_inline) {
    std::unique_lock<std::mutex> lock(inline_mu_, std::try_to_lock);
    if (lock.owns_lock() && inline_ready_locked()) {
      running_inline = true;
      job(*inline_conn_);
      running_inline = false;
      inline_last_use_ = std::chrono::steady_clock::now();
      inline_jobs_.fetch_add(1, std::memory_order_relaxed);
      directory_metrics().redis_inline_jobs().inc();
      return true;
    }
  }
  return submit(std::move(job));
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
