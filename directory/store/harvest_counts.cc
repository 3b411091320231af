#include "directory/store/harvest_counts.h"

#include <cstdlib>

#include "directory/store/keys.h"

namespace doorman::directory::store {

Command harvest_read_command(const HarvestQuery& query) {
  Command cmd = {"MGET", keys::harvest_block(query.ip)};
  for (int i = 0; i < query.buckets; ++i) cmd.push_back(keys::harvest(query.ip, query.newest_bucket - i));
  return cmd;
}

bool parse_harvest_reply(const HarvestQuery& query, const Reply& reply, HarvestCounts* out) {
  if (reply.type != Reply::Type::kArray || reply.elements.size() != static_cast<size_t>(query.buckets) + 1)
    return false;
  *out = HarvestCounts();
  const auto& e = reply.elements;
  if (e[0].type == Reply::Type::kString) out->blocked_until_ms = std::strtoll(e[0].str.c_str(), nullptr, 10);
  for (size_t i = 1; i < e.size(); ++i)
    if (e[i].type == Reply::Type::kString) out->unknown += std::strtoull(e[i].str.c_str(), nullptr, 10);
  return true;
}

Status read_harvest(RedisConn& conn, const HarvestQuery& query, HarvestCounts* out) {
  Reply r;
  Status s = conn.command(harvest_read_command(query), &r);
  if (!s.ok()) return s;
  if (!parse_harvest_reply(query, r, out)) return Status::Error(Code::kInternal, "unexpected harvest MGET reply");
  return Status::Ok();
}

Status record_harvest(RedisConn& conn, const HarvestWrite& w) {
  std::vector<Command> cmds;
  if (w.unknown > 0) {
    const std::string key = keys::harvest(w.ip, w.bucket);
    cmds.push_back({"INCRBY", key, std::to_string(w.unknown)});
    cmds.push_back({"PEXPIRE", key, std::to_string(w.bucket_ttl_ms)});
  }
  if (w.block_until_ms > 0)
    cmds.push_back({"SET", keys::harvest_block(w.ip), std::to_string(w.block_until_ms), "PX",
                    std::to_string(w.block_ttl_ms)});
  if (cmds.empty()) return Status::Ok();
  std::vector<Reply> replies;
  Status s = conn.pipeline(cmds, &replies);
  if (!s.ok()) return s;
  for (size_t i = 0; i < replies.size(); ++i)
    if (replies[i].is_error()) return Status::Unavailable("redis " + cmds[i][0] + ": " + replies[i].str);
  return Status::Ok();
}

}  // namespace doorman::directory::store
