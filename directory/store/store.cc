#include "directory/store/store.h"

#include <algorithm>
#include <cstdlib>

#include "directory/store/keys.h"
#include "directory/store/normalise.h"

namespace doorman::directory::store {
namespace {

using doorman::v1::Domain;

Status redis_error(const Reply& r, const std::string& what) {
  return Status::Unavailable("redis " + what + ": " + r.str);
}

std::string join_routes(const Domain& d) {
  std::string out;
  for (const auto& r : d.routes()) {
    if (!out.empty()) out += ",";
    out += r;
  }
  return out;
}

// HSET arguments for every field of `d`.
Command hset_domain(const Domain& d) {
  Command c = {"HSET", keys::domain(d.name()), std::string(keys::kFieldMode), mode_name(d.mode()),
               std::string(keys::kFieldRoutes), join_routes(d), std::string(keys::kFieldCaseSensitive),
               d.local_part_case_sensitive() ? "1" : "0"};
  c.push_back(std::string(keys::kFieldSeparator));
  c.push_back(separator_of(d));
  c.push_back(std::string(keys::kFieldCalloutSender));
  c.push_back(d.callout_sender());
  c.push_back(std::string(keys::kFieldCatchAllPolicy));
  c.push_back(d.catch_all_policy() == doorman::v1::CATCH_ALL_POLICY_DEFER ? "defer" : "accept");
  c.push_back(std::string(keys::kFieldCalloutFallback));
  c.push_back(d.callout_fallback() ? "1" : "0");
  c.push_back(std::string(keys::kFieldAllowRouting));
  c.push_back(d.allow_routing_local_parts() ? "1" : "0");
  c.push_back(std::string(keys::kFieldEnforce));
  c.push_back(enforcing(d) ? "1" : "0");
  if (d.ldap_sync_pending()) {
    c.push_back(std::string(keys::kFieldLdapPending));
    c.push_back("1");
  }
  return c;
}

// The shadow count starts over now: DEL, then HSET since_ms and 0.
std::vector<Command> reset_shadow(const std::string& name, int64_t now_ms) {
  return {{"DEL", keys::shadow(name)},
          {"HSET", keys::shadow(name), std::string(keys::kFieldShadowSince), std::to_string(now_ms),
           std::string(keys::kFieldShadowWouldReject), "0"}};
}

// Fills domain->shadow from an HGETALL of keys::shadow, while enforce is off.
void fill_shadow(const Reply& r, Domain* d) {
  if (enforcing(*d)) return;
  auto* st = d->mutable_shadow();
  if (r.type != Reply::Type::kArray) return;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const std::string& f = r.elements[i].str;
    const std::string& v = r.elements[i + 1].str;
    char* end = nullptr;
    if (f == keys::kFieldShadowSince) st->set_since_unix_ms(std::strtoll(v.c_str(), &end, 10));
    else if (f == keys::kFieldShadowWouldReject) st->set_would_reject(std::strtoull(v.c_str(), &end, 10));
  }
}

// SET of the marker, for the admin writes that configure the store.
Command set_marker() { return {"SET", keys::configured(), std::to_string(unix_ms_now())}; }

}  // namespace

