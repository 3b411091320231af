#include "edge/proxy/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstring>

namespace doorman::edge::proxy {
namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr size_t kV1Max = 107;
constexpr size_t kV2MaxPayload = 512;

Result invalid(std::string why) {
  Result r;
  r.status = Result::Status::kInvalid;
  r.error = std::move(why);
  return r;
}

bool valid_ip(const std::string& s, int family) {
  unsigned char buf[16];
  return inet_pton(family, s.c_str(), buf) == 1;
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5 || (p.size() > 1 && p[0] == '0')) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

Result parse_v1(std::string_view in) {
  size_t end = in.find("\r\n");
  if (end == std::string_view::npos) {
    if (in.size() >= kV1Max) return invalid("v1 header too long");
    return Result{};
  }
  if (end + 2 > kV1Max) return invalid("v1 header too long");
  std::string_view line = in.substr(0, end);
  // "PROXY" SP proto SP src SP dst SP sport SP dport
  std::string_view parts[6];
  size_t n = 0, start = 0;
  while (n < 6) {
    size_t sp = line.find(' ', start);
    parts[n++] = line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  if (parts[0] != "PROXY") return invalid("v1: not a PROXY line");
  Result r;
  r.status = Result::Status::kDone;
  r.consumed = end + 2;
  if (parts[1] == "UNKNOWN") return r;  // the rest is to be ignored
  if (n != 6 || line.find(' ', start) != std::string_view::npos) return invalid("v1: wrong number of fields");
  int family = parts[1] == "TCP4" ? AF_INET : parts[1] == "TCP6" ? AF_INET6 : 0;
  if (family == 0) return invalid("v1: unknown protocol");
  std::string src(parts[2]), dst(parts[3]);
  if (!valid_ip(src, family) || !valid_ip(dst, family)) return invalid("v1: bad address");
  if (!valid_port(parts[4]) || !valid_port(parts[5])) return invalid("v1: bad port");
  r.source_ip = src;
  return r;
}

Result parse_v2(std::string_view in) {
  if (in.size() < 16) return Result{};
  auto u = [&](size_t i) { return static_cast<unsigned char>(in[i]); };
  if ((u(12) >> 4) != 2) return invalid("v2: bad version");
  unsigned command = u(12) & 0x0f;
  unsigned family = u(13);
  size_t len = (static_cast<size_t>(u(14)) << 8) | u(15);
  if (len > kV2MaxPayload) return invalid("v2: header too long");
  if (in.size() < 16 + len) return Result{};
  Result r;
  r.status = Result::Status::kDone;
  r.consumed = 16 + len;
  if (command == 0x0) return r;  // LOCAL: health check from the balancer itself
  if (command != 0x1) return invalid("v2: bad command");
  char text[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case 0x11:  // TCP over IPv4
    case 0x12:  // UDP over IPv4
      if (len < 12) return invalid("v2: short IPv4 block");
      inet_ntop(AF_INET, in.data() + 16, text, sizeof text);
      r.source_ip = text;
      return r;
    case 0x21:
    case 0x22:
      if (len < 36) return invalid("v2: short IPv6 block");
      inet_ntop(AF_INET6, in.data() + 16, text, sizeof text);
      r.source_ip = text;
      return r;
    case 0x00:
      return r;  // UNSPEC: keep the socket's address
    default:
      return invalid("v2: unsupported address family");
  }
}

}  // namespace

Result parse(std::string_view in, Version accept) {
  // Decide on the version from the first bytes; refuse as early as possible.
  if (accept != Version::kV1) {
    size_t n = std::min(in.size(), sizeof kV2Signature);
    if (std::memcmp(in.data(), kV2Signature, n) == 0) {
      if (n < sizeof kV2Signature) return Result{};
      return parse_v2(in);
    }
  }
  if (accept != Version::kV2) {
    static constexpr std::string_view kV1Prefix = "PROXY ";
    size_t n = std::min(in.size(), kV1Prefix.size());
    if (in.substr(0, n) == kV1Prefix.substr(0, n)) {
      if (n < kV1Prefix.size()) return Result{};
      return parse_v1(in);
    }
  }
  if (in.empty()) return Result{};
  return invalid("no PROXY protocol header");
}

bool parse_mode(std::string_view text, bool* enabled, Version* version) {
  *enabled = text != "off";
  if (text == "off") return true;
  if (text == "v1") *version = Version::kV1;
  else if (text == "v2") *version = Version::kV2;
  else if (text == "any") *version = Version::kAny;
  else return false;
  return true;
}

}  // namespace doorman::edge::proxy
