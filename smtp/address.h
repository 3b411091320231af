// SMTP address parsing (RFC 5321 §4.1.2, §4.5.3.1): paths as they appear in
// MAIL FROM and RCPT TO, and bare mailboxes ("local@domain").
//
// Sees untrusted bytes from SMTP clients. Never throws, never allocates more
// than the input size; limits: local part 64 octets, domain 255, path 256
// (RFC 5321 §4.5.3.1.1-3). Source routes ("<@a,@b:user@host>") are parsed
// and dropped, as §4.1.1.3 allows. Address literals ("[192.0.2.1]",
// "[IPv6:...]") are accepted syntactically.
//
// Non-ASCII octets are reported as such (error kNonAscii) because Doorman does
// not offer SMTPUTF8: the caller replies 553 5.6.7 / 550 5.6.7.
#pragma once

#include <string>
#include <string_view>

namespace doorman::smtp {

// A parsed mailbox. `local` is the decoded local part: quotes and
// backslash-escapes removed. `domain` is as given (case preserved).
struct Mailbox {
  std::string local;
  std::string domain;

  // Canonical "local@domain": the local part is quoted when it is not a valid
  // dot-string (RFC 5321 §4.1.2), so str() parses back to the same mailbox.
  std::string str() const;
  bool operator==(const Mailbox&) const = default;
};

enum class AddressError {
  kNone,
  kSyntax,    // malformed: 501 5.1.3 (or 501 5.5.4 for the path brackets)
  kTooLong,   // local > 64, domain > 255, path > 256
  kNonAscii,  // needs SMTPUTF8, which we do not offer
};

struct PathResult {
  AddressError error = AddressError::kNone;
  bool null_path = false;  // "<>"
  Mailbox mailbox;         // valid when !null_path and error == kNone
  std::string_view rest;   // text after the closing '>' (ESMTP parameters)
  bool ok() const { return error == AddressError::kNone; }
};

// Parses a path starting at in[0] == '<'. Leading spaces are not skipped.
// `rest` is what follows '>' (with its leading space, if any).
PathResult parse_path(std::string_view in);

// Parses "local@domain" with nothing around it.
PathResult parse_mailbox(std::string_view in);

// True for a syntactically valid domain name (RFC 5321 "Domain") or an
// address literal.
bool is_valid_domain(std::string_view d);

// ASCII lower-casing, used for domains and case-insensitive local parts.
std::string ascii_lower(std::string_view s);

}  // namespace doorman::smtp
