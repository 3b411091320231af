// Shadow mode (issue #14; Postfix's warn_if_reject): a domain whose
// `enforce` is false does not refuse a recipient as unknown. A verdict that
// would have been such a refusal becomes an ACCEPT (the domain's routes, so
// the recipient goes to the back-end, whose own answer then decides at the
// edge) carrying WouldReject: the refusal enforcement would have sent. The
// service counts it as would_reject (metric and the domain's shadow count).
//
// Only "unknown recipient" refusals are shadowed - not in the list
// (550 5.1.1, LIST) and a back-end 5xx to a callout (550 5.1.1, CACHE or
// PROBE): they are what the list or the callout claims about mailboxes, the
// thing an admin wants to see before switching. Everything else keeps its
// enforce-mode verdict:
//   - temporary failures (Redis, the store marker, a probe that failed or
//     is still running, a catch-all policy defer) stay 4xx: our own trouble
//     is never a blind accept, and enforcement would only have deferred;
//   - the routing refusal (550 5.7.1) stays: it protects against relaying
//     through the back-end, not against an incomplete list;
//   - the harvest defence's block (450 4.7.1, harvest/harvest.h) is about
//     the client, not the recipient, and is applied after this (a shadowed
//     unknown still counts towards it, as in enforce mode).
// Pure; no I/O.
#include "directory/checks/checks.h"

#include "directory/store/normalise.h"

namespace doorman::directory::checks {

bool shadowable(const doorman::v1::Verdict& v) {
  return v.decision() == doorman::v1::DECISION_REJECT &&
         (v.reason_code() == doorman::v1::REASON_NOT_LISTED || v.reason_code() == doorman::v1::REASON_CALLOUT_UNKNOWN);
}

doorman::v1::Verdict apply_shadow(const Facts& f, doorman::v1::Verdict v, Steps* steps) {
  if (!f.config || store::enforcing(*f.config) || !shadowable(v)) return v;
  if (steps)
    steps->push_back("shadow: " + f.domain + " does not enforce (enforce: false) -> accept and pass to the back-end (" +
                     std::to_string(v.code()) + " " + v.enhanced_code() + " when enforced)");
  auto out = make_accept(f, "shadow: " + v.reason(), v.source(), v.reason_code());
  out.set_cache_age_ms(v.cache_age_ms());
  out.set_source_name(v.source_name());
  auto* w = out.mutable_would_reject();
  w->set_code(v.code());
  w->set_enhanced_code(v.enhanced_code());
  w->set_reason(v.reason_code());
  return out;
}

}  // namespace doorman::directory::checks
