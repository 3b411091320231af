// A list of IP networks in CIDR notation ("10.0.0.0/8, 2001:db8::/32,
// 127.0.0.1"), and whether an address belongs to one of them. Used by the
// edge to accept PROXY protocol headers only from trusted sources (the load
// balancers), never from any client that connects (issue #12).
//
// Parsing is strict: inet_pton for the address, a decimal prefix within the
// family's width, host bits must be zero ("10.0.0.1/8" is a typo, refused).
// IPv4-mapped IPv6 addresses match IPv4 networks. Pure; no I/O.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace doorman {

struct Network {
  bool v4 = true;
  std::array<unsigned char, 16> bytes{};  // v4: first 4 used
  int prefix = 32;
};

class NetworkList {
 public:
  // Parses a comma- or space-separated list; returns "" or what is wrong.
  std::string parse(std::string_view text);
  // True when `ip` (plain IPv4 or IPv6 text) is inside one of the networks.
  bool contains(std::string_view ip) const;
  bool empty() const { return networks_.empty(); }
  size_t size() const { return networks_.size(); }

 private:
  std::vector<Network> networks_;
};

}  // namespace doorman
