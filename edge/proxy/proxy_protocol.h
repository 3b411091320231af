// PROXY protocol v1 and v2 (haproxy's proxy-protocol.txt), for edges behind a
// TCP load balancer: the header the balancer sends first carries the real
// client address, which the edge then uses for logs, Received and limits.
//
// Sans-I/O: parse() looks at the bytes received so far and says whether a
// complete, valid header is there (and how long it is), more bytes are
// needed, or the connection must be refused. Sees untrusted bytes; bounded:
// a v1 header is at most 107 octets, a v2 header at most 16 + 65535 (we
// accept at most 16 + 512; longer TLV sections are refused).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace doorman::edge::proxy {

enum class Version { kV1, kV2, kAny };

struct Result {
  enum class Status { kNeedMore, kDone, kInvalid };
  Status status = Status::kNeedMore;
  size_t consumed = 0;     // header length, for kDone
  std::string source_ip;   // empty for LOCAL / UNKNOWN (keep the socket's address)
  std::string error;       // for kInvalid, for logs
};

Result parse(std::string_view in, Version accept);

// Parses "off", "v1", "v2", "any" (for the --proxy-protocol option).
bool parse_mode(std::string_view text, bool* enabled, Version* version);

}  // namespace doorman::edge::proxy
