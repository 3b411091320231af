// Logged-out web console sessions (directory/console/session.h), shared by
// every directory replica: a console session is a signed cookie that any
// replica accepts, so a logout is recorded here until the session would
// have expired anyway (key schema: keys.h, console-revoked). One round trip
// each, blocking on the caller's connection.
#pragma once

#include <cstdint>
#include <string>

#include "directory/store/redis.h"
#include "directory/store/status.h"

namespace doorman::directory::store {

// Records `sid` as logged out for `ttl_ms` (at least 1 ms).
Status revoke_console_session(RedisConn& conn, const std::string& sid, int64_t ttl_ms);
// *revoked = whether `sid` was logged out.
Status console_session_revoked(RedisConn& conn, const std::string& sid, bool* revoked);

}  // namespace doorman::directory::store