bool parse_domain_hash(const std::string& name, const Reply& r, Domain* out) {
  if (r.type != Reply::Type::kArray || r.elements.empty()) return false;
  out->Clear();
  out->set_name(name);
  out->set_subaddress_separator(std::string(kDefaultSeparator));
  out->set_catch_all_policy(doorman::v1::CATCH_ALL_POLICY_ACCEPT);
  out->set_callout_fallback(false);
  out->set_allow_routing_local_parts(false);
  out->set_enforce(true);
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const std::string& f = r.elements[i].str;
    const std::string& v = r.elements[i + 1].str;
    if (f == keys::kFieldMode) {
      doorman::v1::DomainMode m = doorman::v1::DOMAIN_MODE_UNSPECIFIED;
      parse_mode(v, &m);
      out->set_mode(m);
    } else if (f == keys::kFieldRoutes) {
      size_t start = 0;
      while (start < v.size()) {
        size_t comma = v.find(',', start);
        if (comma == std::string::npos) comma = v.size();
        if (comma > start) out->add_routes(v.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (f == keys::kFieldCaseSensitive) {
      out->set_local_part_case_sensitive(v == "1");
    } else if (f == keys::kFieldSeparator) {
      out->set_subaddress_separator(v);
    } else if (f == keys::kFieldCalloutSender) {
      out->set_callout_sender(v);
    } else if (f == keys::kFieldCatchAllPolicy) {
      out->set_catch_all_policy(v == "defer" ? doorman::v1::CATCH_ALL_POLICY_DEFER : doorman::v1::CATCH_ALL_POLICY_ACCEPT);
    } else if (f == keys::kFieldCalloutFallback) {
      out->set_callout_fallback(v == "1");
    } else if (f == keys::kFieldAllowRouting) {
      out->set_allow_routing_local_parts(v == "1");
    } else if (f == keys::kFieldEnforce) {
      out->set_enforce(v != "0");
    } else if (f == keys::kFieldLdapPending) {
      out->set_ldap_sync_pending(v == "1");
    } else if (f == keys::kFieldLdapSources) {
      for (size_t at = 0; at < v.size();) {
        size_t comma = v.find(',', at);
        if (comma == std::string::npos) comma = v.size();
        if (comma > at) out->add_ldap_sources(v.substr(at, comma - at));
        at = comma + 1;
      }
    }
  }
  return true;
}

void fill_catch_all(const Reply& get, Domain* domain) {
  if (get.type != Reply::Type::kString) return;
  auto e = decode_entry(get.str);
  if (!e) return;
  auto* st = domain->mutable_catch_all();
  st->set_state(e->result == "catch-all" ? doorman::v1::CatchAllStatus::STATE_CATCH_ALL
                                         : doorman::v1::CatchAllStatus::STATE_NORMAL);
  st->set_checked_unix_ms(e->checked_ms);
  st->set_backend(e->backend);
  if (e->result == "catch-all") st->set_warning(std::string(kCatchAllWarning));
}

Status fetch_group(RedisConn& conn, const std::vector<smtp::Mailbox>& mailboxes, GroupFacts* out,
                   const HarvestQuery* harvest, std::optional<HarvestCounts>* harvest_counts) {
  std::vector<HarvestQuery> harvests;
  if (harvest) harvests.push_back(*harvest);
  std::vector<std::optional<HarvestCounts>> counts;
  Status s = fetch_batch(conn, mailboxes, out, harvests, &counts);
  if (harvest_counts) *harvest_counts = counts.empty() ? std::nullopt : counts[0];
  return s;
}

Status fetch_batch(RedisConn& conn, const std::vector<smtp::Mailbox>& mailboxes, GroupFacts* out,
                   const std::vector<HarvestQuery>& harvests, std::vector<std::optional<HarvestCounts>>* counts) {
  out->clear();
  counts->assign(harvests.size(), std::nullopt);
  // Distinct domains, each with its candidates in first-seen order.
  std::map<std::string, std::vector<std::string>> candidates;
  for (const auto& m : mailboxes) {
    auto& list = candidates[smtp::ascii_lower(m.domain)];
    for (auto& c : lookup_candidates(m.local))
      if (std::find(list.begin(), list.end(), c) == list.end()) list.push_back(std::move(c));
  }
  std::vector<Command> cmds;
  cmds.push_back({"EXISTS", keys::configured()});
  for (const auto& [domain, cands] : candidates) {
    cmds.push_back({"HGETALL", keys::domain(domain)});
    Command sm = {"SMISMEMBER", keys::addresses(domain)};
    sm.insert(sm.end(), cands.begin(), cands.end());
    cmds.push_back(std::move(sm));
    // The callout cache of every candidate and the catch-all status.
    Command mget = {"MGET", keys::callout_domain(domain)};
    for (const auto& c : cands) mget.push_back(keys::callout(domain, c));
    cmds.push_back(std::move(mget));
  }
  const size_t own = cmds.size();
  for (const auto& h : harvests) cmds.push_back(harvest_read_command(h));
  std::vector<Reply> replies;
  Status s = conn.pipeline(cmds, &replies);
  if (!s.ok()) return s;
  for (size_t k = 0; k < harvests.size() && own + k < replies.size(); ++k) {
    HarvestCounts c;
    if (parse_harvest_reply(harvests[k], replies[own + k], &c)) (*counts)[k] = c;
  }
  if (replies[0].is_error()) return redis_error(replies[0], "EXISTS");
  if (replies[0].integer == 0) return Status::Error(Code::kFailedPrecondition, std::string(kNotConfiguredMessage));
  size_t i = 1;
  for (const auto& [domain, cands] : candidates) {
    const Reply& h = replies[i++];
    const Reply& sm = replies[i++];
    const Reply& mg = replies[i++];
    if (h.is_error()) return redis_error(h, "HGETALL");
    if (sm.is_error()) return redis_error(sm, "SMISMEMBER");
    if (mg.is_error()) return redis_error(mg, "MGET");
    DomainFacts& f = (*out)[domain];
    Domain d;
    if (parse_domain_hash(domain, h, &d)) f.config = std::move(d);
    for (size_t k = 0; k < cands.size() && k < sm.elements.size(); ++k) {
      f.asked.insert(cands[k]);
      if (sm.elements[k].integer == 1) f.listed.insert(cands[k]);
    }
    if (!mg.elements.empty() && mg.elements[0].type == Reply::Type::kString)
      f.catch_all = decode_entry(mg.elements[0].str);
    for (size_t k = 0; k < cands.size() && k + 1 < mg.elements.size(); ++k) {
      const Reply& e = mg.elements[k + 1];
      if (e.type != Reply::Type::kString) continue;
      if (auto entry = decode_entry(e.str)) f.cached[cands[k]] = std::move(*entry);
    }
  }

  // A domain with its own separator may need candidates we could not guess.
  cmds.clear();
  std::vector<std::pair<std::string, std::vector<std::string>>> extra;
  for (const auto& m : mailboxes) {
    std::string domain = smtp::ascii_lower(m.domain);
    DomainFacts& f = (*out)[domain];
    if (!f.config) continue;
    std::string key = normalise_local(m.local, *f.config);
    if (f.asked.count(key)) continue;
    if (extra.empty() || extra.back().first != domain) extra.emplace_back(domain, std::vector<std::string>());
    extra.back().second.push_back(key);
    f.asked.insert(key);
  }
  if (extra.empty()) return Status::Ok();
  for (const auto& [domain, cands] : extra) {
    Command sm = {"SMISMEMBER", keys::addresses(domain)};
    sm.insert(sm.end(), cands.begin(), cands.end());
    cmds.push_back(std::move(sm));
    Command mget = {"MGET"};
    for (const auto& c : cands) mget.push_back(keys::callout(domain, c));
    cmds.push_back(std::move(mget));
  }
  s = conn.pipeline(cmds, &replies);
  if (!s.ok()) return s;
  for (size_t k = 0; k < extra.size(); ++k) {
    const Reply& sm = replies[2 * k];
    const Reply& mg = replies[2 * k + 1];
    if (sm.is_error()) return redis_error(sm, "SMISMEMBER");
    if (mg.is_error()) return redis_error(mg, "MGET");
    DomainFacts& f = (*out)[extra[k].first];
    for (size_t j = 0; j < extra[k].second.size() && j < sm.elements.size(); ++j)
      if (sm.elements[j].integer == 1) f.listed.insert(extra[k].second[j]);
    for (size_t j = 0; j < extra[k].second.size() && j < mg.elements.size(); ++j) {
      if (mg.elements[j].type != Reply::Type::kString) continue;
      if (auto entry = decode_entry(mg.elements[j].str)) f.cached[extra[k].second[j]] = std::move(*entry);
    }
  }
  return Status::Ok();
}

Status get_domain(RedisConn& conn, const std::string& name, Domain* out) {
  std::vector<Reply> r;
  Status s = conn.pipeline({{"HGETALL", keys::domain(name)},
                            {"SCARD", keys::addresses(name)},
                            {"GET", keys::callout_domain(name)},
                            {"HGETALL", keys::shadow(name)}},
                           &r);
  if (!s.ok()) return s;
  if (r[0].is_error()) return redis_error(r[0], "HGETALL");
  if (!parse_domain_hash(name, r[0], out)) return Status::Error(Code::kNotFound, "domain " + name + " not found");
  out->set_address_count(static_cast<uint64_t>(std::max<int64_t>(0, r[1].integer)));
  fill_catch_all(r[2], out);
  fill_shadow(r[3], out);
  return Status::Ok();
}

Status create_domain(RedisConn& conn, const Domain& domain, bool mark) {
  // SADD decides who wins a concurrent create; only the winner writes.
  Reply added;
  Status s = conn.command({"SADD", keys::domains(), domain.name()}, &added);
  if (!s.ok()) return s;
  if (added.integer == 0) return Status::Error(Code::kAlreadyExists, "domain " + domain.name() + " already exists");
  std::vector<Reply> r;
  std::vector<Command> cmds = {{"DEL", keys::domain(domain.name())}, hset_domain(domain)};
  if (enforcing(domain)) {
    cmds.push_back({"DEL", keys::shadow(domain.name())});
  } else {
    for (auto& c : reset_shadow(domain.name(), unix_ms_now())) cmds.push_back(std::move(c));
  }
  if (mark) cmds.push_back(set_marker());
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "HSET");
  return Status::Ok();
}

Status update_domain(RedisConn& conn, const Domain& patch, Domain* out, bool mark) {
  Domain current;
  Status s = get_domain(conn, patch.name(), &current);
  if (!s.ok()) return s;
  if (patch.mode() != doorman::v1::DOMAIN_MODE_UNSPECIFIED) current.set_mode(patch.mode());
  if (patch.routes_size() > 0) *current.mutable_routes() = patch.routes();
  current.set_local_part_case_sensitive(patch.local_part_case_sensitive());
  if (patch.has_subaddress_separator()) current.set_subaddress_separator(patch.subaddress_separator());
  if (patch.has_callout_sender()) current.set_callout_sender(patch.callout_sender());
  if (patch.catch_all_policy() != doorman::v1::CATCH_ALL_POLICY_UNSPECIFIED)
    current.set_catch_all_policy(patch.catch_all_policy());
  if (patch.has_callout_fallback()) current.set_callout_fallback(patch.callout_fallback());
  if (patch.has_allow_routing_local_parts()) current.set_allow_routing_local_parts(patch.allow_routing_local_parts());
  const bool was_enforcing = enforcing(current);
  if (patch.has_enforce()) current.set_enforce(patch.enforce());
  std::vector<Reply> r;
  std::vector<Command> cmds = {{"DEL", keys::domain(current.name())}, hset_domain(current)};
  if (was_enforcing && !enforcing(current)) {
    // Shadow mode switched on: its count starts now.
    const int64_t now = unix_ms_now();
    for (auto& c : reset_shadow(current.name(), now)) cmds.push_back(std::move(c));
    current.mutable_shadow()->set_since_unix_ms(now);
    current.mutable_shadow()->set_would_reject(0);
  } else if (!was_enforcing && enforcing(current)) {
    cmds.push_back({"DEL", keys::shadow(current.name())});
    current.clear_shadow();
  }
  if (mark) cmds.push_back(set_marker());
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "HSET");
  *out = current;
  return Status::Ok();
}

