// Harvest defence shared across replicas (issue #7): per client IP, a
// sliding-window count of UNKNOWN recipients (550 5.1.1 from the list, the
// callout cache or a probe) kept in Redis, so every directory replica - and
// so every edge replica - sees the same count.
//
// The window is cut into kBuckets fixed sub-windows; each is one Redis
// counter (store/harvest_counts.h), and the count is the sum of the
// sub-windows that overlap the last `window` (so it slides in steps of
// window/kBuckets). Past `tarpit_threshold` unknown recipients, every
// verdict for that IP - accepts too, so the delay reveals nothing - carries
// Verdict.delay_ms = `tarpit_delay` (the edge waits before sending it).
// Past `defer_threshold`, a block key
// (store/harvest_counts.h, PX = `cooldown`) is set and, while it lives, all of
// that IP's recipients get DEFER 450 4.7.1 (source SOURCE_LIMIT) without
// any check or probe running - a blocked IP cannot make probes either.
//
// Round trips: the read (query(): the block and the sub-windows) is folded
// into the recipient lookup pipeline (store::fetch_group); the write
// (store::record_harvest: the count, and the block when the defer threshold
// is crossed) is one pipelined job on the pool after the reply, and only for
// a call that had unknown recipients. Never a round trip per recipient. This
// unit decides which sub-windows and what to write; it does not speak Redis.
//
// Redis unavailable (read or write fails, pool busy): the same counts are
// kept in this process's memory (a map bounded to `memory_ips` IPs, least
// recently used dropped first), so one replica still defends itself; mail is
// never failed because of the harvest defence.
//
// Counting is in call order: once the count before the call plus the
// call's unknown recipients so far reaches a threshold, every LATER
// recipient of the same call is treated as past it (apply_to_call), so a
// 200-recipient call cannot probe 200 addresses against the count read
// before it.
//
// Identities (common/ip_prefix.h client_identity): an IPv4 address (or
// IPv4-mapped IPv6) counts alone; IPv6 is counted per `ipv6_prefix` network
// (default /64), since one client usually holds a whole /64.
//
// SECURITY: sees client IPs relayed by the edge; an IP that does not parse
// as IPv4/IPv6 text is not counted, and the identity is rebuilt from the
// parsed bytes (only 0-9 a-f . : /), so it cannot shape keys. Metrics carry
// no IP.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "directory/store/harvest_counts.h"
#include "directory/store/pool.h"
#include "directory/store/redis.h"
#include "doorman/v1/recipient.pb.h"

namespace doorman::directory::harvest {

inline constexpr int kBuckets = 10;

struct Settings {
  bool enabled = true;
  std::chrono::milliseconds window = std::chrono::minutes(10);
  uint64_t tarpit_threshold = 20;  // unknown recipients per window; 0 = no tarpit
  std::chrono::milliseconds tarpit_delay{2000};
  uint64_t defer_threshold = 100;  // 0 = never defer
  std::chrono::milliseconds cooldown = std::chrono::minutes(10);
  size_t memory_ips = 100000;  // in-memory fallback bound
  int ipv6_prefix = 64;        // IPv6 clients are counted per network of this length (0..128)
};

// What apply_to_call did to one call's verdicts.
struct CallOutcome {
  uint64_t unknown = 0;    // unknown recipients revealed (and to be recorded)
  uint64_t tarpitted = 0;  // verdicts that got the tarpit delay
  uint64_t deferred = 0;   // verdicts replaced by defer_verdict
};

// What is known about one client IP.
struct State {
  uint64_t unknown = 0;        // unknown recipients in the window
  int64_t blocked_ms = 0;      // > 0: deferred for this much longer
  bool from_memory = false;    // Redis was not available: this replica's count
};

// Always owned by a shared_ptr: record() keeps it alive in its pool job.
class Harvest : public std::enable_shared_from_this<Harvest> {
 public:
  explicit Harvest(Settings settings);
  const Settings& settings() const { return settings_; }

  // The client's identity as counted (client_identity: "192.0.2.1",
  // "2001:db8:1:2::/64"), or "" when the defence does not apply (disabled,
  // empty or not an IP).
  std::string usable_ip(std::string_view ip) const;

  // Applies the tarpit and the defer of a call that is not deferred as a
  // whole, walking `verdicts` (one per `rcpts`, in order) and counting
  // unknown ones: once before.unknown + unknown so far reaches the tarpit
  // threshold, that verdict and every later one carry delay_ms (accepts
  // too, so the delay reveals nothing); once it reaches the defer
  // threshold, every LATER verdict becomes exactly defer_verdict(rcpt). The
  // outcome's `unknown` is what record() must count. Pure.
  CallOutcome apply_to_call(const State& before, const std::vector<std::string>& rcpts,
                            std::vector<doorman::v1::Verdict>* verdicts) const;

  // The read folded into the lookup pipeline: the block and the kBuckets
  // sub-windows that end at now_ms.
  store::HarvestQuery query(const std::string& ip, int64_t now_ms) const;
  // What it read; null (the read failed) -> the in-memory state.
  State parse(const std::string& ip, const store::HarvestCounts* counts, int64_t now_ms);
  State memory_state(const std::string& ip, int64_t now_ms);

  // Records `unknown` new unknown recipients (and a block when the defer
  // threshold is crossed) in Redis through `pool`, or in memory when Redis
  // is unavailable. Does not wait.
  void record(store::RedisPool& pool, const std::string& ip, const State& before, uint64_t unknown, int64_t now_ms);
  // The same on a connection, synchronously (tests, Explain); true when Redis
  // took it.
  bool record_on(store::RedisConn* conn, const std::string& ip, const State& before, uint64_t unknown,
                 int64_t now_ms);

  bool deferred(const State& s) const { return s.blocked_ms > 0; }
  bool tarpitted(const State& s, uint64_t unknown) const {
    return settings_.tarpit_threshold > 0 && s.unknown + unknown >= settings_.tarpit_threshold;
  }
  bool crosses_defer(const State& s, uint64_t unknown) const {
    return settings_.defer_threshold > 0 && s.unknown + unknown >= settings_.defer_threshold;
  }

  // Human-readable state for Explain.
  std::string describe(const std::string& ip, const State& s) const;

  int64_t bucket_ms() const { return bucket_ms_; }

 private:
  store::HarvestWrite write_of(const std::string& ip, uint64_t unknown, bool block, int64_t now_ms) const;
  void record_memory(const std::string& ip, uint64_t unknown, bool block, int64_t now_ms);

  struct Entry {
    int64_t buckets[kBuckets] = {};  // by bucket number modulo kBuckets
    int64_t bucket_ids[kBuckets] = {};
    int64_t blocked_until_ms = 0;
    std::list<std::string>::iterator lru;
  };

  Settings settings_;
  int64_t bucket_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> memory_;
  std::list<std::string> lru_;  // most recent first
};

// DECISION_REJECT 550 5.1.1 from the list, the cache or a probe, or the
// ACCEPT of a shadow-mode domain that would have been one (WouldReject
// 550 5.1.1): shadow mode counts as enforce mode does.
bool is_unknown(const doorman::v1::Verdict& v);
// 450 4.7.1 "<rcpt>: Too many unknown recipients, try again later".
doorman::v1::Verdict defer_verdict(const std::string& rcpt);
// Milliseconds since the epoch.
int64_t now_ms();

}  // namespace doorman::directory::harvest
