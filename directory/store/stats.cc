#include "directory/store/stats.h"

#include <cstdlib>

#include "directory/store/keys.h"

namespace doorman::directory::store {
namespace {

constexpr int kLifetimeSeconds = 2 * 3600;

}  // namespace

Status record_stats(RedisConn& conn, int64_t unix_minute, const StatCounts& counts) {
  const std::string key = keys::stats(unix_minute);
  std::vector<Command> cmds;
  for (const auto& [field, n] : counts)
    if (n > 0) cmds.push_back({"HINCRBY", key, field, std::to_string(n)});
  if (cmds.empty()) return Status::Ok();
  cmds.push_back({"EXPIRE", key, std::to_string(kLifetimeSeconds)});
  std::vector<Reply> r;
  Status s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& reply : r)
    if (reply.is_error()) return Status::Error(Code::kUnavailable, "stats: " + reply.str);
  return Status::Ok();
}

Status read_stats(RedisConn& conn, int64_t newest_minute, int minutes, StatCounts* out) {
  out->clear();
  std::vector<Command> cmds;
  for (int i = 0; i < minutes; ++i) cmds.push_back({"HGETALL", keys::stats(newest_minute - i)});
  if (cmds.empty()) return Status::Ok();
  std::vector<Reply> r;
  Status s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& h : r) {
    if (h.is_error()) return Status::Error(Code::kUnavailable, "stats: " + h.str);
    for (size_t i = 0; i + 1 < h.elements.size(); i += 2)
      (*out)[h.elements[i].str] += std::strtoull(h.elements[i + 1].str.c_str(), nullptr, 10);
  }
  return Status::Ok();
}

}  // namespace doorman::directory::store
