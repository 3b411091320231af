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
// Reads happen inside store::fetch_group (one MGET per domain in the same
// round trip as the domain hash); this unit has the writes, the locks and
// the admin operations. Every function blocks on the caller's connection.
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

// SET key value PX ttl.
Status write_entry(RedisConn& conn, const std::string& key, const CacheEntry& e, int64_t ttl_ms);
// GET + decode; *out = nullopt when absent.
Status read_entry(RedisConn& conn, const std::string& key, std::optional<CacheEntry>* out);

// SET lock token NX PX ttl; *acquired tells whether we own it now.
Status try_lock(RedisConn& conn, const std::string& key, const std::string& token, int64_t ttl_ms, bool* acquired);
// Deletes the lock only if `token` still owns it (a script: compare and DEL).
Status unlock(RedisConn& conn, const std::string& key, const std::string& token);

// Admin: DEL one result; *removed = whether it existed.
Status forget_entry(RedisConn& conn, const std::string& key, bool* removed);
// Admin: every result of `domain` (SCAN MATCH, UNLINK in batches) and its
// catch-all status.
Status flush_domain(RedisConn& conn, const std::string& domain, uint64_t* removed);

// Metrics: how many guarded domains (keys::domains) have a catch-all status
// "catch-all" that has not expired. Two round trips (SMEMBERS, then one MGET
// of every domain's status); run in the background every 10 s
// (service/server.h), never on the data path.
Status count_catch_all_domains(RedisConn& conn, uint64_t* count);

}  // namespace doorman::directory::store
