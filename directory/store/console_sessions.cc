#include "directory/store/console_sessions.h"

#include "directory/store/keys.h"

namespace doorman::directory::store {

Status revoke_console_session(RedisConn& conn, const std::string& sid, int64_t ttl_ms) {
  Reply r;
  Status s = conn.command({"SET", keys::console_revoked(sid), "1", "PX", std::to_string(ttl_ms < 1 ? 1 : ttl_ms)}, &r);
  if (!s.ok()) return s;
  if (r.is_error()) return Status::Error(Code::kUnavailable, "redis SET: " + r.str);
  return Status::Ok();
}

Status console_session_revoked(RedisConn& conn, const std::string& sid, bool* revoked) {
  Reply r;
  Status s = conn.command({"EXISTS", keys::console_revoked(sid)}, &r);
  if (!s.ok()) return s;
  if (r.is_error()) return Status::Error(Code::kUnavailable, "redis EXISTS: " + r.str);
  *revoked = r.type == Reply::Type::kInteger && r.integer > 0;
  return Status::Ok();
}

}  // namespace doorman::directory::store