Status first_domain(RedisConn& conn, std::string* out) {
  out->clear();
  Reply members;
  Status s = conn.command({"SMEMBERS", keys::domains()}, &members);
  if (!s.ok()) return s;
  if (members.is_error()) return redis_error(members, "SMEMBERS");
  for (const auto& e : members.elements)
    if (out->empty() || e.str < *out) *out = e.str;
  return Status::Ok();
}

Status confirm_replicated(RedisConn& conn) {
  const auto wait = conn.config().replica_wait;
  if (wait.count() <= 0) return Status::Ok();
  Reply role;
  Status s = conn.command({"ROLE"}, &role);
  if (!s.ok()) return Status::Unavailable("the change was sent but its replication could not be checked (" +
                                          s.message + "); retry it");
  RoleInfo info;
  if (!parse_role(role, &info) || info.replicas == 0) return Status::Ok();
  Reply acked;
  s = conn.blocking_command({"WAIT", "1", std::to_string(wait.count())}, wait, &acked);
  if (s.ok() && acked.type == Reply::Type::kInteger && acked.integer >= 1) return Status::Ok();
  return Status::Unavailable("the change was written to the Redis primary but no replica confirmed it within " +
                             std::to_string(wait.count()) + " ms" + (s.ok() ? "" : " (" + s.message + ")") +
                             ": it may be lost in a failover; retry it");
}

