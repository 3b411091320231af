// The recent figures of the whole deployment, for the console's overview and
// `doormanctl stats`: per minute, what every directory replica counted
// (recipients accepted, rejected, deferred, would-be refusals of shadow
// domains, harvest tarpits and blocks, callout probes), summed in Redis.
//
// Each replica adds the growth of its own Prometheus counters once a minute
// (service/stats_recorder.h), never on the recipient path: one pipeline of
// HINCRBY + EXPIRE per replica and minute. A minute's hash lives two hours.
// Every function blocks on the caller's connection.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "directory/store/redis.h"
#include "directory/store/status.h"

namespace doorman::directory::store {

// Field name -> count.
using StatCounts = std::map<std::string, uint64_t>;

// Adds `counts` (zeros skipped) to the figures of `unix_minute`.
Status record_stats(RedisConn& conn, int64_t unix_minute, const StatCounts& counts);

// The sums over `minutes` minutes ending with `newest_minute` (inclusive).
Status read_stats(RedisConn& conn, int64_t newest_minute, int minutes, StatCounts* out);

}  // namespace doorman::directory::store
