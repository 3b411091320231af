#include "directory/service/stats_recorder.h"


#include "common/log.h"
#include "directory/metrics.h"
#include "directory/store/store.h"

namespace doorman::directory::service {

store::StatCounts counter_snapshot() {
  auto& m = directory_metrics();
  store::StatCounts c;
  const std::pair<const char*, Decision> decisions[] = {{"accepted", Decision::kAccept},
                                                        {"rejected", Decision::kReject},
                                                        {"deferred", Decision::kDefer},
                                                        {"would_reject", Decision::kWouldReject}};
  for (const auto& [field, d] : decisions) {
    uint64_t n = 0;
    for (size_t s = 0; s < static_cast<size_t>(Source::kCount); ++s) n += m.recipients(d, static_cast<Source>(s)).value();
    c[field] = n;
  }
  c["harvest_tarpit"] = m.harvest_actions(HarvestAction::kTarpit).value();
  c["harvest_defer"] = m.harvest_actions(HarvestAction::kDefer).value();
  uint64_t probes = 0;
  for (size_t r = 0; r < static_cast<size_t>(ProbeResult::kCount); ++r)
    probes += m.callout_probes(static_cast<ProbeResult>(r)).value();
  c["callout_probes"] = probes;
  return c;
}

void StatsRecorder::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void StatsRecorder::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // The last interval's growth, after any write still pending.
  wait_written(stop_wait_);
  if (flush()) wait_written(stop_wait_);
}

void StatsRecorder::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    flush();
    lock.lock();
  }
}

void StatsRecorder::wait_written(std::chrono::milliseconds max) {
  std::unique_lock<std::mutex> lock(written_->mu);
  written_->cv.wait_for(lock, max, [this] { return !written_->pending; });
}

bool StatsRecorder::flush() {
  const store::StatCounts now = counter_snapshot();
  store::StatCounts growth;
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(written_->mu);
    if (written_->pending) return false;  // the pending job's growth is not in the baseline yet
    for (const auto& [field, n] : now) {
      const uint64_t before = written_->counts[field];
      growth[field] = n >= before ? n - before : 0;
      any = any || growth[field] > 0;
    }
    if (!any) return false;
    written_->pending = true;
  }
  const int64_t minute =
      std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Whatever happens to the job, it must clear `pending` (a job the pool drops
  // unrun is destroyed: the guard's destructor clears it then).
  struct Finish {
    std::shared_ptr<Written> written;
    store::StatCounts growth;
    bool recorded = false;
    ~Finish() {
      std::lock_guard<std::mutex> lock(written->mu);
      // Counted as written only once Redis has it; else the next flush adds it again.
      if (recorded)
        for (const auto& [field, n] : growth) written->counts[field] += n;
      written->pending = false;
      written->cv.notify_all();
    }
  };
  auto finish = std::make_shared<Finish>();
  finish->written = written_;
  finish->growth = growth;
  const int64_t at = minute;
  bool queued = pool_.submit([finish, at](store::RedisConn& conn) {
    Status s = store::record_stats(conn, at, finish->growth);
    if (!s.ok()) log::warn("stats_not_recorded").kv("error", s.message);
    finish->recorded = s.ok();
  });
  // A refused job was destroyed inside submit(): `pending` is clear again once `finish` goes.
  return queued;
}

}  // namespace doorman::directory::service