std::string marker_name() { return keys::configured(); }

Status mark_configured(RedisConn& conn) {
  Reply r;
  Status s = conn.command(set_marker(), &r);
  if (!s.ok()) return s;
  if (r.is_error()) return redis_error(r, "SET");
  return Status::Ok();
}

Status check_marker(RedisConn& conn, bool migrate, bool* present, bool* migrated) {
  *present = false;
  *migrated = false;
  std::vector<Reply> r;
  Status s = conn.pipeline({{"EXISTS", keys::configured()}, {"SCARD", keys::domains()}}, &r);
  if (!s.ok()) return s;
  if (r[0].is_error()) return redis_error(r[0], "EXISTS");
  *present = r[0].integer == 1;
  if (*present || !migrate || r[1].is_error() || r[1].integer <= 0) return Status::Ok();
  Command c = set_marker();
  c.push_back("NX");
  Reply set;
  s = conn.command(c, &set);
  if (!s.ok()) return s;
  if (set.is_error()) return redis_error(set, "SET");
  *present = true;
  *migrated = set.type != Reply::Type::kNil;  // nil: another replica set it first
  return Status::Ok();
}

Status delete_domain(RedisConn& conn, const std::string& name, uint64_t* removed) {
  std::vector<Reply> r;
  Status s = conn.pipeline({{"MULTI"},
                            {"SREM", keys::domains(), name},
                            {"SCARD", keys::addresses(name)},
                            {"DEL", keys::domain(name), keys::addresses(name), keys::callout_domain(name),
                             keys::shadow(name)},
                            {"EXEC"}},
                           &r);
  if (!s.ok()) return s;
  const Reply& exec = r.back();
  if (exec.type != Reply::Type::kArray || exec.elements.size() != 3) return redis_error(exec, "EXEC");
  if (exec.elements[0].integer == 0 && exec.elements[2].integer == 0)
    return Status::Error(Code::kNotFound, "domain " + name + " not found");
  *removed = static_cast<uint64_t>(exec.elements[1].integer);
  return Status::Ok();
}

