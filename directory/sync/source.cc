#include "directory/sync/source.h"

#include <set>

#include "directory/store/normalise.h"

namespace doorman::directory::sync {

std::string default_filter(const std::string& flavor, bool exclude_disabled) {
  if (flavor == "openldap") return "(mail=*)";
  std::string f = "(&(|(objectClass=user)(objectClass=group)(objectClass=publicFolder))(|(mail=*)(proxyAddresses=*))";
  if (exclude_disabled) f += "(!(userAccountControl:1.2.840.113556.1.4.803:=2))";
  return f + ")";
}

std::string validate_source(doorman::v1::LdapSource* s) {
  const std::string& n = s->name();
  if (n.empty() || n.size() > 64) return "source name must have 1 to 64 characters";
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return "source name '" + n + "': only a-z 0-9 - _ . allowed";
  const std::string where = "source " + n + ": ";
  const std::string& url = s->url();
  const bool ldaps = url.rfind("ldaps://", 0) == 0;
  if (!ldaps && url.rfind("ldap://", 0) != 0) return where + "url must start with ldap:// or ldaps://";
  std::string host = url.substr(ldaps ? 8 : 7);
  if (!host.empty() && host.back() == '/') host.pop_back();
  if (host.empty() || host.find_first_of("/?, ") != std::string::npos)
    return where + "url must be ldap[s]://host[:port] (one server, no DN or options)";
  if (s->tls().empty()) s->set_tls(ldaps ? "ldaps" : "starttls");
  if (ldaps && s->tls() != "ldaps") return where + "tls must be empty or 'ldaps' for an ldaps:// url";
  if (!ldaps && s->tls() != "starttls" && s->tls() != "none")
    return where + "tls must be 'starttls' (default) or 'none' for an ldap:// url";
  if (s->bind_dn().empty() != s->bind_password_file().empty())
    return where + "bind_dn and bind_password_file go together (both empty = anonymous)";
  if (s->base_dn().empty()) return where + "base_dn is required";
  if (s->scope().empty()) s->set_scope("sub");
  if (s->scope() != "sub" && s->scope() != "one" && s->scope() != "base")
    return where + "scope must be sub, one or base";
  if (s->flavor().empty()) s->set_flavor("ad");
  if (s->flavor() != "ad" && s->flavor() != "openldap") return where + "flavor must be ad or openldap";
  if (s->exclude_disabled() && s->flavor() != "ad") return where + "exclude_disabled needs flavor ad";
  if (s->filter().empty()) s->set_filter(default_filter(s->flavor(), s->exclude_disabled()));
  if (s->filter().front() != '(' || s->filter().back() != ')') return where + "filter must be in parentheses";
  if (s->attributes().empty()) {
    s->add_attributes("mail");
    if (s->flavor() == "ad") s->add_attributes("proxyAddresses");
  }
  for (const auto& a : s->attributes())
    if (a.empty() || a.find_first_of(" ,()") != std::string::npos) return where + "bad attribute name '" + a + "'";
  if (s->domains().empty()) return where + "domains must name at least one domain";
  std::set<std::string> seen;
  for (auto& d : *s->mutable_domains()) {
    std::string name;
    std::string err = store::normalise_domain_name(d, &name);
    if (!err.empty()) return where + err;
    if (!seen.insert(name).second) return where + "domain " + name + " listed twice";
    d = name;
  }
  if (s->max_shrink() == 0) s->set_max_shrink(kDefaultMaxShrink);
  if (!(s->max_shrink() > 0 && s->max_shrink() <= 1)) return where + "max_shrink must be in (0, 1]";
  if (s->page_size() == 0) s->set_page_size(kDefaultPageSize);
  if (s->page_size() > kMaxPageSize) return where + "page_size must be at most 1000";
  if (s->timeout_seconds() == 0) s->set_timeout_seconds(kDefaultTimeoutSeconds);
  if (s->timeout_seconds() > 3600) return where + "timeout_seconds must be at most 3600";
  return "";
}

}  // namespace doorman::directory::sync
