// The LDAP / Active Directory sync of the directory (issue #14).
//
// One thread per directory process, with a Redis connection of its own (never
// a pool worker's, never a gRPC thread). Every `poll` it reads the sync state
// (store/sync_state.h: sources, records, requests, last periodic run) and
// publishes the shared records as gauges, so every replica exports the same
// last-success time. A run is due every `interval` (periodic: every domain
// of every source) or when RunSync asked for a domain. Only the replica that
// takes the lease (SET NX PX, `lease` long, renewed after every LDAP page and
// before every list change) runs; it re-reads the state under the lease, so
// a run another replica just finished is not repeated.
//
// A run reads each needed source once (ldap_client.h), splits the addresses
// by domain (addresses.h), and for each domain compares the union of its
// sources with the live list (plan.h). A domain with a failed source keeps
// its list (the last good list serves while LDAP is down); a held-back change
// (empty result, or a shrink beyond the smallest max_shrink of its sources)
// is recorded and not applied unless the request was forced; otherwise the
// difference is applied in one MULTI/EXEC. The records go back to Redis for
// GetSyncStatus on any replica.
//
// Metrics (docs/metrics.md): doorman_directory_sync_last_success_timestamp_seconds,
// _sync_entries, _sync_held_back (per source, from Redis), _sync_runs_total,
// _sync_changes_total, _sync_failures_total (this replica's runs).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "directory/store/redis.h"
#include "directory/store/sync_state.h"

namespace doorman::directory::sync {

struct SyncSettings {
  std::chrono::milliseconds interval{std::chrono::minutes(5)};
  std::chrono::milliseconds poll{std::chrono::seconds(1)};
  std::chrono::milliseconds lease{std::chrono::seconds(60)};
  std::string replica;  // this process, in records and the lease ("" = host:pid)
};

class Syncer {
 public:
  Syncer(store::RedisConfig redis, SyncSettings settings);
  ~Syncer();
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  void start();
  void stop();

 private:
  void loop();
  void tick();
  // Runs under the lease: `periodic` plus the requests in `state`.
  void run(const store::SyncState& state, bool periodic, const std::string& token);

  store::RedisConn conn_;
  SyncSettings settings_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};  // read by a run between LDAP pages
  std::thread thread_;
};

}  // namespace doorman::directory::sync
