// The directory's Redis operations over the key schema of keys.h.
//
// store/ is the only place that speaks Redis: commands, scripts, key names
// and reply parsing stay here, behind functions named for what they mean.
//   store.h          the lookup (fetch_group), the marker, domains, address
//                    lists, replace
//   callout_cache.h  the callout cache: the single-flight lock of a probe
//                    (claim_probe, read_probe_progress, release_probe_claim),
//                    its answers (read/write_catch_all_status,
//                    write_address_result) and the admin side
//                    (read_address_result, forget_address_result,
//                    flush_domain, count_catch_all_domains)
//   harvest_counts.h the harvest counters (read_harvest, record_harvest; the
//                    read also rides in fetch_group)
//   redis.h, pool.h  the connection and the worker pool under them
//   sentinel.h       the primary named by Redis Sentinel, followed across
//                    failovers (--redis-sentinel)
//
// Every function runs on a caller-supplied RedisConn (a pool worker's) and
// blocks on it; every function pipelines its commands and says how many
// round trips it makes. Failures come back as Status: kUnavailable for Redis
// trouble (never a verdict), kNotFound / kAlreadyExists / kInvalidArgument
// for admin mistakes. Nothing here decides a verdict: see checks/.
//
// Limits: a recipient group or an address batch is bounded by the caller
// (1000 recipients, import chunks); ListAddresses pages are at most 10000
// (SSCAN COUNT is only a hint, so a page may be a little larger or smaller).
// Changing a domain's case sensitivity or separator does not rewrite its
// stored list; re-import or `doormanctl apply` does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "directory/store/callout_cache.h"
#include "directory/store/harvest_counts.h"
#include "directory/store/redis.h"
#include "directory/store/status.h"
#include "doorman/v1/admin.pb.h"
#include "smtp/address.h"

