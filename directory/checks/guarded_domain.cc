// Check: the recipient's domain must be one we guard; anything else is a
// relay attempt (550 5.7.1 Relay access denied).
#include "directory/checks/checks.h"

#include "directory/store/normalise.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_guarded_domain(const Facts& f, Steps* steps) {
  if (f.config) {
    std::string sep = store::separator_of(*f.config);
    if (steps) steps->push_back("domain: " + f.domain + " is guarded, mode " + store::mode_name(f.config->mode()) +
                     (f.config->local_part_case_sensitive() ? ", case-sensitive" : ", case-insensitive") +
                     (sep.empty() ? ", no sub-addressing" : ", sub-address separator '" + sep + "'"));
    return std::nullopt;
  }
  if (steps) steps->push_back("domain: " + f.domain + " is not guarded here -> reject (relay denied)");
  return make_verdict(doorman::v1::DECISION_REJECT, 550, "5.7.1", bracketed(f) + ": Relay access denied",
                      "domain " + f.domain + " not guarded", doorman::v1::SOURCE_POLICY, doorman::v1::REASON_RELAY_DENIED);
}

}  // namespace doorman::directory::checks
