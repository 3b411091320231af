// Check: when the Redis fetch failed we know nothing, so we defer
// (451 4.4.3). Never a 5xx for our own trouble: the client retries later.
// A store without its marker (store/keys.h "configured": Redis lost its
// data) is our trouble too: 451 4.3.0, never the 550s an empty store would
// otherwise give every recipient.
#include "directory/checks/checks.h"

namespace doorman::directory::checks {

doorman::v1::Verdict temporary_failure(const Facts& f, std::string reason) {
  return make_verdict(doorman::v1::DECISION_DEFER, 451, "4.4.3",
                      bracketed(f) + ": Temporary lookup failure, try again later", std::move(reason),
                      doorman::v1::SOURCE_ERROR, doorman::v1::REASON_LOOKUP_ERROR);
}

doorman::v1::Verdict not_configured(const Facts& f, std::string reason) {
  return make_verdict(doorman::v1::DECISION_DEFER, 451, "4.3.0",
                      bracketed(f) + ": Temporary lookup failure, try again later", std::move(reason),
                      doorman::v1::SOURCE_ERROR, doorman::v1::REASON_NOT_CONFIGURED);
}

std::optional<doorman::v1::Verdict> check_lookup_error(const Facts& f, Steps* steps) {
  if (f.lookup.ok()) return std::nullopt;
  if (f.lookup.code == Code::kFailedPrecondition) {
    if (steps) steps->push_back("lookup: the directory store is not configured (" + f.lookup.message + ") -> defer");
    return not_configured(f, f.lookup.message);
  }
  if (steps) steps->push_back("lookup: directory store unavailable (" + f.lookup.message + ") -> defer");
  return temporary_failure(f, "lookup failed: " + f.lookup.message);
}

}  // namespace doorman::directory::checks
