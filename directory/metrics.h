// The directory's Prometheus series (docs/metrics.md has every one, with its
// labels and meaning), registered once in the process-wide registry
// (common/metrics.h) so that every series is exported from start-up, zeros
// included.
//
// Call sites update the handles below: relaxed atomics, no lock and no
// registry lookup per recipient (every labelled series of the data path is
// created up front, in fixed arrays indexed by enums). Labels come from small
// fixed sets only — never an address, a domain, a back-end or an IP. The
// admin counter is the exception that looks its series up per call (admin
// RPCs are rare; the lookup takes the registry's mutex).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "common/metrics.h"

namespace doorman::directory {

// doorman_directory_check_requests_total{result}
enum class CheckResult { kOk, kRedisError, kInvalid, kNotConfigured, kCount };
// doorman_directory_recipients_total{decision,source}; kWouldReject: the
// accept of a shadow-mode domain that enforcement would have refused
// (checks/shadow.cc).
enum class Decision { kAccept, kReject, kDefer, kWouldReject, kCount };
enum class Source { kList, kCache, kProbe, kPolicy, kError, kLimit, kCount };
// doorman_directory_callout_probes_total{result}
enum class ProbeResult { kValid, kUnknown, kTempfail, kError, kTimeout, kCount };
// doorman_directory_callout_cache_total{result}
enum class CacheResult { kHit, kMiss, kRefresh, kCount };
// doorman_directory_admin_auth_failures_total{reason}
enum class AuthFailure { kMissing, kInvalid, kCount };
// doorman_directory_harvest_actions_total{action}
enum class HarvestAction { kTarpit, kDefer, kCount };
// doorman_directory_expired_jobs_total{kind}
enum class JobKind { kCheck, kAdmin, kCount };

const char* name(CheckResult r);
const char* name(Decision d);
const char* name(Source s);
const char* name(ProbeResult r);
const char* name(CacheResult r);
const char* name(AuthFailure r);
const char* name(HarvestAction a);
const char* name(JobKind k);

class DirectoryMetrics {
 public:
  explicit DirectoryMetrics(metrics::Registry& registry);

  metrics::Counter& check_requests(CheckResult r) { return *check_requests_[static_cast<size_t>(r)]; }
  metrics::Histogram& check_duration() { return *check_duration_; }
  metrics::Histogram& batch_checks() { return *batch_checks_; }
  metrics::Counter& batch_asked_alone() { return *batch_asked_alone_; }
  metrics::Counter& recipients(Decision d, Source s) {
    return *recipients_[static_cast<size_t>(d)][static_cast<size_t>(s)];
  }

  metrics::Histogram& redis_command_duration() { return *redis_duration_; }
  metrics::Counter& redis_errors() { return *redis_errors_; }
  metrics::Gauge& redis_up() { return *redis_up_; }
  metrics::Gauge& redis_connections() { return *redis_connections_; }
  // Redis Sentinel (store/sentinel.h) and the pool's reconnections.
  metrics::Counter& redis_reconnects() { return *redis_reconnects_; }
  metrics::Counter& redis_inline_jobs() { return *redis_inline_jobs_; }
  metrics::Counter& redis_failovers() { return *redis_failovers_; }
  metrics::Counter& redis_primary_changes() { return *redis_primary_changes_; }
  metrics::Gauge& redis_primary_found() { return *redis_primary_found_; }
  // Restarts doorman_directory_redis_seconds_since_failover.
  void mark_primary_change();

  metrics::Counter& callout_probes(ProbeResult r) { return *probes_[static_cast<size_t>(r)]; }
  metrics::Histogram& callout_probe_duration() { return *probe_duration_; }
  metrics::Counter& callout_cache(CacheResult r) { return *cache_[static_cast<size_t>(r)]; }
  metrics::Counter& callout_rate_limited() { return *rate_limited_; }
  metrics::Gauge& catch_all_domains() { return *catch_all_domains_; }

  metrics::Counter& admin_auth_failures(AuthFailure r) { return *auth_failures_[static_cast<size_t>(r)]; }
  metrics::Counter& harvest_actions(HarvestAction a) { return *harvest_actions_[static_cast<size_t>(a)]; }
  // 1 while the harvest counters live in this process's memory (Redis down).
  metrics::Gauge& harvest_fallback() { return *harvest_fallback_; }
  // 1 while the store's marker is present (service/store_state.h), else 0.
  metrics::Gauge& store_configured() { return *store_configured_; }
  // Pool jobs dropped because their call's deadline had passed.
  metrics::Counter& expired_jobs(JobKind k) { return *expired_jobs_[static_cast<size_t>(k)]; }

  // `method` is the AdminService RPC name (from the gRPC method path, a
  // fixed set), `code` the gRPC status code name (OK, NOT_FOUND, ...).
  void admin_request(const std::string& method, const std::string& code);

 private:
  metrics::Registry& registry_;
  std::array<metrics::Counter*, static_cast<size_t>(CheckResult::kCount)> check_requests_{};
  metrics::Histogram* check_duration_ = nullptr;
  metrics::Histogram* batch_checks_ = nullptr;
  metrics::Counter* batch_asked_alone_ = nullptr;
  std::array<std::array<metrics::Counter*, static_cast<size_t>(Source::kCount)>,
             static_cast<size_t>(Decision::kCount)>
      recipients_{};
  metrics::Histogram* redis_duration_ = nullptr;
  metrics::Counter* redis_errors_ = nullptr;
  metrics::Gauge* redis_up_ = nullptr;
  metrics::Gauge* redis_connections_ = nullptr;
  metrics::Counter* redis_reconnects_ = nullptr;
  metrics::Counter* redis_inline_jobs_ = nullptr;
  metrics::Counter* redis_failovers_ = nullptr;
  metrics::Counter* redis_primary_changes_ = nullptr;
  metrics::Gauge* redis_primary_found_ = nullptr;
  std::atomic<int64_t> last_primary_change_ns_{0};  // steady clock
  std::array<metrics::Counter*, static_cast<size_t>(ProbeResult::kCount)> probes_{};
  metrics::Histogram* probe_duration_ = nullptr;
  std::array<metrics::Counter*, static_cast<size_t>(CacheResult::kCount)> cache_{};
  metrics::Counter* rate_limited_ = nullptr;
  metrics::Gauge* catch_all_domains_ = nullptr;
  std::array<metrics::Counter*, static_cast<size_t>(AuthFailure::kCount)> auth_failures_{};
  std::array<metrics::Counter*, static_cast<size_t>(HarvestAction::kCount)> harvest_actions_{};
  metrics::Gauge* harvest_fallback_ = nullptr;
  metrics::Gauge* store_configured_ = nullptr;
  std::array<metrics::Counter*, static_cast<size_t>(JobKind::kCount)> expired_jobs_{};
};

// The process-wide instance over metrics::global(), created on first use.
DirectoryMetrics& directory_metrics();

// gRPC status code names for the admin counter ("OK", "INVALID_ARGUMENT").
const char* grpc_code_name(int code);

}  // namespace doorman::directory
