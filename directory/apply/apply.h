// Declarative configuration: a domains.yaml file applied through the admin
// API, and the address-file helpers shared with `doormanctl import`.
//
// load() parses and validates the whole file before anything is written:
// names, modes, routes, options, inline addresses and every line of every
// address file (paths relative to the YAML file). Errors name the file and
// line. apply() then makes the directory match: creates or updates domains,
// replaces each domain's list (streamed in chunks; memory is one chunk),
// deletes domains that are not in the file, and prints what changed, or "no
// changes". Top-level `ldap_sources` are put, changed or deleted the same
// way (PutSyncSource / DeleteSyncSource). It talks only to the AdminService stub, so doormanctl (over the
// network) and doorman-directory --apply (in-process channel) share it.
//
// Limits: a --dry-run compares lists in memory (it reads the live lists with
// ListAddresses); a line whose first non-blank character is '#' is a
// comment, so a local part cannot start with '#' in a file.
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "doorman/v1/admin.grpc.pb.h"

namespace doorman::directory::apply {

inline constexpr size_t kChunkSize = 1000;

struct DomainSpec {
  doorman::v1::Domain domain;            // validated; separator always set
  std::vector<std::string> addresses;    // inline, as full "local@domain"
  std::vector<std::string> address_files;  // resolved paths
  int line = 0;
};

struct Config {
  std::string path;
  std::vector<DomainSpec> domains;
  // LDAP / Active Directory sources (issue #14), validated and with their
  // defaults filled in (sync/source.h). A domain they feed takes its list
  // from them only: apply does not replace it.
  std::vector<doorman::v1::LdapSource> sources;
};

// Parses one entry of an address list or file. With `domain` set, a bare
// local part gets "@domain" and an address of another domain is an error.
// Returns "" and sets *full (canonical "local@domain"), or an error.
std::string parse_address_entry(std::string_view text, const std::string& domain, std::string* full);

// Reads an address file ("-" = stdin) line by line: blank lines and '#'
// comment lines skipped, CR LF accepted. Calls fn(line_number, text) for
// each entry; fn returns false to stop. Returns "" or an I/O error.
std::string for_each_line(const std::string& path, const std::function<bool(int, std::string_view)>& fn);

// Loads and validates `path`; all problems go to *errors ("file:line: ...").
bool load(const std::string& path, Config* out, std::vector<std::string>* errors);

struct Io {
  std::ostream& out;
  std::ostream& err;
  std::chrono::milliseconds timeout{10000};  // per unary call
};

// Returns 0 on success, 1 when an operation failed. A config without
// domains would delete every domain: it is refused (1, nothing done) unless
// `allow_empty`.
int apply(doorman::v1::AdminService::StubInterface& stub, const Config& config, bool dry_run, Io io,
          bool allow_empty = false);
// The message of that refusal.
std::string empty_refusal(const std::string& path);

// The warning printed for accept-all domains.
std::string accept_all_warning(const std::string& domain);

}  // namespace doorman::directory::apply