namespace doorman::directory::store {

// What one fetch learned about one domain.
struct DomainFacts {
  std::optional<doorman::v1::Domain> config;  // nullopt: not guarded
  std::set<std::string> asked;                // candidate local parts looked up
  std::set<std::string> listed;               // ... and found in the list
  // Callout cache (callout_cache.h), fetched in the same round trip for
  // every candidate, whatever the mode: candidate -> entry, when cached.
  std::map<std::string, CacheEntry> cached;
  std::optional<CacheEntry> catch_all;  // the domain's catch-all status
};

// Keyed by lower-cased domain.
using GroupFacts = std::map<std::string, DomainFacts>;

// The store has no marker (keys::configured): Redis lost its data, or was
// never configured. fetch_group fails with kFailedPrecondition and this.
inline constexpr std::string_view kNotConfiguredMessage =
    "store not configured: marker missing (Redis lost its data?)";

// For every distinct domain of `mailboxes`: EXISTS of the marker, HGETALL of its hash and
// SMISMEMBER of every lookup candidate (normalise.h) in ONE round trip. A
// second round trip happens only when a domain uses a separator other than
// "+" or "" and a recipient contains it.
// With `harvest`, the harvest read (harvest_counts.h) rides in the first
// pipeline; *harvest_counts gets its counts, or nullopt when the round trip
// or the read failed.
// Without the marker: kFailedPrecondition (kNotConfiguredMessage); the
// harvest counts are still filled.
Status fetch_group(RedisConn& conn, const std::vector<smtp::Mailbox>& mailboxes, GroupFacts* out,
                   const HarvestQuery* harvest = nullptr, std::optional<HarvestCounts>* harvest_counts = nullptr);
// The same for the recipients of several checks at once (CheckBatch): the
// facts of all their mailboxes and one harvest read per query, still in ONE
// round trip (two with an unusual separator). (*counts)[k] is the counts of
// harvests[k], or nullopt.
Status fetch_batch(RedisConn& conn, const std::vector<smtp::Mailbox>& mailboxes, GroupFacts* out,
                   const std::vector<HarvestQuery>& harvests, std::vector<std::optional<HarvestCounts>>* counts);

// Admin writes: after a write succeeded on `conn`, waits until one replica
// has it (WAIT 1 conn.config().replica_wait), so a failover cannot lose an
// acknowledged change. Asks ROLE first (one round trip): a primary without
// replicas has nobody to wait for and answers Ok at once, as does
// replica_wait 0. kUnavailable, with a message saying the change may or may
// not survive and can be retried, when no replica confirmed it in time. The
// check path never calls this.
Status confirm_replicated(RedisConn& conn);

// The marker's key (keys.h configured), for log lines.
std::string marker_name();
// Sets the marker: the store is configured (the end of an apply).
Status mark_configured(RedisConn& conn);

// One round trip: whether the marker exists (*present). With `migrate`, a
// missing marker is set (SET NX) when doorman:v1:domains is not empty, and
// *migrated says so (the start-up migration of an install older than it).
Status check_marker(RedisConn& conn, bool migrate, bool* present, bool* migrated);

// The first guarded domain in sorted (byte) order, "" when none: one round
// trip (SMEMBERS), for a bare RCPT TO:<Postmaster>.
Status first_domain(RedisConn& conn, std::string* out);

// Domains. `name` must already be validated and lower-cased. create, update
// and replace_commit also set the marker.
Status get_domain(RedisConn& conn, const std::string& name, doorman::v1::Domain* out);
// With `mark` false (apply, until it is done) the marker is left as it is.
Status create_domain(RedisConn& conn, const doorman::v1::Domain& domain, bool mark = true);
// Mode UNSPECIFIED, empty routes or an absent separator keep the stored value;
// case sensitivity is always set.
Status update_domain(RedisConn& conn, const doorman::v1::Domain& patch, doorman::v1::Domain* out, bool mark = true);
Status delete_domain(RedisConn& conn, const std::string& name, uint64_t* addresses_removed);
Status list_domains(RedisConn& conn, std::vector<doorman::v1::Domain>* out);
// Shadow mode (keys.h shadow): create and update start the count over
// (since = now, 0) when they switch enforce off, and drop it when they
// switch it on; get and list fill Domain.shadow while enforce is off.

// Adds each domain's would-be refusals of one call to its shadow count, in
// one round trip (HINCRBY each). A domain switched back to enforce in the
// meantime may get a stray count, which the next switch to shadow resets.
Status count_would_reject(RedisConn& conn, const std::map<std::string, uint64_t>& per_domain);

// Domain configs looked up during a batch or a stream, so an import fetches
// each domain once.
using DomainCache = std::map<std::string, std::optional<doorman::v1::Domain>>;

struct AddressError {
  std::string address;
  std::string error;
};

struct BatchResult {
  uint64_t received = 0;
  uint64_t changed = 0;
  uint64_t unchanged = 0;
  std::vector<AddressError> errors;  // nothing was written for these
};

enum class WriteOp { kAdd, kRemove };

struct WriteTarget {
  WriteOp op = WriteOp::kAdd;
  // Replace: every address must be of this domain, and goes to `key` (a temp
  // set, whose TTL is refreshed) instead of the domain's list.
  std::string only_domain;
  std::string key;
};

// Parses, validates and normalises `addresses` and writes them with one
// SADD/SREM per domain in one round trip (plus one round trip to look up
// domains not yet in `cache`). Per-address problems go to result->errors.
Status write_addresses(RedisConn& conn, const std::vector<std::string>& addresses, const WriteTarget& target,
                       DomainCache* cache, BatchResult* result);

Status list_addresses(RedisConn& conn, const std::string& domain, uint32_t page_size, const std::string& token,
                      std::vector<std::string>* out, std::string* next_token, const std::string& prefix = "");
Status count_addresses(RedisConn& conn, const std::string& domain, uint64_t* count);

// Replace: begin checks the domain and clears the temp set; commit compares
// the temp set with the live list (SINTERCARD) and RENAMEs it over the list
// atomically (DEL when empty). A dry run (ImportChunk.dry_run) writes the
// temp set just the same, asks replace_count for the comparison that commit
// would make, and ends with replace_abort: the live list is never touched.
// Counts, not members, cross the connection, so the directory's memory stays
// one chunk whatever the list's size; Redis briefly holds the new list next
// to the old one (as for a real replace), under a TTL should we die.
struct ReplaceCounts {
  uint64_t added = 0;
  uint64_t removed = 0;
  uint64_t unchanged = 0;
};
// The temp set of one replace stream, unique per `nonce` (keys.h
// tmp:replace): the handle the service keeps for replace_begin, _commit and
// _abort. No I/O.
std::string replace_key(const std::string& domain, const std::string& nonce);
Status replace_begin(RedisConn& conn, const std::string& domain, const std::string& tmp_key);
// Three counts, one round trip; writes nothing.
Status replace_count(RedisConn& conn, const std::string& domain, const std::string& tmp_key, ReplaceCounts* out);
Status replace_commit(RedisConn& conn, const std::string& domain, const std::string& tmp_key, ReplaceCounts* out,
                      bool mark = true);
Status replace_abort(RedisConn& conn, const std::string& tmp_key);

// Reads a domain hash reply (HGETALL) into `out`; false when empty.
bool parse_domain_hash(const std::string& name, const Reply& hgetall, doorman::v1::Domain* out);

// Fills domain->catch_all from a cached catch-all status (GET reply of
// keys::callout_domain); the warning text is kCatchAllWarning.
void fill_catch_all(const Reply& get, doorman::v1::Domain* domain);
inline constexpr std::string_view kCatchAllWarning =
    "back-end accepts any address: unknown recipients will be accepted and bounced later - enable recipient "
    "filtering on the back-end or switch this domain to `list`";

}  // namespace doorman::directory::store
