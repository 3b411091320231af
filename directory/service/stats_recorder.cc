#include "directory/service/stats_recorder.h"

#include <future>

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
  flush();  // the last interval's growth
}

void StatsRecorder::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    flush();
    lock.lock();
  }
}

void StatsRecorder::flush() {
  const store::StatCounts now = counter_snapshot();
  store::StatCounts growth;
  bool any = false;
  for (const auto& [field, n] : now) {
    const uint64_t before = written_[field];
    growth[field] = n >= before ? n - before : 0;
    any = any || growth[field] > 0;
  }
  if (!any) return;
  const int64_t minute =
      std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto done = std::make_shared<std::promise<bool>>();
  auto result = done->get_future();
  bool queued = pool_.submit([growth, minute, done](store::RedisConn& conn) {
    Status s = store::record_stats(conn, minute, growth);
    if (!s.ok()) log::warn("stats_not_recorded").kv("error", s.message);
    done->set_value(s.ok());
  });
  // Counted as written only once Redis has it; else the next flush adds it again.
  if (!queued || result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return;
  try {
    if (result.get()) written_ = now;
  } catch (const std::future_error&) {
    // The pool dropped the job unrun (stopping): the next flush, if any, adds it again.
  }
}

}  // namespace doorman::directory::service
