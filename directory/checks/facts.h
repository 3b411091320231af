// The facts a recipient check decides on, and the shape of a check.
//
// Facts are fetched once per recipient group (store::fetch_group) and then
// handed to pure checks; no check does I/O. A check returns a verdict when
// it decides, or nothing to let the next check run (Postfix's "an error
// reply, or nothing"), and appends one human-readable line to `steps` saying
// what it looked at: Explain shows those lines, so it cannot drift from
// CheckRecipients.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

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
  std::set<std::string> asked;       // candidate local parts looked up
  std::set<std::string> listed;      // ... and found in the domain's list
};

using Steps = std::vector<std::string>;
using Check = std::optional<doorman::v1::Verdict> (*)(const Facts&, Steps*);

// Verdict builders shared by the checks.
doorman::v1::Verdict make_verdict(doorman::v1::Decision decision, unsigned code, std::string enhanced,
                                  std::string text, std::string reason, doorman::v1::Source source);
// An ACCEPT carrying the domain's routes and name.
doorman::v1::Verdict make_accept(const Facts& f, std::string reason, doorman::v1::Source source);
// "<local@domain>" in canonical form, for reply texts.
std::string bracketed(const Facts& f);

}  // namespace doorman::directory::checks
