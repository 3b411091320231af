// Command-line framing (RFC 5321 §2.3.8, §4.5.3.1.4). Only CRLF ends a line.
// A bare LF also ends a line (so the client cannot desynchronise us) but is
// reported as an error, as are a bare CR or a NUL inside the line, and a line
// longer than the limit (which counts the CRLF).
//
// Sans-I/O and allocation-free: works on a view of the caller's buffer.
#pragma once

#include <cstddef>
#include <string_view>

namespace doorman::smtp {

enum class LineStatus {
  kLine,      // `line` is a complete command line without CRLF
  kNeedMore,  // no line end yet and still under the limit: read more
  kTooLong,   // over the limit; `consumed` octets are discarded
  kBareLf,    // line ended by LF without CR
  kBareCr,    // CR not followed by LF inside the line
  kNul,       // NUL octet inside the line
};

struct LineResult {
  LineStatus status = LineStatus::kNeedMore;
  std::string_view line;
  size_t consumed = 0;  // octets to drop from the front of the input
  bool complete = false;  // for kTooLong: the line end was seen
};

// Finds the first line in `in`. `max_len` includes the CRLF.
LineResult next_line(std::string_view in, size_t max_len);

}  // namespace doorman::smtp
