// Check: a domain in callout mode (or in list mode with callout fallback,
// for an address not in the list) is verified by asking its back-end (an
// RCPT TO probe, directory/callout/). This check only reads what
// fetch_group brought: the cached result of the address and the domain's
// catch-all status. A miss defers with 450 4.1.1 ("verification in
// progress", Postfix's text); the service then probes and, when the answer
// comes within the wait budget, replaces this verdict with it.
//
// A cached result older than its refresh age is still served; plan_callout
// asks for one background refresh. A catch-all back-end (it accepted a
// random local part) cannot tell valid from unknown: the domain's
// catch_all_policy decides (accept, the default, or defer) without probing.
#include "directory/checks/checks.h"

#include <algorithm>

#include "directory/store/normalise.h"

namespace doorman::directory::checks {
namespace {

std::string age_text(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 120000) return std::to_string(ms / 1000) + "s";
  if (ms < 7200000) return std::to_string(ms / 60000) + "m";
  return std::to_string(ms / 3600000) + "h";
}

const store::CacheEntry* cached_entry(const Facts& f, const std::string& key) {
  auto it = f.cached.find(key);
  if (it == f.cached.end()) return nullptr;
  if (it->second.result != "valid" && it->second.result != "unknown") return nullptr;
  return &it->second;
}

bool is_catch_all(const Facts& f) { return f.catch_all && f.catch_all->result == "catch-all"; }

}  // namespace

bool callout_applies(const Facts& f) {
  if (!f.config) return false;
  if (f.config->mode() == doorman::v1::DOMAIN_MODE_CALLOUT) return true;
  // list + fallback: check_list let it through only when not listed.
  return f.config->mode() == doorman::v1::DOMAIN_MODE_LIST && f.config->callout_fallback();
}

std::optional<doorman::v1::Verdict> check_callout(const Facts& f, Steps* steps) {
  if (!callout_applies(f)) return std::nullopt;
  const std::string key = store::normalise_local(f.parsed.mailbox.local, *f.config);
  if (const auto* e = cached_entry(f, key)) {
    int64_t age = f.now_ms - e->checked_ms;
    int64_t refresh = e->result == "valid" ? f.positive_refresh_ms : f.negative_refresh_ms;
    std::string due = age >= refresh ? ", due for a background refresh" : "";
    if (e->result == "valid") {
      if (steps) steps->push_back("callout: '" + key + "' cached valid (" + age_text(age) + " old" + due + ") -> accept");
      auto v = make_accept(f, "callout cache: valid at " + e->backend, doorman::v1::SOURCE_CACHE,
                           doorman::v1::REASON_CALLOUT_VALID);
      v.set_cache_age_ms(std::max<int64_t>(0, age));
      return v;
    }
    if (steps) steps->push_back("callout: '" + key + "' cached unknown (" + age_text(age) + " old" + due + ") -> reject");
    auto v = make_verdict(doorman::v1::DECISION_REJECT, 550, "5.1.1",
                          bracketed(f) + ": Recipient address rejected: User unknown",
                          "callout cache: unknown at " + e->backend, doorman::v1::SOURCE_CACHE,
                          doorman::v1::REASON_CALLOUT_UNKNOWN);
    v.set_cache_age_ms(std::max<int64_t>(0, age));
    return v;
  }
  if (is_catch_all(f)) {
    if (f.config->catch_all_policy() == doorman::v1::CATCH_ALL_POLICY_DEFER) {
      if (steps) steps->push_back("callout: the back-end of " + f.domain + " accepts any address (catch-all), policy defer -> defer");
      auto v = temporary_failure(f, "catch-all back-end of " + f.domain + ", policy defer");
      v.set_source(doorman::v1::SOURCE_POLICY);
      v.set_reason_code(doorman::v1::REASON_CATCH_ALL);
      return v;
    }
    if (steps) steps->push_back("callout: the back-end of " + f.domain +
                     " accepts any address (catch-all), policy accept -> accept (unknown recipients bounce later)");
    return make_accept(f, "catch-all back-end of " + f.domain + ", policy accept", doorman::v1::SOURCE_POLICY,
                       doorman::v1::REASON_CATCH_ALL);
  }
  if (steps) steps->push_back("callout: '" + key + "' is not cached -> probe the back-end; defer unless it answers in time");
  return make_verdict(doorman::v1::DECISION_DEFER, 450, "4.1.1",
                      bracketed(f) + ": Recipient address verification in progress", "callout pending",
                      doorman::v1::SOURCE_PROBE, doorman::v1::REASON_CALLOUT_PENDING);
}

CalloutPlan plan_callout(const Facts& f) {
  CalloutPlan p;
  if (!callout_applies(f)) return p;
  p.applies = true;
  p.key = store::normalise_local(f.parsed.mailbox.local, *f.config);
  p.domain_probe = !f.catch_all || f.now_ms - f.catch_all->checked_ms >= f.catch_all_refresh_ms;
  if (const auto* e = cached_entry(f, p.key)) {
    int64_t refresh = e->result == "valid" ? f.positive_refresh_ms : f.negative_refresh_ms;
    p.refresh = f.now_ms - e->checked_ms >= refresh;
    return p;
  }
  if (is_catch_all(f)) return p;
  p.probe = true;
  return p;
}

}  // namespace doorman::directory::checks
