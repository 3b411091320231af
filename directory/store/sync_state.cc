#include "directory/store/sync_state.h"

#include <algorithm>

#include "directory/store/callout_cache.h"
#include "directory/store/keys.h"
#include "directory/store/store.h"

namespace doorman::directory::store {
namespace {

namespace v1 = doorman::v1;

Status redis_error(const Reply& r, const std::string& what) {
  return Status::Unavailable("redis " + what + ": " + r.str);
}

constexpr std::string_view kSourcePrefix = "source:";
constexpr std::string_view kDomainPrefix = "domain:";

// Acts only while the lease holds the caller's token.
constexpr const char* kRenewScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
// A guarded domain with an empty list waits for its first sync.
constexpr const char* kMarkPendingScript =
    "if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then "
    "return redis.call('HSET', KEYS[1], ARGV[1], '1') end return 0";
// HSET the domain's sources field only if the domain exists and the value changed.
constexpr const char* kRecordSourcesScript =
    "if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then "
    "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0";
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

}  // namespace

Status put_sync_source(RedisConn& conn, const v1::LdapSource& source, bool* changed) {
  std::string value = source.SerializeAsString();
  std::vector<Reply> r;
  Status s = conn.pipeline({{"HGET", keys::sync_sources(), source.name()},
                            {"HSET", keys::sync_sources(), source.name(), value}},
                           &r);
  if (!s.ok()) return s;
  if (r[1].is_error()) return redis_error(r[1], "HSET");
  *changed = r[0].type != Reply::Type::kString || r[0].str != value;
  if (!*changed) return Status::Ok();
  std::vector<Command> cmds = {{"DEL", keys::sync_last_run()}};
  for (const auto& d : source.domains())
    cmds.push_back({"EVAL", kMarkPendingScript, "2", keys::domain(d), keys::addresses(d),
                    std::string(keys::kFieldLdapPending)});
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "mark pending");
  return Status::Ok();
}

Status record_domain_sources(RedisConn& conn, const std::string& domain, const std::vector<std::string>& sources) {
  std::string names;
  for (const auto& n : sources) names += (names.empty() ? "" : ",") + n;
  Reply r;
  Status s = conn.command({"EVAL", kRecordSourcesScript, "1", keys::domain(domain), std::string(keys::kFieldLdapSources),
                           names},
                          &r);
  if (!s.ok()) return s;
  if (r.is_error()) return redis_error(r, "record sources");
  return Status::Ok();
}

Status delete_sync_source(RedisConn& conn, const std::string& name, bool* removed) {
  std::vector<Reply> r;
  Status s = conn.pipeline({{"HDEL", keys::sync_sources(), name},
                            {"HDEL", keys::sync_status(), std::string(kSourcePrefix) + name}},
                           &r);
  if (!s.ok()) return s;
  if (r[0].is_error()) return redis_error(r[0], "HDEL");
  *removed = r[0].integer > 0;
  return Status::Ok();
}

Status list_sync_sources(RedisConn& conn, std::vector<v1::LdapSource>* out) {
  SyncState state;
  Status s = read_sync_state(conn, &state);
  *out = std::move(state.sources);
  return s;
}

Status read_sync_state(RedisConn& conn, SyncState* out) {
  *out = SyncState();
  std::vector<Reply> r;
  Status s = conn.pipeline({{"HGETALL", keys::sync_sources()},
                            {"HGETALL", keys::sync_status()},
                            {"HGETALL", keys::sync_requests()},
                            {"GET", keys::sync_last_run()},
                            {"GET", keys::sync_lease()}},
                           &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "sync state");
  for (size_t i = 0; i + 1 < r[0].elements.size(); i += 2) {
    v1::LdapSource src;
    if (src.ParseFromString(r[0].elements[i + 1].str)) out->sources.push_back(std::move(src));
  }
  std::sort(out->sources.begin(), out->sources.end(),
            [](const v1::LdapSource& a, const v1::LdapSource& b) { return a.name() < b.name(); });
  for (size_t i = 0; i + 1 < r[1].elements.size(); i += 2) {
    const std::string& field = r[1].elements[i].str;
    v1::SyncRecord rec;
    if (!rec.ParseFromString(r[1].elements[i + 1].str)) continue;
    if (field.rfind(kSourcePrefix, 0) == 0) out->source_records[field.substr(kSourcePrefix.size())] = std::move(rec);
    else if (field.rfind(kDomainPrefix, 0) == 0)
      out->domain_records[field.substr(kDomainPrefix.size())] = std::move(rec);
  }
  for (size_t i = 0; i + 1 < r[2].elements.size(); i += 2)
    out->requests[r[2].elements[i].str] = r[2].elements[i + 1].str == "force";
  if (r[3].type == Reply::Type::kString) out->last_periodic_ms = std::atoll(r[3].str.c_str());
  if (r[4].type == Reply::Type::kString) out->lease_holder = r[4].str.substr(0, r[4].str.rfind(' '));
  return Status::Ok();
}

