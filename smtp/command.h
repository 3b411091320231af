// SMTP command parsing (RFC 5321 §4.1.1). Sans-I/O: takes one command line
// (without its CRLF) and returns the verb and its argument; MAIL and RCPT
// arguments are parsed further into a path and ESMTP parameters (§4.1.2).
//
// Sees untrusted bytes. Never throws. The caller enforces the line length
// limit (512 octets, §4.5.3.1.4) before calling.
#pragma once

#include <string_view>
#include <vector>

#include "smtp/address.h"

namespace doorman::smtp {

enum class Verb {
  kEhlo, kHelo, kMail, kRcpt, kData, kRset, kNoop, kQuit, kVrfy, kExpn,
  kHelp, kTurn, kStartTls, kBdat, kAuth, kUnknown,
};

struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view arg;  // text after the verb and its separating space(s)
};

Command parse_command(std::string_view line);

struct Param {
  std::string_view keyword;  // as given; compare case-insensitively
  std::string_view value;    // empty when the parameter has no "=value"
};

enum class ArgError {
  kNone,
  kBadPrefix,  // not "FROM:" / "TO:": 501 5.5.4
  kAddress,    // see path.error
  kBadParam,   // malformed parameter list: 501 5.5.4
};

struct PathArg {
  ArgError error = ArgError::kNone;
  PathResult path;
  std::vector<Param> params;
  bool ok() const { return error == ArgError::kNone; }
};

// Parses the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path>
// params"). `prefix` is "FROM:" or "TO:". One optional space after the colon
// is tolerated, as common clients send it.
PathArg parse_path_arg(std::string_view arg, std::string_view prefix);

bool iequals(std::string_view a, std::string_view b);

}  // namespace doorman::smtp
