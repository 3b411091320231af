// Check: a domain in accept-all mode accepts every local part; the back-end
// decides later (the weakest mode: unknown recipients may cause bounces).
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

std::optional<doorman::v1::Verdict> check_accept_all(const Facts& f, Steps* steps) {
  if (f.config->mode() != doorman::v1::DOMAIN_MODE_ACCEPT_ALL) return std::nullopt;
  if (steps) steps->push_back("accept-all: every address of " + f.domain + " is accepted -> accept");
  return make_accept(f, "accept-all mode of " + f.domain, doorman::v1::SOURCE_POLICY, doorman::v1::REASON_ACCEPT_ALL);
}

}  // namespace doorman::directory::checks
