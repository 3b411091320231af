// The harvest defence's counters in Redis (keys.h: harvest, harvest-block):
// per client identity, unknown recipients in fixed sub-windows and the block
// that defers the client until a unix ms.
//
// This unit only speaks Redis: which sub-windows make up the sliding window,
// the thresholds, the tarpit and the in-memory fallback when Redis is away
// are harvest/harvest.h's business. The client identity is already rebuilt
// from parsed bytes (common/ip_prefix.h client_identity), so it cannot shape
// keys.
//
// Round trips: the read rides in the recipient lookup pipeline
// (store::fetch_group, HarvestQuery) or is one MGET of its own
// (read_harvest); record_harvest is one pipeline (INCRBY + PEXPIRE of the
// current sub-window, SET PX of the block), never a round trip per
// recipient. Every function blocks on the caller's connection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "directory/store/redis.h"
#include "directory/store/status.h"

namespace doorman::directory::store {

// Which counters to read: the block of `ip` and its `buckets` sub-windows
// `newest_bucket`, newest_bucket - 1, ... (a sub-window is numbered unix ms /
// its length).
struct HarvestQuery {
  std::string ip;
  int64_t newest_bucket = 0;
  int buckets = 0;
};

// What Redis holds for one client.
struct HarvestCounts {
  int64_t blocked_until_ms = 0;  // 0: no block (a value that is not a number reads as 0)
  uint64_t unknown = 0;          // sum of the sub-windows read
};

// One MGET of the block and the sub-windows. A Redis error or a reply of the
// wrong shape is kInternal/kUnavailable.
Status read_harvest(RedisConn& conn, const HarvestQuery& query, HarvestCounts* out);

// One call's write, in one round trip: `unknown` > 0 adds it to sub-window
// `bucket` (INCRBY) and sets its expiry (PEXPIRE bucket_ttl_ms);
// block_until_ms > 0 sets the block (SET value block_until_ms, PX
// block_ttl_ms). Fails (kUnavailable) when the round trip or any command
// failed; with nothing to write it does nothing.
struct HarvestWrite {
  std::string ip;
  int64_t bucket = 0;
  uint64_t unknown = 0;
  int64_t bucket_ttl_ms = 0;
  int64_t block_until_ms = 0;
  int64_t block_ttl_ms = 0;
};
Status record_harvest(RedisConn& conn, const HarvestWrite& write);

// For store::fetch_group, which folds the read into its pipeline: the MGET
// and the parsing of its reply (false: error or wrong shape).
Command harvest_read_command(const HarvestQuery& query);
bool parse_harvest_reply(const HarvestQuery& query, const Reply& reply, HarvestCounts* out);

}  // namespace doorman::directory::store
