// Check: a local part that routes is refused (550 5.7.1) in every mode.
//
// "victim%other.test@example.com" (the percent hack), "other.test!victim@
// example.com" (a UUCP bang path) and "\"victim@other.test\"@example.com" (a
// quoted '@') are addresses of example.com to us, but a back-end that
// honours them (Postfix with allow_percent_hack or swap_bangpath, many
// sendmail set-ups) relays the message to other.test: through Doorman's
// accept-all or callout modes that is an open relay, and in list mode it
// only needs the routed form to be listed. RFC 5321 §2.3.11 leaves the
// meaning of a local part to the host of its domain, and such hosts differ;
// Postfix itself refuses these forms from untrusted clients by default
// (allow_untrusted_routing = no). The check looks at the decoded local part
// (quotes removed), so '%', '!' and '@' are found however they are written.
// A domain may opt out (Domain.allow_routing_local_parts) when its back-end
// treats those characters as plain text. Runs after guarded_domain (an
// unguarded domain keeps its "Relay access denied") and before postmaster
// and accept_all.
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_routing(const Facts& f, Steps* steps) {
  const std::string& local = f.parsed.mailbox.local;
  const size_t at = local.find_first_of("%!@");
  if (at == std::string::npos) return std::nullopt;
  const std::string what = std::string("'") + local[at] + "'";
  if (f.config->allow_routing_local_parts()) {
    if (steps)
      steps->push_back("routing: local part contains " + what + "; allowed for " + f.domain +
                       " (allow_routing_local_parts) -> go on");
    return std::nullopt;
  }
  if (steps)
    steps->push_back("routing: local part contains " + what +
                     " (a back-end may route it to another host) -> reject (allow_routing_local_parts is off)");
  return make_verdict(doorman::v1::DECISION_REJECT, 550, "5.7.1",
                      bracketed(f) + ": Recipient address rejected: routing in the local part is not allowed",
                      "routing local part (" + what + ") in " + f.domain, doorman::v1::SOURCE_POLICY, doorman::v1::REASON_ROUTING);
}

}  // namespace doorman::directory::checks
