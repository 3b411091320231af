// The callout cache in Redis: probe results per normalised address, the
// catch-all status per domain, and the single-flight locks (keys.h).
//
// A result is one STRING "v1|<result>|<checked_ms>|<expires_ms>|<backend>|
// <reply>" with a Redis expiry (PX) equal to its lifetime, so Redis drops it
// by itself; <result> is "valid" / "unknown" for an address and
// "catch-all" / "normal" for a domain. Only decisive answers are ever
// written (a 2xx or 5xx from the back-end): a 4xx, a timeout or a connection
// error writes nothing, so a failed refresh never overwrites a good result
// and a greylisting back-end is never cached as "unknown".
//
// Reads for a lookup happen inside store::fetch_group (one MGET per domain
// in the same round trip as the domain hash); this unit has the single-flight
// lock of a probe (claim_probe, read_probe_progress, release_probe_claim),
// the writes of its answers (write_catch_all_status, write_address_result),
// and the admin operations (read_address_result, forget_address_result,
// flush_domain). Every function makes one round trip unless it says
// otherwise, and blocks on the caller's connection. Nothing here decides:
// what an entry means and when it is due are callout/'s business.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "directory/store/redis.h"
#include "directory/store/status.h"

namespace doorman::directory::store {

struct CacheEntry {
  std::string result;       // "valid", "unknown", "catch-all", "normal"
  int64_t checked_ms = 0;   // unix ms when the probe answered
  int64_t expires_ms = 0;   // unix ms when Redis drops it
  std::string backend;      // route that answered, "host:port"
  std::string reply;        // the back-end's reply line (admin only)
};

std::string encode_entry(const CacheEntry& e);
// Parses a stored value; nullopt for nil, foreign or malformed values (a
// malformed entry counts as not cached).
std::optional<CacheEntry> decode_entry(std::string_view value);

int64_t unix_ms_now();

// By key (keys.h), for the functions below and for tests: SET key value PX
// ttl; GET + decode (*out = nullopt when absent or malformed).
Status write_entry(RedisConn& conn, const std::string& key, const CacheEntry& e, int64_t ttl_ms);
Status read_entry(RedisConn& conn, const std::string& key, std::optional<CacheEntry>* out);

// The subject of one probe flight: an address of `domain` (`local` is its
// normalised local part), or - catch_all_only - the domain's random-address
// probe alone (its own lock, keys.h callout-domain-lock).
struct ProbeSubject {
  std::string domain;
  std::string local;
  bool catch_all_only = false;
};

// What claim_probe found.
struct ProbeClaim {
  bool acquired = false;               // `token` owns the lock now
  std::optional<CacheEntry> entry;     // the address's result (the catch-all status when local is "")
  std::optional<CacheEntry> catch_all; // the domain's catch-all status
};

// The single-flight lock of a probe across replicas, and the cache re-read
// in the same round trip (a probe that finished a moment ago is not
// repeated): SET lock token NX PX ttl_ms, GET of the subject's result, GET
// of the domain's catch-all status.
Status claim_probe(RedisConn& conn, const ProbeSubject& subject, const std::string& token, int64_t ttl_ms,
                   ProbeClaim* out);

// What another replica's probe of an address has found so far.
struct ProbeProgress {
  std::optional<CacheEntry> entry;      // the address's result
  std::optional<CacheEntry> catch_all;  // the domain's catch-all status
  bool claimed = false;                 // its lock still lives (false also on an error reply)
};
// GET of the address's result and of the catch-all status, EXISTS of the lock.
Status read_probe_progress(RedisConn& conn, const ProbeSubject& subject, ProbeProgress* out);

// Deletes the lock only if `token` still owns it (a script: compare and DEL).
Status release_probe_claim(RedisConn& conn, const ProbeSubject& subject, const std::string& token);

// The domain's catch-all status (keys.h callout-domain): read, and write
// with a lifetime (PX).
Status read_catch_all_status(RedisConn& conn, const std::string& domain, std::optional<CacheEntry>* out);
Status write_catch_all_status(RedisConn& conn, const std::string& domain, const CacheEntry& e, int64_t ttl_ms);

// One address's probe result (keys.h callout): write with a lifetime (PX).
Status write_address_result(RedisConn& conn, const std::string& domain, const std::string& local, const CacheEntry& e,
                            int64_t ttl_ms);

// Admin: one address's result and Redis's remaining lifetime of it (GET +
// PTTL): *entry = nullopt when absent or malformed; *pttl_ms is PTTL's
// answer (-1 no expiry, -2 absent, 0 when PTTL failed).
Status read_address_result(RedisConn& conn, const std::string& domain, const std::string& local,
                           std::optional<CacheEntry>* entry, int64_t* pttl_ms);
// Admin: DEL one address's result; *removed = whether it existed.
Status forget_address_result(RedisConn& conn, const std::string& domain, const std::string& local, bool* removed);
// Admin: every result of `domain` (SCAN MATCH, UNLINK in batches) and its
// catch-all status.
Status flush_domain(RedisConn& conn, const std::string& domain, uint64_t* removed);

// Metrics: how many guarded domains (keys::domains) have a catch-all status
// "catch-all" that has not expired. Two round trips (SMEMBERS, then one MGET
// of every domain's status); run in the background every 10 s
// (service/server.h), never on the data path.
Status count_catch_all_domains(RedisConn& conn, uint64_t* count);

}  // namespace doorman::directory::store
