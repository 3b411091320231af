// The facts a recipient check decides on, and the shape of a check.
//
// Facts are fetched once per recipient group (store::fetch_group) and then
// handed to pure checks; no check does I/O. A check returns a verdict when
// it decides, or nothing to let the next check run (Postfix's "an error
// reply, or nothing"), and appends one human-readable line to `steps` saying
// what it looked at: Explain shows those lines, so it cannot drift from
// CheckRecipients.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "directory/store/callout_cache.h"
#include "directory/store/status.h"
#include "doorman/v1/admin.pb.h"
#include "doorman/v1/recipient.pb.h"
#include "smtp/address.h"

namespace doorman::directory::checks {

struct Facts {
  std::string address;               // as the client gave it
  smtp::PathResult parsed;           // smtp::parse_mailbox(address)
  std::string domain;                // lower-cased domain, when parsed
  Status lookup;                     // the Redis fetch; not ok = no facts below
  std::optional<doorman::v1::Domain> config;  // nullopt: domain not guarded
  // The group's facts about this recipient's key (store::normalise_local),
  // not the whole group's: copying those per recipient was the directory's
  // largest allocation cost.
  std::set<std::string> asked;       // the key, if it was looked up
  std::set<std::string> listed;      // ... and found in the domain's list
  std::map<std::string, store::CacheEntry> cached;  // its callout result, if cached
  std::optional<store::CacheEntry> catch_all;       // the domain's catch-all status
  // When the checks run and when cached callout results are due for a
  // refresh (from the directory's options; see callout/settings.h).
  int64_t now_ms = 0;
  int64_t positive_refresh_ms = 24LL * 3600 * 1000;
  int64_t negative_refresh_ms = 10LL * 60 * 1000;
  int64_t catch_all_refresh_ms = 3600LL * 1000;
};

// What the callout check needs done besides its verdict (the service does
// it; the checks stay pure).
struct CalloutPlan {
  bool applies = false;      // the callout check decided
  std::string key;           // normalised local part
  bool probe = false;        // not cached: probe now and wait within the budget
  bool refresh = false;      // cached but due: one background probe
  bool domain_probe = false; // catch-all status unknown or due
};

using Steps = std::vector<std::string>;
// `steps` is null when nobody will read them (CheckRecipients): a check then
// builds no step line, which on the hot path cost more than the checks.
using Check = std::optional<doorman::v1::Verdict> (*)(const Facts&, Steps*);

// Verdict builders shared by the checks.
// `why` is the typed reason (recipient.proto Reason) the edge logs.
doorman::v1::Verdict make_verdict(doorman::v1::Decision decision, unsigned code, std::string enhanced,
                                  std::string text, std::string reason, doorman::v1::Source source,
                                  doorman::v1::Reason why);
// An ACCEPT carrying the domain's routes and name.
doorman::v1::Verdict make_accept(const Facts& f, std::string reason, doorman::v1::Source source,
                                 doorman::v1::Reason why);
// "<local@domain>" in canonical form, for reply texts.
std::string bracketed(const Facts& f);

}  // namespace doorman::directory::checks
