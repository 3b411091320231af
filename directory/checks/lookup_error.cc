// Check: when the Redis fetch failed we know nothing, so we defer
// (451 4.4.3). Never a 5xx for our own trouble: the client retries later.
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

doorman::v1::Verdict temporary_failure(const Facts& f, std::string reason) {
  return make_verdict(doorman::v1::DECISION_DEFER, 451, "4.4.3",
                      bracketed(f) + ": Temporary lookup failure, try again later", std::move(reason),
                      doorman::v1::SOURCE_ERROR);
}

std::optional<doorman::v1::Verdict> check_lookup_error(const Facts& f, Steps* steps) {
  if (f.lookup.ok()) return std::nullopt;
  if (steps) steps->push_back("lookup: directory store unavailable (" + f.lookup.message + ") -> defer");
  return temporary_failure(f, "lookup failed: " + f.lookup.message);
}

}  // namespace doorman::directory::checks
