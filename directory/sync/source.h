// An LDAP / Active Directory source (doorman.v1.LdapSource): validation and
// defaults, shared by the apply file, the admin API and the syncer.
//
// Defaults (flavor "ad", for Active Directory): scope sub, filter
//   (&(|(objectClass=user)(objectClass=group)(objectClass=publicFolder))
//     (|(mail=*)(proxyAddresses=*)))
// - users, groups and public folders with an address; with exclude_disabled
// also (!(userAccountControl:1.2.840.113556.1.4.803:=2)) - and attributes
// mail and proxyAddresses. Flavor "openldap": filter (mail=*), attribute
// mail. ldap:// uses StartTLS unless tls is "none"; ldaps:// is TLS from the
// first byte. Certificates are verified (against ca_file, or the system's
// CA store) unless tls_skip_verify. Page size 500 (AD serves at most 1000 per
// page: MaxPageSize), timeout 30 s, max_shrink 0.10.
//
// No I/O: the password file is read by the syncer at each run (a rotated
// Secret is picked up without a restart).
#pragma once

#include <string>
#include <vector>

#include "doorman/v1/admin.pb.h"

namespace doorman::directory::sync {

inline constexpr uint32_t kDefaultPageSize = 500;
inline constexpr uint32_t kMaxPageSize = 1000;
inline constexpr uint32_t kDefaultTimeoutSeconds = 30;
inline constexpr double kDefaultMaxShrink = 0.10;

// Checks `s` and fills every default in, so what is stored says what runs.
// Returns "" or what is wrong (naming the source).
std::string validate_source(doorman::v1::LdapSource* s);

// The filter for a flavor when none is given.
std::string default_filter(const std::string& flavor, bool exclude_disabled);

}  // namespace doorman::directory::sync