Status request_sync(RedisConn& conn, const std::string& domain, bool force, int64_t* at_ms) {
  *at_ms = unix_ms_now();
  Reply r;
  if (force) return conn.command({"HSET", keys::sync_requests(), domain, "force"}, &r);
  return conn.command({"HSETNX", keys::sync_requests(), domain, "normal"}, &r);
}

Status take_sync_requests(RedisConn& conn, const std::map<std::string, bool>& taken) {
  if (taken.empty()) return Status::Ok();
  Command c = {"HDEL", keys::sync_requests()};
  for (const auto& [domain, force] : taken) c.push_back(domain);
  Reply r;
  return conn.command(c, &r);
}

Status write_sync_records(RedisConn& conn, const std::vector<v1::SyncRecord>& sources,
                          const std::vector<v1::SyncRecord>& domains, bool periodic, int64_t run_ms) {
  std::vector<Command> cmds;
  Command c = {"HSET", keys::sync_status()};
  for (const auto& rec : sources) {
    c.push_back(std::string(kSourcePrefix) + rec.name());
    c.push_back(rec.SerializeAsString());
  }
  for (const auto& rec : domains) {
    c.push_back(std::string(kDomainPrefix) + rec.name());
    c.push_back(rec.SerializeAsString());
  }
  if (c.size() > 2) cmds.push_back(std::move(c));
  if (periodic) cmds.push_back({"SET", keys::sync_last_run(), std::to_string(run_ms)});
  std::vector<Reply> r;
  Status s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "sync records");
  return Status::Ok();
}

Status acquire_sync_lease(RedisConn& conn, const std::string& token, std::chrono::milliseconds ttl, bool* acquired) {
  Reply r;
  Status s = conn.command({"SET", keys::sync_lease(), token, "NX", "PX", std::to_string(ttl.count())}, &r);
  if (!s.ok()) return s;
  *acquired = reply_ok_status(r);
  return Status::Ok();
}

Status renew_sync_lease(RedisConn& conn, const std::string& token, std::chrono::milliseconds ttl, bool* held) {
  Reply r;
  Status s = conn.command({"EVAL", kRenewScript, "1", keys::sync_lease(), token, std::to_string(ttl.count())}, &r);
  if (!s.ok()) return s;
  *held = r.integer == 1;
  return Status::Ok();
}

Status release_sync_lease(RedisConn& conn, const std::string& token) {
  Reply r;
  return conn.command({"EVAL", kReleaseScript, "1", keys::sync_lease(), token}, &r);
}

Status read_list(RedisConn& conn, const std::string& domain, v1::Domain* config,
                 std::unordered_set<std::string>* members) {
  members->clear();
  std::vector<Reply> r;
  Status s = conn.pipeline({{"HGETALL", keys::domain(domain)}, {"SMEMBERS", keys::addresses(domain)}}, &r);
  if (!s.ok()) return s;
  if (r[0].is_error()) return redis_error(r[0], "HGETALL");
  if (r[1].is_error()) return redis_error(r[1], "SMEMBERS");
  if (!parse_domain_hash(domain, r[0], config))
    return Status::Error(Code::kNotFound, "domain " + domain + " is not guarded");
  members->reserve(r[1].elements.size());
  for (auto& e : r[1].elements) members->insert(std::move(e.str));
  return Status::Ok();
}

Status apply_list_diff(RedisConn& conn, const std::string& domain, const std::vector<std::string>& add,
                       const std::vector<std::string>& remove, const std::string& lease_token, bool clear_pending,
                       bool* applied) {
  *applied = false;
  std::vector<Reply> r;
  // WATCH first: a lease taken over after the GET makes EXEC fail.
  Status s = conn.pipeline({{"WATCH", keys::sync_lease()}, {"GET", keys::sync_lease()}}, &r);
  if (!s.ok()) return s;
  if (r[1].type != Reply::Type::kString || r[1].str != lease_token) {
    Reply unwatch;
    return conn.command({"UNWATCH"}, &unwatch);
  }
  const std::string key = keys::addresses(domain);
  std::vector<Command> cmds = {{"MULTI"}};
  auto chunked = [&](const char* verb, const std::vector<std::string>& members) {
    for (size_t i = 0; i < members.size(); i += kSyncChunk) {
      Command c = {verb, key};
      size_t end = std::min(members.size(), i + kSyncChunk);
      c.insert(c.end(), members.begin() + static_cast<std::ptrdiff_t>(i), members.begin() + static_cast<std::ptrdiff_t>(end));
      cmds.push_back(std::move(c));
    }
  };
  chunked("SREM", remove);
  chunked("SADD", add);
  if (clear_pending) cmds.push_back({"HDEL", keys::domain(domain), std::string(keys::kFieldLdapPending)});
  cmds.push_back({"EXEC"});
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  const Reply& exec = r.back();
  if (exec.type == Reply::Type::kNil) return Status::Ok();  // the lease changed hands: nothing written
  if (exec.type != Reply::Type::kArray) return redis_error(exec, "EXEC");
  for (const auto& x : exec.elements)
    if (x.is_error()) return redis_error(x, "SADD/SREM");
  *applied = true;
  return Status::Ok();
}

}  // namespace doorman::directory::store
