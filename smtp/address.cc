#include "smtp/address.h"

#include <cstddef>

namespace doorman::smtp {
namespace {

constexpr size_t kMaxLocal = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxPath = 256;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_let_dig(char c) { return is_alpha(c) || is_digit(c); }

// RFC 5322 atext.
bool is_atext(char c) {
  if (is_let_dig(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '/': case '=': case '?': case '^': case '_':
    case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool has_non_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

bool is_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

bool is_domain_name(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomain) return false;
  size_t start = 0;
  while (start <= d.size()) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (!is_let_dig(label.front()) || !is_let_dig(label.back())) return false;
    for (char c : label)
      if (!is_let_dig(c) && c != '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = i;
    int value = 0;
    while (j < s.size() && is_digit(s[j]) && j - i < 3) value = value * 10 + (s[j++] - '0');
    if (j == i || value > 255) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool is_address_literal(std::string_view d) {
  if (d.size() < 3 || d.front() != '[' || d.back() != ']') return false;
  std::string_view inner = d.substr(1, d.size() - 2);
  if (is_ipv4(inner)) return true;
  // IPv6 and general literals: "tag:content", content of dcontent (33-90, 94-126).
  size_t colon = inner.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (size_t i = 0; i < colon; ++i)
    if (!is_let_dig(inner[i]) && inner[i] != '-') return false;
  std::string_view content = inner.substr(colon + 1);
  if (content.empty()) return false;
  for (char c : content) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == '[' || c == '\\' || c == ']') return false;
  }
  return true;
}

// Parses a local part at the start of `in`. On success sets `decoded` and
// returns the number of octets consumed; 0 on error.
size_t parse_local(std::string_view in, std::string& decoded) {
  decoded.clear();
  if (in.empty()) return 0;
  if (in.front() == '"') {
    size_t i = 1;
    while (i < in.size()) {
      char c = in[i];
      auto u = static_cast<unsigned char>(c);
      if (c == '"') return i + 1;
      if (c == '\\') {
        if (i + 1 >= in.size()) return 0;
        auto n = static_cast<unsigned char>(in[i + 1]);
        if (n < 32 || n > 126) return 0;
        decoded.push_back(in[i + 1]);
        i += 2;
        continue;
      }
      if (u < 32 || u > 126) return 0;
      decoded.push_back(c);
      ++i;
    }
    return 0;  // unterminated
  }
  size_t i = 0;
  while (i < in.size() && (is_atext(in[i]) || in[i] == '.')) ++i;
  std::string_view dot = in.substr(0, i);
  if (!is_dot_string(dot)) return 0;
  decoded.assign(dot);
  return i;
}

// Parses "local@domain" that must fill `in` entirely.
PathResult parse_mailbox_exact(std::string_view in) {
  PathResult r;
  if (has_non_ascii(in)) {
    r.error = AddressError::kNonAscii;
    return r;
  }
  size_t used = parse_local(in, r.mailbox.local);
  if (used == 0 || used >= in.size() || in[used] != '@') {
    r.error = AddressError::kSyntax;
    return r;
  }
  std::string_view domain = in.substr(used + 1);
  if (!is_valid_domain(domain)) {
    r.error = domain.size() > kMaxDomain ? AddressError::kTooLong : AddressError::kSyntax;
    return r;
  }
  // The limit applies to the local part as written on the wire.
  if (used > kMaxLocal) {
    r.error = AddressError::kTooLong;
    return r;
  }
  r.mailbox.domain.assign(domain);
  return r;
}

}  // namespace

bool is_valid_domain(std::string_view d) {
  if (d.empty()) return false;
  if (d.front() == '[') return is_address_literal(d);
  return is_domain_name(d);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string Mailbox::str() const {
  if (is_dot_string(local)) return local + "@" + domain;
  std::string out = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out += "\"@";
  out += domain;
  return out;
}

PathResult parse_mailbox(std::string_view in) { return parse_mailbox_exact(in); }

PathResult parse_path(std::string_view in) {
  PathResult r;
  if (in.empty() || in.front() != '<') {
    r.error = AddressError::kSyntax;
    return r;
  }
  // Find the closing '>' outside a quoted string.
  size_t close = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 1; i < in.size(); ++i) {
    char c = in[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '>') {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) {
    r.error = AddressError::kSyntax;
    return r;
  }
  if (close + 1 > kMaxPath) {
    r.error = AddressError::kTooLong;
    return r;
  }
  r.rest = in.substr(close + 1);
  std::string_view inner = in.substr(1, close - 1);
  if (inner.empty()) {
    r.null_path = true;
    return r;
  }
  // Source route: "@a,@b:" — parsed for validity, then ignored.
  if (inner.front() == '@') {
    size_t colon = inner.find(':');
    if (colon == std::string_view::npos) {
      r.error = AddressError::kSyntax;
      return r;
    }
    std::string_view adl = inner.substr(0, colon);
    size_t start = 0;
    while (start < adl.size()) {
      size_t comma = adl.find(',', start);
      std::string_view at_domain = adl.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (at_domain.size() < 2 || at_domain.front() != '@' || !is_valid_domain(at_domain.substr(1))) {
        r.error = has_non_ascii(at_domain) ? AddressError::kNonAscii : AddressError::kSyntax;
        return r;
      }
      if (comma == std::string_view::npos) break;
      start = comma + 1;
      if (start == adl.size()) {
        r.error = AddressError::kSyntax;
        return r;
      }
    }
    inner = inner.substr(colon + 1);
  }
  PathResult m = parse_mailbox_exact(inner);
  m.rest = r.rest;
  return m;
}

}  // namespace doorman::smtp
