// The LDAP sync's Redis operations (issue #14; keys.h "LDAP / Active
// Directory sync" has the keys): the sources, what the last run did, run
// requests, the lease that lets one replica sync at a time, and the atomic
// diff-apply of a list.
//
// The lease: acquire_sync_lease is SET NX PX with a random token; renew and
// release are Lua scripts that act only while the key still holds the
// caller's token, so a replica whose lease expired can never extend or drop
// another's. apply_list_diff WATCHes the lease key and applies every SADD and
// SREM of a list in one MULTI/EXEC: readers (fetch_group) see the old list
// or the new one, never a half-applied list, and a replica that lost its
// lease between the check and EXEC writes nothing (*applied false).
//
// Every function blocks on the caller's RedisConn (the sync thread's own,
// never a pool worker's) and says how many round trips it makes. Limits: a
// diff is sent in commands of at most kSyncChunk members; a list is read
// whole (SMEMBERS), which is what a sync of 100,000 addresses needs anyway.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "directory/store/redis.h"
#include "directory/store/status.h"
#include "doorman/v1/admin.pb.h"

namespace doorman::directory::store {

inline constexpr size_t kSyncChunk = 1000;

// Creates or replaces a source (one round trip, plus one when it changed
// (*changed): the periodic schedule is cleared, so the next poll syncs, and
// each of its guarded domains whose list is empty is marked as waiting for
// its first sync (keys.h ldap_pending)).
Status put_sync_source(RedisConn& conn, const doorman::v1::LdapSource& source, bool* changed);
// Deletes a source and its status record: one round trip.
Status delete_sync_source(RedisConn& conn, const std::string& name, bool* removed);
Status list_sync_sources(RedisConn& conn, std::vector<doorman::v1::LdapSource>* out);

// Everything the sync thread and GetSyncStatus read, in one round trip.
struct SyncState {
  std::vector<doorman::v1::LdapSource> sources;           // sorted by name
  std::map<std::string, doorman::v1::SyncRecord> source_records;
  std::map<std::string, doorman::v1::SyncRecord> domain_records;
  std::map<std::string, bool> requests;                   // domain -> force
  int64_t last_periodic_ms = 0;                            // 0: never, or a source changed
  std::string lease_holder;                                // "" when free
};
Status read_sync_state(RedisConn& conn, SyncState* out);

// Records a RunSync request (a force request is never weakened to a normal
// one): one round trip. *at_ms is now, for the caller to compare with
// SyncRecord.last_run_unix_ms.
Status request_sync(RedisConn& conn, const std::string& domain, bool force, int64_t* at_ms);
// Deletes the requests a run has taken: one round trip.
Status take_sync_requests(RedisConn& conn, const std::map<std::string, bool>& taken);

// Writes the records of a run, and with `periodic` its start time as the
// last periodic run: one round trip.
Status write_sync_records(RedisConn& conn, const std::vector<doorman::v1::SyncRecord>& sources,
                          const std::vector<doorman::v1::SyncRecord>& domains, bool periodic, int64_t run_ms);

// The lease. `token` must be unique per holder (replica name + random).
Status acquire_sync_lease(RedisConn& conn, const std::string& token, std::chrono::milliseconds ttl, bool* acquired);
// *held false: the lease expired or another replica holds it now.
Status renew_sync_lease(RedisConn& conn, const std::string& token, std::chrono::milliseconds ttl, bool* held);
Status release_sync_lease(RedisConn& conn, const std::string& token);

// A domain's config and its whole list (normalised local parts): one round
// trip. kNotFound when the domain is not guarded.
Status read_list(RedisConn& conn, const std::string& domain, doorman::v1::Domain* config,
                 std::unordered_set<std::string>* members);
// Records which LDAP sources fed a domain's list in its last sync
// (Domain.ldap_sources; the decision log's source_name). Writes nothing for
// a domain that no longer exists, and nothing when the names did not change.
Status record_domain_sources(RedisConn& conn, const std::string& domain, const std::vector<std::string>& sources);

// Adds and removes members of a domain's list in one MULTI/EXEC, while
// `lease_token` still holds the lease: two round trips. With
// `clear_pending` the same transaction ends the domain's wait for its first
// sync (Domain.ldap_sync_pending). *applied false (and nothing written) when
// the lease was lost.
Status apply_list_diff(RedisConn& conn, const std::string& domain, const std::vector<std::string>& add,
                       const std::vector<std::string>& remove, const std::string& lease_token, bool clear_pending,
                       bool* applied);

}  // namespace doorman::directory::store
