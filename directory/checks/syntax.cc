// Check: the address must parse as an RFC 5321 mailbox (smtp::parse_mailbox).
// A non-ASCII address fails here too: Doorman does not offer SMTPUTF8.
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_syntax(const Facts& f, Steps* steps) {
  if (f.parsed.ok()) {
    if (steps) steps->push_back("syntax: ok, local part '" + f.parsed.mailbox.local + "', domain '" + f.domain + "'");
    return std::nullopt;
  }
  std::string why = f.parsed.error == smtp::AddressError::kTooLong    ? "too long"
                    : f.parsed.error == smtp::AddressError::kNonAscii ? "non-ASCII (no SMTPUTF8)"
                                                                      : "malformed";
  if (steps) steps->push_back("syntax: address is " + why + " -> reject");
  return make_verdict(doorman::v1::DECISION_REJECT, 501, "5.1.3", "Bad recipient address syntax",
                      "address syntax: " + why, doorman::v1::SOURCE_POLICY, doorman::v1::REASON_SYNTAX);
}

}  // namespace doorman::directory::checks
