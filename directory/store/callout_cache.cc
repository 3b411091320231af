#include "directory/store/callout_cache.h"

#include <chrono>
#include <vector>

#include "directory/store/keys.h"

namespace doorman::directory::store {
namespace {

bool parse_int(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

std::string clean(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(c == '|' || c == '\r' || c == '\n' ? ' ' : c);
  return out;
}

constexpr char kUnlockScript[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

// A GET reply as an entry: nil, an error or a malformed value is no entry.
std::optional<CacheEntry> decoded(const Reply& r) {
  return r.type == Reply::Type::kString ? decode_entry(r.str) : std::nullopt;
}

std::string lock_key(const ProbeSubject& subject) {
  return subject.catch_all_only ? keys::callout_domain_lock(subject.domain)
                                : keys::callout_lock(subject.domain, subject.local);
}

}  // namespace

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_entry(const CacheEntry& e) {
  // The reply is last and may contain '|' (only the first five are split).
  return "v1|" + clean(e.result) + "|" + std::to_string(e.checked_ms) + "|" + std::to_string(e.expires_ms) + "|" +
         clean(e.backend) + "|" + std::string(e.reply.substr(0, 300));
}

std::optional<CacheEntry> decode_entry(std::string_view v) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (parts.size() < 5) {
    size_t bar = v.find('|', start);
    if (bar == std::string_view::npos) return std::nullopt;
    parts.push_back(v.substr(start, bar - start));
    start = bar + 1;
  }
  if (parts[0] != "v1") return std::nullopt;
  CacheEntry e;
  e.result = std::string(parts[1]);
  if (!parse_int(parts[2], &e.checked_ms) || !parse_int(parts[3], &e.expires_ms)) return std::nullopt;
  if (e.result != "valid" && e.result != "unknown" && e.result != "catch-all" && e.result != "normal")
    return std::nullopt;
  e.backend = std::string(parts[4]);
  e.reply = std::string(v.substr(start));
  return e;
}

Status write_entry(RedisConn& conn, const std::string& key, const CacheEntry& e, int64_t ttl_ms) {
  Reply r;
  return conn.command({"SET", key, encode_entry(e), "PX", std::to_string(ttl_ms < 1 ? 1 : ttl_ms)}, &r);
}

Status read_entry(RedisConn& conn, const std::string& key, std::optional<CacheEntry>* out) {
  Reply r;
  Status s = conn.command({"GET", key}, &r);
  if (!s.ok()) return s;
  *out = r.type == Reply::Type::kString ? decode_entry(r.str) : std::nullopt;
  return Status::Ok();
}

Status claim_probe(RedisConn& conn, const ProbeSubject& subject, const std::string& token, int64_t ttl_ms,
                   ProbeClaim* out) {
  *out = ProbeClaim();
  const std::string entry_key =
      subject.local.empty() ? keys::callout_domain(subject.domain) : keys::callout(subject.domain, subject.local);
  std::vector<Reply> r;
  Status s = conn.pipeline({{"SET", lock_key(subject), token, "NX", "PX", std::to_string(ttl_ms)},
                            {"GET", entry_key},
                            {"GET", keys::callout_domain(subject.domain)}},
                           &r);
  if (!s.ok()) return s;
  out->acquired = reply_ok_status(r[0]);
  out->entry = decoded(r[1]);
  out->catch_all = decoded(r[2]);
  return Status::Ok();
}

Status read_probe_progress(RedisConn& conn, const ProbeSubject& subject, ProbeProgress* out) {
  *out = ProbeProgress();
  std::vector<Reply> r;
  Status s = conn.pipeline({{"GET", keys::callout(subject.domain, subject.local)},
                            {"GET", keys::callout_domain(subject.domain)},
                            {"EXISTS", lock_key(subject)}},
                           &r);
  if (!s.ok()) return s;
  out->entry = decoded(r[0]);
  out->catch_all = decoded(r[1]);
  out->claimed = r[2].integer != 0;
  return Status::Ok();
}

Status release_probe_claim(RedisConn& conn, const ProbeSubject& subject, const std::string& token) {
  Reply r;
  return conn.command({"EVAL", kUnlockScript, "1", lock_key(subject), token}, &r);
}

Status read_catch_all_status(RedisConn& conn, const std::string& domain, std::optional<CacheEntry>* out) {
  return read_entry(conn, keys::callout_domain(domain), out);
}

Status write_catch_all_status(RedisConn& conn, const std::string& domain, const CacheEntry& e, int64_t ttl_ms) {
  return write_entry(conn, keys::callout_domain(domain), e, ttl_ms);
}

Status write_address_result(RedisConn& conn, const std::string& domain, const std::string& local, const CacheEntry& e,
                            int64_t ttl_ms) {
  return write_entry(conn, keys::callout(domain, local), e, ttl_ms);
}

Status read_address_result(RedisConn& conn, const std::string& domain, const std::string& local,
                           std::optional<CacheEntry>* entry, int64_t* pttl_ms) {
  *entry = std::nullopt;
  *pttl_ms = 0;
  const std::string k = keys::callout(domain, local);
  std::vector<Reply> r;
  Status s = conn.pipeline({{"GET", k}, {"PTTL", k}}, &r);
  if (!s.ok()) return s;
  *entry = decoded(r[0]);
  *pttl_ms = r[1].integer;
  return Status::Ok();
}

Status forget_address_result(RedisConn& conn, const std::string& domain, const std::string& local, bool* removed) {
  Reply r;
  Status s = conn.command({"DEL", keys::callout(domain, local)}, &r);
  if (!s.ok()) return s;
  *removed = r.integer > 0;
  return Status::Ok();
}

Status flush_domain(RedisConn& conn, const std::string& domain, uint64_t* removed) {
  *removed = 0;
  std::string cursor = "0";
  const std::string pattern = keys::callout_pattern(domain);
  do {
    Reply r;
    Status s = conn.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, &r);
    if (!s.ok()) return s;
    if (r.type != Reply::Type::kArray || r.elements.size() != 2) return Status::Error(Code::kInternal, "bad SCAN reply");
    cursor = r.elements[0].str;
    if (!r.elements[1].elements.empty()) {
      Command del = {"UNLINK"};
      for (const auto& k : r.elements[1].elements) del.push_back(k.str);
      Reply d;
      s = conn.command(del, &d);
      if (!s.ok()) return s;
      *removed += static_cast<uint64_t>(d.integer);
    }
  } while (cursor != "0");
  Reply d;
  Status s = conn.command({"UNLINK", keys::callout_domain(domain)}, &d);
  if (!s.ok()) return s;
  *removed += static_cast<uint64_t>(d.integer);
  return Status::Ok();
}

Status count_catch_all_domains(RedisConn& conn, uint64_t* count) {
  *count = 0;
  Reply names;
  Status s = conn.command({"SMEMBERS", keys::domains()}, &names);
  if (!s.ok()) return s;
  if (names.elements.empty()) return Status::Ok();
  Command mget = {"MGET"};
  for (const auto& n : names.elements) mget.push_back(keys::callout_domain(n.str));
  Reply statuses;
  s = conn.command(mget, &statuses);
  if (!s.ok()) return s;
  const int64_t now = unix_ms_now();
  for (const auto& r : statuses.elements) {
    if (r.type != Reply::Type::kString) continue;
    auto e = decode_entry(r.str);
    if (e && e->result == "catch-all" && e->expires_ms > now) ++*count;
  }
  return Status::Ok();
}

}  // namespace doorman::directory::store
