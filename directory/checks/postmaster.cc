// Check: postmaster@ a guarded domain is always accepted (RFC 5321 §4.5.1),
// whatever the domain's mode or list. The local part compares
// case-insensitively. A bare "postmaster" has already been made
// postmaster@D by check_group (service/recipient_service.h).
#include "directory/checks/checks.h"

#include "smtp/address.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_postmaster(const Facts& f, Steps* steps) {
  if (smtp::ascii_lower(f.parsed.mailbox.local) != "postmaster") return std::nullopt;
  if (steps) steps->push_back("postmaster: always accepted (RFC 5321 section 4.5.1) -> accept");
  return make_accept(f, "postmaster of " + f.domain, doorman::v1::SOURCE_POLICY, doorman::v1::REASON_POSTMASTER);
}

}  // namespace doorman::directory::checks
