// Reads every address-bearing entry of one LDAP source with OpenLDAP's
// client library (libldap), page by page.
//
// Connects to the source's url (ldaps://, or ldap:// and then StartTLS unless
// tls is "none"), verifies the server certificate against ca_file (or the
// system's CA store) unless tls_skip_verify, binds with bind_dn and the
// password given (simple bind; anonymous when bind_dn is empty), and runs
// ldap_search_ext with the simple paged results control (RFC 2696) of
// page_size entries, following the server's cookie until it is empty.
// Referrals are not chased (AD answers continuation references for other
// naming contexts; they are counted and skipped).
//
// SECURITY: talks to an LDAP server; every value it returns is untrusted and
// goes through AddressSet (smtp::parse_mailbox). Limits: timeout_seconds on
// connect and on each operation (bind, StartTLS, each page); page_size at
// most 1000. Anything short of a complete result (a server error, a size or
// time limit, a broken connection, a false from `on_page`) is an error: a
// partial result is never returned as if it were whole. The caller bounds
// what it keeps (AddressSet, kMaxAddressesPerSource) and stops via on_page.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "directory/store/status.h"
#include "doorman/v1/admin.pb.h"

namespace doorman::directory::sync {

struct FetchStats {
  uint64_t entries = 0;
  uint64_t pages = 0;
  uint64_t references = 0;
};

// Called with every value of every requested attribute.
using ValueSink = std::function<void(std::string_view attribute, std::string_view value)>;
// Called after each page; false aborts the search (e.g. the lease was lost).
using PageHook = std::function<bool(const FetchStats&)>;

// `source` must have passed validate_source. kUnavailable on any failure,
// with the server's diagnostic ("Invalid credentials", "Can't contact LDAP
// server", ...).
Status fetch_source(const doorman::v1::LdapSource& source, const std::string& password, const ValueSink& sink,
                    const PageHook& on_page, FetchStats* stats);

}  // namespace doorman::directory::sync
