// Addresses from LDAP attribute values, split by domain (sans-I/O).
//
// `mail` (and any other attribute but proxyAddresses) holds one address;
// AD's `proxyAddresses` holds "TYPE:value" strings, of which only SMTP
// (the primary, "SMTP:") and smtp (secondary, "smtp:") are addresses; X500:,
// X400:, SIP:, EUM: and the rest are ignored. Values are untrusted text:
// each is parsed with smtp::parse_mailbox and counted as invalid when it is
// not an address. Only the source's domains are kept (one query feeds
// several domains); the others are counted as ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

namespace doorman::directory::sync {

// The address in one value of `attribute`, or nullopt when the value is of
// another type (X500:...). The address is not validated here.
std::optional<std::string_view> address_value(std::string_view attribute, std::string_view value);

// A source's result is held in memory; past this many addresses it is
// refused (a base DN or filter far too wide), not applied.
inline constexpr uint64_t kMaxAddressesPerSource = 5'000'000;

// Local parts (as found; normalised per domain later), by lower-cased domain.
class AddressSet {
 public:
  explicit AddressSet(std::set<std::string> domains, uint64_t max_addresses = kMaxAddressesPerSource)
      : domains_(std::move(domains)), max_addresses_(max_addresses) {}

  void add_value(std::string_view attribute, std::string_view value);
  // More than max_addresses were offered: the set stopped growing and must not be used.
  bool overflowed() const { return overflowed_; }

  const std::map<std::string, std::unordered_set<std::string>>& by_domain() const { return by_domain_; }
  uint64_t addresses() const;
  uint64_t ignored() const { return ignored_; }   // valid, but of a domain not fed
  uint64_t invalid() const { return invalid_; }   // not an address

 private:
  std::set<std::string> domains_;
  std::map<std::string, std::unordered_set<std::string>> by_domain_;
  uint64_t max_addresses_;
  uint64_t count_ = 0;
  bool overflowed_ = false;
  uint64_t ignored_ = 0;
  uint64_t invalid_ = 0;
};

}  // namespace doorman::directory::sync
