// The identity of an SMTP client address for per-client counters and limits
// (the directory's harvest counts; the edge's per-IP session limits).
//
// One IPv4 address is one identity. IPv6 is aggregated by prefix: a single
// customer usually holds a whole /64 (2^64 addresses), so counting by full
// address would let one client spread its attempts over as many identities
// as it likes. IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address it
// carries, so a dual-stack listener counts it like plain IPv4.
//
// SECURITY: sees client addresses relayed from untrusted connections
// (PROXY protocol headers included). The input is parsed with inet_pton, so
// anything that is not a plain IPv4 dotted quad or IPv6 text (zone ids,
// brackets, ports, spaces, trailing text) gives "". The result is rebuilt from
// the parsed bytes (inet_ntop, RFC 5952 canonical lower-case form), so it
// only ever holds the characters 0-9 a-f '.' ':' '/' and is at most 43
// characters: a safe Redis key component and log value. Pure; no I/O.
#pragma once

#include <string>
#include <string_view>

namespace doorman {

inline constexpr int kDefaultIpv6IdentityPrefix = 64;

// The identity of `ip`:
//   "192.0.2.1"                    -> "192.0.2.1"
//   "::ffff:192.0.2.1"             -> "192.0.2.1" (IPv4-mapped: per address)
//   "2001:DB8:1:2:aaaa::1", 64     -> "2001:db8:1:2::/64"
//   "2001:db8::1", 128             -> "2001:db8::1" (a single address: no suffix)
//   "2001:db8::1", 0               -> "::/0" (all of IPv6 is one identity)
//   "", "1.2.3.4 x", "fe80::1%eth0", "[::1]", "01.2.3.4" -> ""
// `v6_prefix` is clamped to 0..128.
std::string client_identity(std::string_view ip, int v6_prefix);

}  // namespace doorman