Status list_domains(RedisConn& conn, std::vector<Domain>* out) {
  out->clear();
  Reply members;
  Status s = conn.command({"SMEMBERS", keys::domains()}, &members);
  if (!s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& e : members.elements) names.push_back(e.str);
  std::sort(names.begin(), names.end());
  if (names.empty()) return Status::Ok();
  std::vector<Command> cmds;
  for (const auto& n : names) {
    cmds.push_back({"HGETALL", keys::domain(n)});
    cmds.push_back({"SCARD", keys::addresses(n)});
    cmds.push_back({"GET", keys::callout_domain(n)});
    cmds.push_back({"HGETALL", keys::shadow(n)});
  }
  std::vector<Reply> r;
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (size_t i = 0; i < names.size(); ++i) {
    Domain d;
    if (!parse_domain_hash(names[i], r[4 * i], &d)) continue;  // half-created; skip
    d.set_address_count(static_cast<uint64_t>(std::max<int64_t>(0, r[4 * i + 1].integer)));
    fill_catch_all(r[4 * i + 2], &d);
    fill_shadow(r[4 * i + 3], &d);
    out->push_back(std::move(d));
  }
  return Status::Ok();
}

Status count_would_reject(RedisConn& conn, const std::map<std::string, uint64_t>& per_domain) {
  if (per_domain.empty()) return Status::Ok();
  std::vector<Command> cmds;
  for (const auto& [domain, n] : per_domain)
    cmds.push_back({"HINCRBY", keys::shadow(domain), std::string(keys::kFieldShadowWouldReject), std::to_string(n)});
  std::vector<Reply> r;
  Status s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "HINCRBY");
  return Status::Ok();
}

