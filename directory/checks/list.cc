// Check: a domain in list mode accepts exactly the local parts in its list,
// after normalisation (store/normalise.h): unknown -> 550 5.1.1, or 451 4.3.0
// while the domain waits for its first LDAP sync (ldap_sync_pending).
#include "directory/checks/checks.h"

#include "directory/store/normalise.h"

namespace doorman::directory::checks {
namespace {

// A list verdict names the LDAP sources the list was synced from (the
// decision log's source_name), when it was.
doorman::v1::Verdict with_sources(doorman::v1::Verdict v, const doorman::v1::Domain& config) {
  std::string names;
  for (const auto& n : config.ldap_sources()) names += (names.empty() ? "" : ",") + n;
  if (!names.empty()) v.set_source_name("ldap:" + names);
  return v;
}

}  // namespace

std::optional<doorman::v1::Verdict> check_list(const Facts& f, Steps* steps) {
  if (f.config->mode() != doorman::v1::DOMAIN_MODE_LIST) return std::nullopt;
  std::string key = store::normalise_local(f.parsed.mailbox.local, *f.config);
  if (!f.asked.count(key)) {
    if (steps) steps->push_back("list: '" + key + "' was not looked up -> defer");
    return temporary_failure(f, "internal: list key not fetched");
  }
  if (f.listed.count(key)) {
    if (steps) steps->push_back("list: '" + key + "' is in the list of " + f.domain + " -> accept");
    return with_sources(make_accept(f, "in list of " + f.domain, doorman::v1::SOURCE_LIST, doorman::v1::REASON_LISTED),
                        *f.config);
  }
  if (f.config->ldap_sync_pending()) {
    if (steps) steps->push_back("list: '" + key + "' is not in the list of " + f.domain + ", whose first LDAP sync has not "
                                "succeeded yet -> defer");
    return not_configured(f, "list of " + f.domain + " waits for its first LDAP sync");
  }
  if (f.config->callout_fallback()) {
    if (steps) steps->push_back("list: '" + key + "' is not in the list of " + f.domain + ", callout fallback -> ask the back-end");
    return std::nullopt;
  }
  if (steps) steps->push_back("list: '" + key + "' is not in the list of " + f.domain + " -> reject");
  return with_sources(make_verdict(doorman::v1::DECISION_REJECT, 550, "5.1.1",
                                   bracketed(f) + ": Recipient address rejected: User unknown",
                                   "not in list of " + f.domain, doorman::v1::SOURCE_LIST,
                                   doorman::v1::REASON_NOT_LISTED),
                      *f.config);
}

}  // namespace doorman::directory::checks
