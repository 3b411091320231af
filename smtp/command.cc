#include "smtp/command.h"

#include <array>
#include <utility>

namespace doorman::smtp {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

Command parse_command(std::string_view line) {
  static constexpr std::array<std::pair<std::string_view, Verb>, 15> kVerbs{{
      {"EHLO", Verb::kEhlo}, {"HELO", Verb::kHelo}, {"MAIL", Verb::kMail}, {"RCPT", Verb::kRcpt},
      {"DATA", Verb::kData}, {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop}, {"QUIT", Verb::kQuit},
      {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn}, {"HELP", Verb::kHelp}, {"TURN", Verb::kTurn},
      {"STARTTLS", Verb::kStartTls}, {"BDAT", Verb::kBdat}, {"AUTH", Verb::kAuth},
  }};
  Command c;
  size_t sp = line.find(' ');
  std::string_view word = line.substr(0, sp);
  for (const auto& [name, verb] : kVerbs) {
    if (iequals(word, name)) {
      c.verb = verb;
      break;
    }
  }
  if (sp != std::string_view::npos) {
    std::string_view arg = line.substr(sp + 1);
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
    while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
    c.arg = arg;
  }
  return c;
}

PathArg parse_path_arg(std::string_view arg, std::string_view prefix) {
  PathArg out;
  if (arg.size() < prefix.size() || !iequals(arg.substr(0, prefix.size()), prefix)) {
    out.error = ArgError::kBadPrefix;
    return out;
  }
  arg.remove_prefix(prefix.size());
  if (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  out.path = parse_path(arg);
  if (!out.path.ok()) {
    out.error = ArgError::kAddress;
    return out;
  }
  std::string_view rest = out.path.rest;
  if (!rest.empty() && rest.front() != ' ') {
    out.error = ArgError::kBadParam;
    return out;
  }
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    size_t sp = rest.find(' ');
    std::string_view p = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp);
    size_t eq = p.find('=');
    Param param{p.substr(0, eq), eq == std::string_view::npos ? std::string_view() : p.substr(eq + 1)};
    if (param.keyword.empty()) {
      out.error = ArgError::kBadParam;
      return out;
    }
    for (char c : param.keyword) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        out.error = ArgError::kBadParam;
        return out;
      }
    }
    out.params.push_back(param);
  }
  return out;
}

}  // namespace doorman::smtp