Status write_addresses(RedisConn& conn, const std::vector<std::string>& addresses, const WriteTarget& target,
                       DomainCache* cache, BatchResult* result) {
  struct Entry {
    std::string domain;
    std::string local;  // decoded, not yet normalised
    const std::string* original;
  };
  std::vector<Entry> entries;
  entries.reserve(addresses.size());
  std::vector<std::string> unknown;
  result->received += addresses.size();
  for (const auto& a : addresses) {
    smtp::PathResult p = smtp::parse_mailbox(a);
    if (!p.ok()) {
      const char* why = p.error == smtp::AddressError::kTooLong    ? "address too long"
                        : p.error == smtp::AddressError::kNonAscii ? "non-ASCII address (SMTPUTF8 not supported)"
                                                                   : "bad address syntax";
      result->errors.push_back({a, why});
      continue;
    }
    std::string domain = smtp::ascii_lower(p.mailbox.domain);
    if (!target.only_domain.empty() && domain != target.only_domain) {
      result->errors.push_back({a, "not in domain " + target.only_domain});
      continue;
    }
    if (!cache->count(domain) && std::find(unknown.begin(), unknown.end(), domain) == unknown.end())
      unknown.push_back(domain);
    entries.push_back({std::move(domain), std::move(p.mailbox.local), &a});
  }
  if (!unknown.empty()) {
    std::vector<Command> cmds;
    for (const auto& d : unknown) cmds.push_back({"HGETALL", keys::domain(d)});
    std::vector<Reply> r;
    Status s = conn.pipeline(cmds, &r);
    if (!s.ok()) return s;
    for (size_t i = 0; i < unknown.size(); ++i) {
      if (r[i].is_error()) return redis_error(r[i], "HGETALL");
      Domain d;
      if (parse_domain_hash(unknown[i], r[i], &d)) (*cache)[unknown[i]] = std::move(d);
      else (*cache)[unknown[i]] = std::nullopt;
    }
  }
  // Normalised members per domain, in first-seen order; duplicates within the
  // batch count once.
  std::map<std::string, std::vector<std::string>> by_domain;
  std::map<std::string, std::set<std::string>> seen;
  uint64_t duplicates = 0;
  for (auto& e : entries) {
    const auto& cfg = (*cache)[e.domain];
    if (!cfg) {
      result->errors.push_back({*e.original, "domain " + e.domain + " is not guarded here"});
      continue;
    }
    std::string key = normalise_local(e.local, *cfg);
    if (!seen[e.domain].insert(key).second) {
      ++duplicates;
      continue;
    }
    by_domain[e.domain].push_back(std::move(key));
  }
  if (by_domain.empty()) {
    result->unchanged += duplicates;
    return Status::Ok();
  }
  std::vector<Command> cmds;
  uint64_t total = 0;
  for (const auto& [domain, members] : by_domain) {
    Command c = {target.op == WriteOp::kAdd ? "SADD" : "SREM", target.key.empty() ? keys::addresses(domain) : target.key};
    c.insert(c.end(), members.begin(), members.end());
    total += members.size();
    cmds.push_back(std::move(c));
  }
  if (!target.key.empty()) cmds.push_back({"EXPIRE", target.key, std::to_string(keys::kTmpTtlSeconds)});
  std::vector<Reply> r;
  Status s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  uint64_t changed = 0;
  for (size_t i = 0; i < by_domain.size(); ++i) {
    if (r[i].is_error()) return redis_error(r[i], "SADD");
    changed += static_cast<uint64_t>(r[i].integer);
  }
  result->changed += changed;
  result->unchanged += total - changed + duplicates;
  return Status::Ok();
}

