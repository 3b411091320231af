#include "directory/harvest/harvest.h"

#include <algorithm>

#include "common/ip_prefix.h"
#include "common/log.h"
#include "directory/metrics.h"

namespace doorman::directory::harvest {

namespace v1 = doorman::v1;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_unknown(const v1::Verdict& v) {
  // Shadow mode (checks/shadow.cc): the refusal enforcement would have sent
  // counts as in enforce mode.
  if (v.has_would_reject())
    return v.would_reject().code() == 550 && v.would_reject().enhanced_code() == "5.1.1";
  return v.decision() == v1::DECISION_REJECT && v.code() == 550 && v.enhanced_code() == "5.1.1" &&
         (v.source() == v1::SOURCE_LIST || v.source() == v1::SOURCE_CACHE || v.source() == v1::SOURCE_PROBE);
}

v1::Verdict defer_verdict(const std::string& rcpt) {
  v1::Verdict v;
  v.set_decision(v1::DECISION_DEFER);
  v.set_code(450);
  v.set_enhanced_code("4.7.1");
  v.set_text("<" + rcpt + ">: Too many unknown recipients, try again later");
  v.set_reason("harvest: client past the defer threshold");
  v.set_source(v1::SOURCE_LIMIT);
  v.set_reason_code(v1::REASON_HARVEST_BLOCK);
  return v;
}

Harvest::Harvest(Settings settings)
    : settings_(settings), bucket_ms_(std::max<int64_t>(1, settings.window.count() / kBuckets)) {}

std::string Harvest::usable_ip(std::string_view ip) const {
  if (!settings_.enabled) return "";
  return client_identity(ip, settings_.ipv6_prefix);
}

CallOutcome Harvest::apply_to_call(const State& before, const std::vector<std::string>& rcpts,
                                   std::vector<v1::Verdict>* verdicts) const {
  CallOutcome out;
  const auto delay = static_cast<uint32_t>(settings_.tarpit_delay.count());
  // Thresholds reached before the call hold from its first recipient on.
  bool tarpit = tarpitted(before, 0);
  bool defer = crosses_defer(before, 0);
  for (size_t i = 0; i < verdicts->size(); ++i) {
    v1::Verdict& v = (*verdicts)[i];
    if (defer) {
      v = defer_verdict(i < rcpts.size() ? rcpts[i] : "");
      ++out.deferred;
      continue;
    }
    if (is_unknown(v)) ++out.unknown;
    if (!tarpit && tarpitted(before, out.unknown)) tarpit = true;
    if (tarpit) {
      v.set_delay_ms(delay);
      ++out.tarpitted;
    }
    if (crosses_defer(before, out.unknown)) defer = true;
  }
  return out;
}

store::HarvestQuery Harvest::query(const std::string& ip, int64_t now) const {
  return {ip, now / bucket_ms_, kBuckets};
}

State Harvest::parse(const std::string& ip, const store::HarvestCounts* counts, int64_t now) {
  if (!counts) return memory_state(ip, now);
  directory_metrics().harvest_fallback().set(0);
  State s;
  if (counts->blocked_until_ms > now) s.blocked_ms = counts->blocked_until_ms - now;
  s.unknown = counts->unknown;
  return s;
}

State Harvest::memory_state(const std::string& ip, int64_t now) {
  directory_metrics().harvest_fallback().set(1);
  State s;
  s.from_memory = true;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = memory_.find(ip);
  if (it == memory_.end()) return s;
  const int64_t b = now / bucket_ms_;
  for (int i = 0; i < kBuckets; ++i) {
    int64_t id = it->second.bucket_ids[i];
    if (id > b - kBuckets && id <= b) s.unknown += static_cast<uint64_t>(it->second.buckets[i]);
  }
  if (it->second.blocked_until_ms > now) s.blocked_ms = it->second.blocked_until_ms - now;
  return s;
}

store::HarvestWrite Harvest::write_of(const std::string& ip, uint64_t unknown, bool block, int64_t now) const {
  store::HarvestWrite w;
  w.ip = ip;
  w.bucket = now / bucket_ms_;
  w.unknown = unknown;
  // A sub-window lives as long as the window can still reach it.
  w.bucket_ttl_ms = settings_.window.count() + bucket_ms_;
  if (block) {
    w.block_until_ms = now + settings_.cooldown.count();
    w.block_ttl_ms = settings_.cooldown.count();
  }
  return w;
}

void Harvest::record_memory(const std::string& ip, uint64_t unknown, bool block, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = memory_.find(ip);
  if (it == memory_.end()) {
    if (settings_.memory_ips == 0) return;
    while (memory_.size() >= settings_.memory_ips && !lru_.empty()) {
      memory_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(ip);
    it = memory_.emplace(ip, Entry{}).first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  const int64_t b = now / bucket_ms_;
  const int slot = static_cast<int>(((b % kBuckets) + kBuckets) % kBuckets);
  if (e.bucket_ids[slot] != b) {
    e.bucket_ids[slot] = b;
    e.buckets[slot] = 0;
  }
  e.buckets[slot] += static_cast<int64_t>(unknown);
  if (block) e.blocked_until_ms = now + settings_.cooldown.count();
}

bool Harvest::record_on(store::RedisConn* conn, const std::string& ip, const State& before, uint64_t unknown,
                        int64_t now) {
  const bool block = !deferred(before) && crosses_defer(before, unknown);
  if (unknown == 0 && !block) return true;
  if (conn && conn->connected() && store::record_harvest(*conn, write_of(ip, unknown, block, now)).ok()) return true;
  record_memory(ip, unknown, block, now);
  return false;
}

void Harvest::record(store::RedisPool& pool, const std::string& ip, const State& before, uint64_t unknown,
                     int64_t now) {
  if (unknown == 0 && !(crosses_defer(before, unknown) && !deferred(before))) return;
  if (crosses_defer(before, unknown) && !deferred(before))
    log::warn("harvest_defer").kv("client", ip).kv("unknown", before.unknown + unknown)
        .kv("cooldown_ms", settings_.cooldown.count());
  bool queued = pool.submit([self = shared_from_this(), ip, before, unknown, now](store::RedisConn& conn) {
    self->record_on(&conn, ip, before, unknown, now);
  });
  if (!queued) record_memory(ip, unknown, !deferred(before) && crosses_defer(before, unknown), now);
}

std::string Harvest::describe(const std::string& ip, const State& s) const {
  std::string out = "harvest: client " + ip + ": " + std::to_string(s.unknown) + " unknown recipient(s) in the last " +
                    std::to_string(settings_.window.count() / 1000) + " s (tarpit at " +
                    std::to_string(settings_.tarpit_threshold) + ", defer at " +
                    std::to_string(settings_.defer_threshold) + ")";
  if (s.blocked_ms > 0) out += "; deferred (450 4.7.1) for " + std::to_string((s.blocked_ms + 999) / 1000) + " s more";
  else if (tarpitted(s, 0)) out += "; rejections tarpitted by " + std::to_string(settings_.tarpit_delay.count()) + " ms";
  if (s.from_memory) out += " [Redis unavailable: this replica's count]";
  return out;
}

}  // namespace doorman::directory::harvest
