#include "common/networks.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace doorman {

namespace {

// Parses a plain address into (v4, bytes); false when it is not one.
bool parse_address(std::string_view text, bool* v4, std::array<unsigned char, 16>* bytes) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  bytes->fill(0);
  in_addr a4{};
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    *v4 = true;
    std::memcpy(bytes->data(), &a4, 4);
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, buf, &a6) != 1) return false;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a6.s6_addr, kMapped, sizeof kMapped) == 0) {
    *v4 = true;
    std::memcpy(bytes->data(), a6.s6_addr + 12, 4);
    return true;
  }
  *v4 = false;
  std::memcpy(bytes->data(), a6.s6_addr, 16);
  return true;
}

bool prefix_matches(const std::array<unsigned char, 16>& a, const std::array<unsigned char, 16>& b, int prefix) {
  int full = prefix / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(full)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[static_cast<size_t>(full)] & mask) == (b[static_cast<size_t>(full)] & mask);
}

}  // namespace

std::string NetworkList::parse(std::string_view text) {
  networks_.clear();
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\t')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ' && text[j] != '\t') ++j;
    if (j == i) break;
    std::string_view item = text.substr(i, j - i);
    i = j;
    Network n;
    std::string_view addr = item;
    int prefix = -1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      addr = item.substr(0, slash);
      std::string_view p = item.substr(slash + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
      if (p.empty() || p[0] < '0' || p[0] > '9' || ec != std::errc() || ptr != p.data() + p.size())
        return "bad network '" + std::string(item) + "': prefix is not a number";
    }
    if (!parse_address(addr, &n.v4, &n.bytes)) return "bad network '" + std::string(item) + "': not an IP address";
    const int width = n.v4 ? 32 : 128;
    if (prefix < 0) prefix = width;
    if (prefix > width) return "bad network '" + std::string(item) + "': prefix longer than the address";
    n.prefix = prefix;
    std::array<unsigned char, 16> masked{};
    for (int bit = 0; bit < prefix; ++bit)
      if (n.bytes[static_cast<size_t>(bit / 8)] & (0x80u >> (bit % 8)))
        masked[static_cast<size_t>(bit / 8)] |= static_cast<unsigned char>(0x80u >> (bit % 8));
    if (masked != n.bytes) return "bad network '" + std::string(item) + "': host bits set after the prefix";
    networks_.push_back(n);
  }
  return "";
}

bool NetworkList::contains(std::string_view ip) const {
  bool v4 = false;
  std::array<unsigned char, 16> bytes{};
  if (!parse_address(ip, &v4, &bytes)) return false;
  for (const Network& n : networks_)
    if (n.v4 == v4 && prefix_matches(n.bytes, bytes, n.prefix)) return true;
  return false;
}

}  // namespace doorman
