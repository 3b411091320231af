#include "directory/store/normalise.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "smtp/address.h"

namespace doorman::directory::store {

std::string normalise_local(std::string_view local, bool case_sensitive, std::string_view separator) {
  if (!separator.empty()) {
    size_t at = local.find(separator);
    if (at != std::string_view::npos && at > 0) local = local.substr(0, at);
  }
  return case_sensitive ? std::string(local) : smtp::ascii_lower(local);
}

bool enforcing(const doorman::v1::Domain& domain) { return !domain.has_enforce() || domain.enforce(); }

std::string separator_of(const doorman::v1::Domain& domain) {
  return domain.has_subaddress_separator() ? domain.subaddress_separator() : std::string(kDefaultSeparator);
}

std::string normalise_local(std::string_view local, const doorman::v1::Domain& domain) {
  return normalise_local(local, domain.local_part_case_sensitive(), separator_of(domain));
}

std::vector<std::string> lookup_candidates(std::string_view local) {
  std::vector<std::string> out;
  for (bool cs : {false, true}) {
    for (std::string_view sep : {kDefaultSeparator, std::string_view()}) {
      std::string c = normalise_local(local, cs, sep);
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
    }
  }
  return out;
}

std::string mode_name(doorman::v1::DomainMode mode) {
  switch (mode) {
    case doorman::v1::DOMAIN_MODE_LIST: return "list";
    case doorman::v1::DOMAIN_MODE_CALLOUT: return "callout";
    case doorman::v1::DOMAIN_MODE_ACCEPT_ALL: return "accept-all";
    default: return "unspecified";
  }
}

bool parse_mode(std::string_view text, doorman::v1::DomainMode* out) {
  if (text == "list") *out = doorman::v1::DOMAIN_MODE_LIST;
  else if (text == "callout") *out = doorman::v1::DOMAIN_MODE_CALLOUT;
  else if (text == "accept-all" || text == "accept_all") *out = doorman::v1::DOMAIN_MODE_ACCEPT_ALL;
  else return false;
  return true;
}

std::string validate_route(std::string_view route) {
  size_t colon = route.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "route '" + std::string(route) + "' is not host:port";
  std::string_view host = route.substr(0, colon), port = route.substr(colon + 1);
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535)
    return "route '" + std::string(route) + "': port must be 1..65535";
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return "route '" + std::string(route) + "': bad IPv6 literal";
    for (char c : host.substr(1, host.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        return "route '" + std::string(route) + "': bad IPv6 literal";
    return "";
  }
  if (!smtp::is_valid_domain(host) || host.front() == '[')
    return "route '" + std::string(route) + "': bad host name";
  return "";
}

std::string normalise_domain_name(std::string_view name, std::string* out) {
  if (name.empty()) return "domain name is empty";
  if (name.front() == '[' || !smtp::is_valid_domain(name)) return "invalid domain name '" + std::string(name) + "'";
  *out = smtp::ascii_lower(name);
  return "";
}

}  // namespace doorman::directory::store