Status list_addresses(RedisConn& conn, const std::string& domain, uint32_t page_size, const std::string& token,
                      std::vector<std::string>* out, std::string* next_token, const std::string& prefix) {
  out->clear();
  next_token->clear();
  std::string cursor = token.empty() ? "0" : token;
  if (cursor.find_first_not_of("0123456789") != std::string::npos)
    return Status::Error(Code::kInvalidArgument, "bad page_token");
  // A prefix is a MATCH pattern with its glob characters escaped; MATCH
  // filters after the scan, so a few more rounds fill a page (bounded).
  std::string pattern;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  pattern.push_back('*');
  for (int round = 0; round < (prefix.empty() ? 1 : 100); ++round) {
    std::vector<Reply> r;
    Command scan{"SSCAN", keys::addresses(domain), cursor, "COUNT",
                 std::to_string(prefix.empty() ? page_size : std::max<uint32_t>(page_size, 1000))};
    if (!prefix.empty()) {
      scan.push_back("MATCH");
      scan.push_back(pattern);
    }
    Status s = conn.pipeline({{"EXISTS", keys::domain(domain)}, scan}, &r);
    if (!s.ok()) return s;
    if (r[0].integer == 0) return Status::Error(Code::kNotFound, "domain " + domain + " not found");
    if (r[1].is_error()) return redis_error(r[1], "SSCAN");
    if (r[1].elements.size() != 2) return Status::Error(Code::kInternal, "unexpected SSCAN reply");
    cursor = r[1].elements[0].str;
    for (const auto& e : r[1].elements[1].elements) out->push_back(smtp::Mailbox{e.str, domain}.str());
    if (cursor == "0" || out->size() >= page_size) break;
  }
  if (cursor != "0") *next_token = cursor;
  return Status::Ok();
}

Status count_addresses(RedisConn& conn, const std::string& domain, uint64_t* count) {
  std::vector<Reply> r;
  Status s = conn.pipeline({{"EXISTS", keys::domain(domain)}, {"SCARD", keys::addresses(domain)}}, &r);
  if (!s.ok()) return s;
  if (r[0].integer == 0) return Status::Error(Code::kNotFound, "domain " + domain + " not found");
  *count = static_cast<uint64_t>(std::max<int64_t>(0, r[1].integer));
  return Status::Ok();
}

std::string replace_key(const std::string& domain, const std::string& nonce) {
  return keys::tmp_replace(domain, nonce);
}

Status replace_begin(RedisConn& conn, const std::string& domain, const std::string& tmp_key) {
  std::vector<Reply> r;
  Status s = conn.pipeline({{"EXISTS", keys::domain(domain)}, {"DEL", tmp_key}}, &r);
  if (!s.ok()) return s;
  if (r[0].integer == 0) return Status::Error(Code::kNotFound, "domain " + domain + " not found");
  return Status::Ok();
}

Status replace_count(RedisConn& conn, const std::string& domain, const std::string& tmp_key, ReplaceCounts* out) {
  const std::string live = keys::addresses(domain);
  std::vector<Reply> r;
  Status s = conn.pipeline({{"SCARD", tmp_key}, {"SCARD", live}, {"SINTERCARD", "2", tmp_key, live}}, &r);
  if (!s.ok()) return s;
  for (const auto& x : r)
    if (x.is_error()) return redis_error(x, "SINTERCARD");
  uint64_t fresh = static_cast<uint64_t>(r[0].integer), old = static_cast<uint64_t>(r[1].integer),
           both = static_cast<uint64_t>(r[2].integer);
  out->added = fresh - both;
  out->removed = old - both;
  out->unchanged = both;
  return Status::Ok();
}

Status replace_commit(RedisConn& conn, const std::string& domain, const std::string& tmp_key, ReplaceCounts* out,
                      bool mark) {
  const std::string live = keys::addresses(domain);
  Status s = replace_count(conn, domain, tmp_key, out);
  if (!s.ok()) return s;
  const bool fresh_empty = out->added + out->unchanged == 0;
  std::vector<Reply> r;
  std::vector<Command> cmds;
  if (fresh_empty) {
    cmds = {{"DEL", live, tmp_key}};
    if (mark) cmds.push_back(set_marker());
  } else {
    // RENAME carries the temp key's TTL over: PERSIST in the same transaction.
    cmds = {{"MULTI"}, {"RENAME", tmp_key, live}, {"PERSIST", live}};
    if (mark) cmds.push_back(set_marker());
    cmds.push_back({"EXEC"});
  }
  s = conn.pipeline(cmds, &r);
  if (!s.ok()) return s;
  if (r.back().is_error() || (!fresh_empty && r.back().type != Reply::Type::kArray))
    return redis_error(r.back(), "RENAME");
  return Status::Ok();
}

Status replace_abort(RedisConn& conn, const std::string& tmp_key) {
  Reply r;
  return conn.command({"DEL", tmp_key}, &r);
}

}  // namespace doorman::directory::store
