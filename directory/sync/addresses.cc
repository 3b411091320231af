#include "directory/sync/addresses.h"

#include "smtp/address.h"

namespace doorman::directory::sync {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;  // ASCII letters and ':' only are compared
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> address_value(std::string_view attribute, std::string_view value) {
  value = trim(value);
  if (!iequals(attribute, "proxyAddresses")) {
    // A mail-like attribute; tolerate an smtp: prefix some exports add.
    if (value.size() > 5 && iequals(value.substr(0, 5), "smtp:")) value.remove_prefix(5);
    return value;
  }
  if (value.size() > 5 && iequals(value.substr(0, 5), "smtp:")) return trim(value.substr(5));
  return std::nullopt;  // X500:, X400:, SIP:, EUM:, no type at all
}

void AddressSet::add_value(std::string_view attribute, std::string_view value) {
  std::optional<std::string_view> a = address_value(attribute, value);
  if (!a) return;
  smtp::PathResult p = smtp::parse_mailbox(*a);
  if (!p.ok()) {
    ++invalid_;
    return;
  }
  std::string domain = smtp::ascii_lower(p.mailbox.domain);
  if (!domains_.count(domain)) {
    ++ignored_;
    return;
  }
  if (count_ >= max_addresses_) {
    overflowed_ = true;
    return;
  }
  if (by_domain_[domain].insert(std::move(p.mailbox.local)).second) ++count_;
}

uint64_t AddressSet::addresses() const { return count_; }

}  // namespace doorman::directory::sync
