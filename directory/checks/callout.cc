// Check: a domain in callout mode asks its back-end (RCPT TO probe) and
// caches the answer. Not implemented yet (issue #4): every address defers
// with 450 4.1.1, as Postfix does while verification is pending.
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_callout(const Facts& f, Steps* steps) {
  if (f.config->mode() != doorman::v1::DOMAIN_MODE_CALLOUT) return std::nullopt;
  steps->push_back("callout: verification against the back-end is not implemented yet -> defer");
  return make_verdict(doorman::v1::DECISION_DEFER, 450, "4.1.1",
                      bracketed(f) + ": Recipient address verification in progress", "callout not implemented yet",
                      doorman::v1::SOURCE_PROBE);
}

}  // namespace doorman::directory::checks
