// Adds the growth of this replica's own counters (directory/metrics.h:
// recipients by decision, harvest actions, callout probes) to the per-minute
// figures in Redis (store/stats.h) every `interval`, so the console's
// overview and `doormanctl stats` show the whole deployment's last hour.
// Runs on its own thread and writes through the Redis pool (one job per
// interval), never on the recipient path. A write that fails (Redis away)
// is kept and added to the next one; stop() writes what is left. The job
// itself advances the baseline once Redis has the growth, and no second job
// starts while one is queued or running, so a slow pool delays the figures
// but never counts them twice.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "directory/store/pool.h"
#include "directory/store/stats.h"

namespace doorman::directory::service {

// This replica's counters now, as stats fields.
store::StatCounts counter_snapshot();

class StatsRecorder {
 public:
  // `stop_wait`: how long stop() waits for a queued write and the last one.
  StatsRecorder(store::RedisPool& pool, std::chrono::milliseconds interval,
                std::chrono::milliseconds stop_wait = std::chrono::seconds(10))
      : pool_(pool), interval_(interval), stop_wait_(stop_wait) {}
  ~StatsRecorder() { stop(); }
  void start();
  void stop();

 private:
  void loop();
  // Hands this interval's growth to the pool unless a write is still pending;
  // returns whether a job was queued.
  bool flush();
  // Waits until no write is pending (or `max` passed).
  void wait_written(std::chrono::milliseconds max);

  // What the pool jobs share with the recorder (they may outlive a stop()
  // that gave up waiting).
  struct Written {
    std::mutex mu;
    std::condition_variable cv;
    store::StatCounts counts;  // what Redis has from this replica
    bool pending = false;      // a job is queued or running
  };

  store::RedisPool& pool_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds stop_wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::shared_ptr<Written> written_ = std::make_shared<Written>();
};

}  // namespace doorman::directory::service
