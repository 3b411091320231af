#include "directory/checks/registry.h"

#include "directory/checks/checks.h"
#include "directory/store/normalise.h"

namespace doorman::directory::checks {

const std::vector<NamedCheck>& registry() {
  static const std::vector<NamedCheck> kChecks = {
      {"syntax", check_syntax},
      {"lookup_error", check_lookup_error},
      {"guarded_domain", check_guarded_domain},
      {"routing", check_routing},
      {"postmaster", check_postmaster},
      {"accept_all", check_accept_all},
      {"list", check_list},
      {"callout", check_callout},
  };
  return kChecks;
}

Facts make_facts(std::string_view address, const store::GroupFacts& group, const Status& lookup,
                 const CalloutAges& ages) {
  Facts f;
  f.now_ms = store::unix_ms_now();
  f.positive_refresh_ms = ages.positive_refresh_ms;
  f.negative_refresh_ms = ages.negative_refresh_ms;
  f.catch_all_refresh_ms = ages.catch_all_refresh_ms;
  f.address = std::string(address);
  f.parsed = smtp::parse_mailbox(f.address);
  f.lookup = lookup;
  if (!f.parsed.ok()) return f;
  f.domain = smtp::ascii_lower(f.parsed.mailbox.domain);
  if (!lookup.ok()) return f;
  auto it = group.find(f.domain);
  if (it == group.end()) {
    f.lookup = Status::Error(Code::kInternal, "domain not fetched");
    return f;
  }
  const store::DomainFacts& d = it->second;
  f.config = d.config;
  f.catch_all = d.catch_all;
  if (!f.config) return f;
  std::string key = store::normalise_local(f.parsed.mailbox.local, *f.config);
  if (d.asked.count(key)) f.asked.insert(key);
  if (d.listed.count(key)) f.listed.insert(key);
  if (auto c = d.cached.find(key); c != d.cached.end()) f.cached.insert(*c);
  return f;
}

Evaluation evaluate(const Facts& facts, bool explain) {
  Evaluation e;
  for (const auto& c : registry()) {
    if (auto v = c.fn(facts, explain ? &e.steps : nullptr)) {
      e.verdict = apply_shadow(facts, std::move(*v), explain ? &e.steps : nullptr);
      if (c.fn == check_callout) e.callout = plan_callout(facts);
      return e;
    }
  }
  if (explain) e.steps.push_back("no check decided (unknown mode) -> defer");
  e.verdict = temporary_failure(facts, "no check decided");
  return e;
}

}  // namespace doorman::directory::checks
