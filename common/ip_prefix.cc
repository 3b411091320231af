#include "common/ip_prefix.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace doorman {

std::string client_identity(std::string_view ip, int v6_prefix) {
  // INET6_ADDRSTRLEN (46) covers the longest text form; anything longer is
  // not an address.
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN || ip.find('\0') != std::string_view::npos) return "";
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, ip.data(), ip.size());
  char out[INET6_ADDRSTRLEN] = {};

  in_addr v4{};
  if (inet_pton(AF_INET, text, &v4) == 1) {
    if (!inet_ntop(AF_INET, &v4, out, sizeof out)) return "";
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text, &v6) != 1) return "";
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0) {
    std::memcpy(&v4, v6.s6_addr + 12, 4);
    if (!inet_ntop(AF_INET, &v4, out, sizeof out)) return "";
    return out;
  }
  const int prefix = std::clamp(v6_prefix, 0, 128);
  for (int bit = prefix; bit < 128; ++bit)
    v6.s6_addr[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  if (!inet_ntop(AF_INET6, &v6, out, sizeof out)) return "";
  std::string id = out;
  if (prefix < 128) id += "/" + std::to_string(prefix);
  return id;
}

}  // namespace doorman
