// The recipient checks, one per file, in the order the registry runs them:
//
//   syntax          unparsable address        -> 501 5.1.3 REJECT (POLICY)
//   lookup_error    Redis failed              -> 451 4.4.3 DEFER  (ERROR)
//                   store not configured (marker missing: Redis lost its
//                   data)                     -> 451 4.3.0 DEFER  (ERROR)
//   guarded_domain  domain not guarded here   -> 550 5.7.1 REJECT (POLICY)
//   routing         '%', '!' or '@' in the local part, unless the domain
//                   allows them (routing.cc)    -> 550 5.7.1 REJECT (POLICY)
//   postmaster      postmaster@guarded domain -> 250 2.1.5 ACCEPT (POLICY),
//                   RFC 5321 §4.5.1
//   accept_all      mode accept-all           -> 250 2.1.5 ACCEPT (POLICY)
//   list            mode list: listed         -> 250 2.1.5 ACCEPT (LIST)
//                              not listed     -> 550 5.1.1 REJECT (LIST)
//   callout         mode callout, or list with callout fallback and not
//                   listed (callout.cc):
//                     cached valid             -> 250 2.1.5 ACCEPT (CACHE)
//                     cached unknown           -> 550 5.1.1 REJECT (CACHE)
//                     catch-all back-end       -> 250 2.1.5 ACCEPT (POLICY)
//                       (policy defer)         -> 451 4.4.3 DEFER  (POLICY)
//                     not cached               -> 450 4.1.1 DEFER  (PROBE),
//                       replaced by the probe's answer when it comes
//                       within the wait budget (service/recipient_service)
//   shadow          applied to the verdict of whichever check decided
//                   (shadow.cc): a domain with enforce false turns
//                   "unknown" refusals (550 5.1.1 from the list, the
//                   callout cache or a probe) into
//                                             -> 250 2.1.5 ACCEPT (same
//                   source) with WouldReject set; the back-end decides
//   fallthrough     nothing decided (unknown mode in Redis)
//                                             -> 451 4.4.3 DEFER  (ERROR)
//
// Our own trouble is always a 4xx deferral, never a 5xx. Reply texts are
// client-safe (no back-end host names); `reason` is for logs.
#pragma once

#include "directory/checks/facts.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_syntax(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_lookup_error(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_guarded_domain(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_routing(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_postmaster(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_accept_all(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_list(const Facts& f, Steps* steps);
std::optional<doorman::v1::Verdict> check_callout(const Facts& f, Steps* steps);
// The side work of check_callout for the same facts (probe, refresh).
CalloutPlan plan_callout(const Facts& f);
// Whether the callout check applies to this domain and address.
bool callout_applies(const Facts& f);

// Shadow mode (shadow.cc): `v` as a domain with enforce false answers it.
doorman::v1::Verdict apply_shadow(const Facts& f, doorman::v1::Verdict v, Steps* steps);
// Whether shadow mode lets `v` through: an unknown-recipient refusal.
bool shadowable(const doorman::v1::Verdict& v);

// 451 4.4.3 with the given reason: the verdict for "we could not decide".
doorman::v1::Verdict temporary_failure(const Facts& f, std::string reason);
// 451 4.3.0: the store is not configured (nothing to decide on).
doorman::v1::Verdict not_configured(const Facts& f, std::string reason);

}  // namespace doorman::directory::checks
