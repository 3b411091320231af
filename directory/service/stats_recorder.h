// Adds the growth of this replica's own counters (directory/metrics.h:
// recipients by decision, harvest actions, callout probes) to the per-minute
// figures in Redis (store/stats.h) every `interval`, so the console's
// overview and `doormanctl stats` show the whole deployment's last hour.
// Runs on its own thread and writes through the Redis pool (one job per
// interval), never on the recipient path. A write that fails (Redis away)
// is kept and added to the next one; stop() writes what is left.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "directory/store/pool.h"
#include "directory/store/stats.h"

namespace doorman::directory::service {

// This replica's counters now, as stats fields.
store::StatCounts counter_snapshot();

class StatsRecorder {
 public:
  StatsRecorder(store::RedisPool& pool, std::chrono::milliseconds interval) : pool_(pool), interval_(interval) {}
  ~StatsRecorder() { stop(); }
  void start();
  void stop();

 private:
  void loop();
  void flush();

  store::RedisPool& pool_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  store::StatCounts written_;  // the snapshot already handed to Redis (or to a job that will)
};

}  // namespace doorman::directory::service
