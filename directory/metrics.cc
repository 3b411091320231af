#include "directory/metrics.h"

#include <chrono>

namespace doorman::directory {
namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* name(CheckResult r) {
  switch (r) {
    case CheckResult::kOk: return "ok";
    case CheckResult::kRedisError: return "redis_error";
    case CheckResult::kInvalid: return "invalid";
    case CheckResult::kNotConfigured: return "not_configured";
    case CheckResult::kCount: break;
  }
  return "?";
}

const char* name(Decision d) {
  switch (d) {
    case Decision::kAccept: return "accept";
    case Decision::kReject: return "reject";
    case Decision::kDefer: return "defer";
    case Decision::kWouldReject: return "would_reject";
    case Decision::kCount: break;
  }
  return "?";
}

const char* name(Source s) {
  switch (s) {
    case Source::kList: return "list";
    case Source::kCache: return "cache";
    case Source::kProbe: return "probe";
    case Source::kPolicy: return "policy";
    case Source::kError: return "error";
    case Source::kLimit: return "limit";
    case Source::kCount: break;
  }
  return "?";
}

const char* name(ProbeResult r) {
  switch (r) {
    case ProbeResult::kValid: return "valid";
    case ProbeResult::kUnknown: return "unknown";
    case ProbeResult::kTempfail: return "tempfail";
    case ProbeResult::kError: return "error";
    case ProbeResult::kTimeout: return "timeout";
    case ProbeResult::kCount: break;
  }
  return "?";
}

const char* name(CacheResult r) {
  switch (r) {
    case CacheResult::kHit: return "hit";
    case CacheResult::kMiss: return "miss";
    case CacheResult::kRefresh: return "refresh";
    case CacheResult::kCount: break;
  }
  return "?";
}

DirectoryMetrics::DirectoryMetrics(metrics::Registry& r) : registry_(r) {
  for (size_t i = 0; i < check_requests_.size(); ++i)
    check_requests_[i] = &r.counter("doorman_directory_check_requests_total",
                                    "CheckRecipients calls by result: ok (verdicts from Redis facts), redis_error "
                                    "(Redis unreachable or the pool busy: every recipient deferred 451 4.4.3), "
                                    "invalid (rejected request: too many recipients), not_configured (the store "
                                    "has no marker, Redis lost its data?: every recipient deferred 451 4.3.0).",
                                    {{"result", name(static_cast<CheckResult>(i))}});
  check_duration_ = &r.histogram("doorman_directory_check_duration_seconds",
                                 "Duration of answered CheckRecipients calls, including callout waits.",
                                 metrics::latency_buckets());
  batch_checks_ = &r.histogram("doorman_directory_check_batch_size",
                               "Checks (RCPT groups) per CheckBatch call from the edges.",
                               {1, 2, 4, 8, 16, 32, 64, 128, 256});
  batch_asked_alone_ = &r.counter("doorman_directory_check_batch_asked_alone_total",
                                  "Checks of a CheckBatch call that needed a live callout probe and were sent back "
                                  "to be asked alone (a batch does not wait for probes).");
  for (size_t d = 0; d < recipients_.size(); ++d)
    for (size_t s = 0; s < recipients_[d].size(); ++s)
      recipients_[d][s] = &r.counter("doorman_directory_recipients_total",
                                     "Recipient verdicts given to the edge, by decision and by what decided.",
                                     {{"decision", name(static_cast<Decision>(d))},
                                      {"source", name(static_cast<Source>(s))}});
  redis_duration_ = &r.histogram("doorman_directory_redis_command_duration_seconds",
                                 "Duration of one Redis round trip (a pipeline of commands).",
                                 metrics::latency_buckets());
  redis_errors_ = &r.counter("doorman_directory_redis_errors_total",
                             "Redis failures: failed connection attempts and round trips that failed (I/O error, "
                             "timeout, protocol error).");
  redis_up_ = &r.gauge("doorman_directory_redis_up", "1 while at least one Redis connection of the pool is up.");
  redis_connections_ = &r.gauge("doorman_directory_redis_connections", "Redis connections of the pool that are up.");
  redis_reconnects_ = &r.counter("doorman_directory_redis_reconnects_total",
                                 "Redis pool connections made again after one was lost or the primary changed "
                                 "(the first connection of each pool worker is not counted).");
  redis_inline_jobs_ = &r.counter("doorman_directory_redis_inline_jobs_total",
                                  "Redis jobs run on the gRPC thread that received the call, through the pool's "
                                  "inline connection, instead of by a pool worker (batched recipient checks).");
  redis_failovers_ = &r.counter("doorman_directory_redis_failovers_total",
                                "+switch-master notices for --redis-master-name received from Redis Sentinel "
                                "(0 without --redis-sentinel).");
  redis_primary_changes_ = &r.counter("doorman_directory_redis_primary_changes_total",
                                      "Times this directory moved to another Redis primary (a +switch-master notice "
                                      "or a different answer of the sentinels); the primary's address is in the log "
                                      "(event=redis_primary_changed), not in a label.");
  redis_primary_found_ = &r.gauge("doorman_directory_redis_primary_found",
                                  "With --redis-sentinel: 1 while a sentinel names a primary for --redis-master-name "
                                  "and it answers ROLE master, else 0. Without sentinels always 1 (the configured "
                                  "host is the primary; see doorman_directory_redis_up).");
  redis_primary_found_->set(1);
  last_primary_change_ns_ = steady_ns();
  r.gauge_fn("doorman_directory_redis_seconds_since_failover",
             "Seconds since this directory last moved to another Redis primary (since start-up when it never did).",
             [this] {
               const int64_t now = steady_ns();
               return static_cast<double>(now - last_primary_change_ns_.load()) / 1e9;
             });
  for (size_t i = 0; i < probes_.size(); ++i)
    probes_[i] = &r.counter("doorman_directory_callout_probes_total",
                            "Callout probes sent to back-ends, by result: valid (2xx), unknown (5xx), tempfail "
                            "(4xx), error (connection or protocol trouble), timeout (deadline, limits).",
                            {{"result", name(static_cast<ProbeResult>(i))}});
  probe_duration_ = &r.histogram("doorman_directory_callout_probe_duration_seconds",
                                 "Duration of one callout probe, queueing and limits included.",
                                 metrics::latency_buckets());
  for (size_t i = 0; i < cache_.size(); ++i)
    cache_[i] = &r.counter("doorman_directory_callout_cache_total",
                           "Recipients decided by the callout check, by cache result: hit (answered from the "
                           "cache), miss (not cached: probed), refresh (answered from the cache, refreshed in the "
                           "background).",
                           {{"result", name(static_cast<CacheResult>(i))}});
  rate_limited_ = &r.counter("doorman_directory_callout_rate_limited_total",
                             "Callout probes that had to wait for the per-back-end rate limit (token bucket).");
  catch_all_domains_ = &r.gauge("doorman_directory_catch_all_domains",
                                "Guarded domains whose back-end is currently recorded as catch-all in Redis "
                                "(recounted every 10 s; the same value on every replica).");
  for (size_t i = 0; i < auth_failures_.size(); ++i)
    auth_failures_[i] = &r.counter("doorman_directory_admin_auth_failures_total",
                                   "AdminService calls refused with UNAUTHENTICATED, by reason: missing (no "
                                   "bearer token, or no token configured), invalid (malformed or wrong token).",
                                   {{"reason", name(static_cast<AuthFailure>(i))}});
  for (size_t i = 0; i < harvest_actions_.size(); ++i)
    harvest_actions_[i] = &r.counter("doorman_directory_harvest_actions_total",
                                     "Recipients touched by the harvest defence, by action: tarpit (a verdict "
                                     "carried a delay), defer (450 4.7.1 for a client past the defer threshold, "
                                     "also for the rest of the call that crossed it).",
                                     {{"action", name(static_cast<HarvestAction>(i))}});
  for (size_t i = 0; i < expired_jobs_.size(); ++i)
    expired_jobs_[i] = &r.counter("doorman_directory_expired_jobs_total",
                                  "Redis pool jobs whose caller's gRPC deadline had passed, by kind: check "
                                  "(CheckRecipients), admin (AdminService). Passed while queued: no Redis work; "
                                  "passed during the lookup: no callout probe and no harvest write.",
                                  {{"kind", name(static_cast<JobKind>(i))}});
  store_configured_ = &r.gauge("doorman_directory_store_configured",
                               "1 while the Redis store carries its configuration marker (doorman:v1:configured), "
                               "0 when it is missing (Redis lost its data?: every recipient is deferred 451 4.3.0 "
                               "and /readyz fails) or not known yet.");
  harvest_fallback_ = &r.gauge("doorman_directory_harvest_fallback",
                               "1 while the harvest counters are kept in this replica's memory because Redis is "
                               "unavailable, else 0.");
}

const char* name(AuthFailure r) {
  switch (r) {
    case AuthFailure::kMissing: return "missing";
    case AuthFailure::kInvalid: return "invalid";
    case AuthFailure::kCount: break;
  }
  return "?";
}

const char* name(HarvestAction a) {
  switch (a) {
    case HarvestAction::kTarpit: return "tarpit";
    case HarvestAction::kDefer: return "defer";
    case HarvestAction::kCount: break;
  }
  return "?";
}

const char* name(JobKind k) {
  switch (k) {
    case JobKind::kCheck: return "check";
    case JobKind::kAdmin: return "admin";
    case JobKind::kCount: break;
  }
  return "?";
}

void DirectoryMetrics::mark_primary_change() {
  last_primary_change_ns_ = steady_ns();
}

void DirectoryMetrics::admin_request(const std::string& method, const std::string& code) {
  registry_
      .counter("doorman_directory_admin_requests_total", "AdminService calls by RPC and gRPC status code.",
               {{"method", method}, {"code", code}})
      .inc();
}

DirectoryMetrics& directory_metrics() {
  static DirectoryMetrics m(metrics::global());
  return m;
}

const char* grpc_code_name(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(sizeof kNames / sizeof kNames[0])) return "UNKNOWN";
  return kNames[code];
}

}  // namespace doorman::directory
