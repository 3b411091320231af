// Normalisation of guarded domains and local parts, shared by lookups
// (CheckRecipients, Explain) and writes (add, import, replace), so a stored
// entry and a looked-up address always compare equal under the same rules.
//
// Rules, per domain:
//   - the domain is ASCII lower-cased;
//   - the local part is ASCII lower-cased unless the domain is case-sensitive
//     (RFC 5321 §2.4 allows case-sensitive local parts; most back-ends are
//     not);
//   - with a sub-address separator (default "+", "" = off), "user+tag" is
//     looked up as "user": the local part is cut at the first separator,
//     unless that would leave it empty ("+tag" stays "+tag").
// Local parts are the decoded form from smtp::parse_mailbox (quotes and
// escapes removed). Pure functions; no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "doorman/v1/admin.pb.h"

namespace doorman::directory::store {

inline constexpr std::string_view kDefaultSeparator = "+";

std::string normalise_local(std::string_view local, bool case_sensitive, std::string_view separator);

// The local part as the given domain stores it.
std::string normalise_local(std::string_view local, const doorman::v1::Domain& domain);

// The separator a domain uses: its own, or the default when unset.
std::string separator_of(const doorman::v1::Domain& domain);

// Whether a domain enforces its verdicts: `enforce` true or absent (the
// default). False is shadow mode (issue #14, checks/shadow.cc).
bool enforcing(const doorman::v1::Domain& domain);

// Every form a local part may take before the domain's options are known:
// both case modes, with and without cutting at the default separator (at
// most 4, duplicates removed). A domain with another separator needs one
// more lookup (see store.h).
std::vector<std::string> lookup_candidates(std::string_view local);

// "list", "callout", "accept-all" and back; parse returns false otherwise.
std::string mode_name(doorman::v1::DomainMode mode);
bool parse_mode(std::string_view text, doorman::v1::DomainMode* out);

// Validates a back-end route "host:port": host a domain name, an IPv4
// address or a bracketed IPv6 address; port 1..65535. Returns "" or an error.
std::string validate_route(std::string_view route);

// Validates and lower-cases a guarded domain name. Returns "" or an error.
std::string normalise_domain_name(std::string_view name, std::string* out);

}  // namespace doorman::directory::store
